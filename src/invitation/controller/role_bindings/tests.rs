use super::observe::lists_for;
use super::writes::{create_failed, stops};
use crate::role_bindings::{self as decide, Done};
use confluent_client::role_bindings::RoleBindingFilter;

use crate::role_bindings::resource::RoleBinding;
use std::time::Duration;

const ORG: &str = "o-1";

fn item(role: &str, crn: &str) -> RoleBinding {
    RoleBinding {
        role_name: role.into(),
        crn_pattern: crn.into(),
    }
}

#[test]
fn an_object_lists_its_scopes_or_the_whole_organization() {
    let desired = decide::desired(
        &[
            item("EnvironmentAdmin", "environment=env-a"),
            item(
                "DeveloperRead",
                "environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=t",
            ),
        ],
        Some(ORG),
        "u-1",
        None,
    );
    let scoped = lists_for(7, Some(ORG), &desired, false);
    assert_eq!(scoped.len(), 2);
    let exclusive = lists_for(7, Some(ORG), &desired, true);
    assert_eq!(
        exclusive,
        vec![RoleBindingFilter::nested(
            "crn://confluent.cloud/organization=o-1"
        )]
    );
    // an unknown organization: relative items cannot be listed, absolute ones can
    let absolute = decide::desired(
        &[item(
            "EnvironmentAdmin",
            "crn://confluent.cloud/organization=o-1/environment=e",
        )],
        None,
        "u-1",
        None,
    );
    assert_eq!(lists_for(7, None, &absolute, true).len(), 1);
}

#[test]
fn a_create_is_settled_by_whether_it_may_have_been_executed() {
    use confluent_client::error::ServerRefusal;
    let refusal = ServerRefusal::default();
    let rate_limited = confluent_client::Error::RateLimited {
        retry_after: Duration::from_secs(1),
        request_id: None,
    };
    assert!(matches!(create_failed(&rate_limited), Done::NotSent(_)));
    assert!(stops(&rate_limited));
    assert!(!stops(&confluent_client::Error::Server(refusal.clone())));
    for maybe in [
        confluent_client::Error::Server(refusal.clone()),
        confluent_client::Error::Network {
            operation: "create_role_binding",
            message: "reset".into(),
        },
        confluent_client::Error::AlreadyExists(refusal.clone()),
    ] {
        assert!(
            matches!(create_failed(&maybe), Done::Unanswered(_)),
            "{maybe:?}"
        );
    }
    for refused in [
        confluent_client::Error::Invalid(refusal.clone()),
        confluent_client::Error::Forbidden(refusal.clone()),
    ] {
        assert!(
            matches!(create_failed(&refused), Done::Refused(_)),
            "{refused:?}"
        );
        assert!(!stops(&refused));
    }
}
