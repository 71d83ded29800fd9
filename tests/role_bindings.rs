//! The operator's pure role-binding decisions (`role_bindings`) driven with the real Confluent
//! client against the project's mock: what observation costs, and that a create whose answer
//! was lost is adopted, never made twice.

use std::time::Duration;

use confluent_client::model::CreateInvitation;
use confluent_client::role_bindings::user_principal;
use confluent_client::{Client, ClientSettings, Credentials, Error};
use confluent_mock::{Fault, FaultAction, MockConfig, MockServer};

const KEY: &str = "role-bindings-test-key";
const SECRET: &str = "role-bindings-test-secret-5e1a";

/// The real client on the mock, retrying quickly.
fn client(server: &MockServer) -> Client {
    let http = confluent_client::http_client(Duration::from_secs(2)).unwrap();
    let mut settings = ClientSettings::new(&server.base_url()).unwrap();
    settings.retry.backoff.base = Duration::from_millis(20);
    Client::new(http, settings, Credentials::api_key(KEY, SECRET), None)
}

/// The pure decisions (`role_bindings`) driven with the real client against the mock: observing
/// N resources' bindings costs one list per distinct scope, and a create whose answer was lost
/// is adopted, never made twice.
#[tokio::test]
async fn planned_bindings_against_the_mock_cost_one_list_per_scope_and_never_duplicate() {
    use confluent_client::role_bindings::RoleBindingFilter;
    use confluent_client::role_bindings::organization_of;
    use confluent_invitation_operator::role_bindings::resource::{RoleBinding, RoleBindingState};
    use confluent_invitation_operator::role_bindings::{
        self, Demand, Done, Live, Observed, OnDisallowed, Step,
    };

    let server = test_support::start_mock(KEY, SECRET, MockConfig::default())
        .await
        .unwrap();
    let c = client(&server);
    let m = server.state();
    // N = 30 invitees, k = 2 bindings each, over s = 3 distinct scopes
    let mut users = Vec::new();
    for n in 0..30 {
        let inv = c
            .create_invitation(&CreateInvitation {
                email: format!("user{n}@example.com"),
                auth_type: None,
            })
            .await
            .unwrap();
        users.push(inv);
    }
    let org = organization_of(users[0].resource_name().unwrap())
        .unwrap()
        .to_owned();
    let scopes = [
        "environment=env-0",
        "environment=env-1",
        "environment=env-2",
    ];
    let items = |n: usize| -> Vec<RoleBinding> {
        (0..2)
            .map(|j| RoleBinding {
                role_name: "EnvironmentAdmin".into(),
                crn_pattern: scopes[(n + j) % 3].into(),
            })
            .collect()
    };
    let wanted: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(n, inv)| role_bindings::desired(&items(n), Some(&org), inv.user_id().unwrap(), None))
        .collect();
    let none = std::collections::BTreeSet::new();
    let live = |n: usize| Live {
        invitee: users[n].user_id(),
        recorded_user: users[n].user_id(),
        organization: Some(&org),
        desired: &wanted[n],
        exclusive: false,
        allowed_roles: None,
        on_disallowed: OnDisallowed::Keep,
        refused_recently: &none,
    };
    // what the scope lists show of one user (an empty answer before anything is created)
    let observed_of =
        |principal: &str, shown: &[confluent_client::role_bindings::RemoteRoleBinding]| {
            let mut o = Observed::default();
            for scope in scopes {
                let filter = RoleBindingFilter::scope(format!(
                    "crn://confluent.cloud/organization={org}/{scope}"
                ));
                let share = shown
                    .iter()
                    .filter(|b| role_bindings::covers(&filter, b))
                    .cloned()
                    .collect();
                o.list(principal, filter, Ok(share));
            }
            o
        };

    // first reconcile of each: nothing observed, so create; one lost answer on the way
    m.inject(Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/role-bindings".into(),
        count: 1,
        action: FaultAction::CommitThenDrop,
    });
    let mut lost = 0;
    let mut ledgers = Vec::new();
    for (n, inv) in users.iter().enumerate() {
        let user = inv.user_id().unwrap();
        let mut plan = role_bindings::plan(&live(n), &[], &observed_of(&user_principal(user), &[]));
        for step in plan.steps.clone() {
            let Step::Create { entry, request } = step else {
                panic!("{step:?}")
            };
            match c.create_role_binding(&request).await {
                Ok(b) => plan.settle(entry, Done::Created(b.id.unwrap())),
                Err(e @ Error::Network { .. }) => {
                    lost += 1;
                    plan.settle(entry, Done::Unanswered(e.detail()));
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        ledgers.push(plan.into_ledger());
    }
    assert_eq!(lost, 1);
    assert_eq!(m.role_bindings().len(), 60, "the lost create did commit");
    assert_eq!(
        ledgers
            .iter()
            .flatten()
            .filter(|e| e.state == RoleBindingState::Creating && e.id.is_none())
            .count(),
        1,
        "the lost one is recorded as a create in flight"
    );

    // a resync: the batched observation
    let demands: Vec<Demand> = wanted
        .iter()
        .map(|w| Demand {
            credential: c.key(),
            organization: org.clone(),
            crn_patterns: w
                .iter()
                .map(|x| x.binding.clone().unwrap().crn_pattern)
                .collect(),
            exclusive: false,
        })
        .collect();
    let lists = role_bindings::observation_lists(&demands, 50);
    let filters = &lists[&(c.key(), org.clone())];
    assert_eq!(filters.len(), 3);
    let before = m.role_binding_calls().list;
    let mut seen = Vec::new();
    for f in filters {
        seen.extend(c.list_role_bindings(f).await.unwrap());
    }
    assert_eq!(
        m.role_binding_calls().list - before,
        3,
        "s lists for N = 30 resources"
    );
    let by_user = role_bindings::by_principal(seen);
    // every resource: all bound, nothing created twice; with no ledger, each binding is adopted
    // once; with the ledger of the first pass, only the lost create is (found, recovered)
    let mut adopted = 0;
    let mut recovered = 0;
    for (n, ledger) in ledgers.iter().enumerate() {
        let user = users[n].user_id().unwrap();
        let mine = by_user
            .get(&user_principal(user))
            .cloned()
            .unwrap_or_default();
        let observed = observed_of(&user_principal(user), &mine);
        let plan = role_bindings::plan(&live(n), &[], &observed);
        assert!(
            plan.ledger
                .iter()
                .all(|e| e.state == RoleBindingState::Bound)
        );
        assert!(
            plan.steps.iter().all(|s| matches!(s, Step::Adopt { .. })),
            "{:?}",
            plan.steps
        );
        adopted += plan.steps.len();
        assert_eq!(
            role_bindings::verdict(&plan.ledger),
            role_bindings::Verdict::Bound
        );
        let with_ledger = role_bindings::plan(&live(n), ledger, &observed);
        assert!(with_ledger.reads.is_empty());
        recovered += with_ledger
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    Step::Adopt {
                        recovered: true,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            with_ledger.steps.len(),
            with_ledger
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Adopt { .. }))
                .count()
        );
        // with their ids recorded, the next resync plans nothing
        let again = role_bindings::plan(&live(n), &with_ledger.ledger, &observed);
        assert!(again.steps.is_empty());
    }
    assert_eq!(
        adopted, 60,
        "no id was recorded yet: each binding is adopted once"
    );
    assert_eq!(recovered, 1, "the lost create is found, not made twice");
    assert_eq!(m.role_bindings().len(), 60, "no duplicate");

    // a refused pair settles as Refused with Confluent's detail, and Ready says so
    let user = users[0].user_id().unwrap();
    let bad = role_bindings::desired(
        &[RoleBinding {
            role_name: "DeveloperRead".into(),
            crn_pattern: "environment=env-0/cloud-cluster=lkc-1".into(),
        }],
        Some(&org),
        user,
        None,
    );
    let bad_live = Live {
        desired: &bad,
        ..live(0)
    };
    let mut observed = Observed::default();
    observed.list(
        &user_principal(user),
        RoleBindingFilter::scope(format!(
            "crn://confluent.cloud/organization={org}/environment=env-0/cloud-cluster=lkc-1"
        )),
        Ok(Vec::new()),
    );
    let mut plan = role_bindings::plan(&bad_live, &[], &observed);
    let Some(Step::Create { entry, request }) = plan.steps.first().cloned() else {
        panic!("{:?}", plan.steps)
    };
    let e = c.create_role_binding(&request).await.unwrap_err();
    plan.settle(entry, Done::Refused(e.detail()));
    match role_bindings::verdict(&plan.into_ledger()) {
        role_bindings::Verdict::NotReady { reason, message } => {
            assert_eq!(reason, "RoleBindingRefused");
            assert!(message.contains("DeveloperRead on crn://"), "{message}");
            assert!(message.contains("cannot be bound"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
