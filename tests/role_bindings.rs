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

async fn mock() -> MockServer {
    confluent_mock::start(
        "127.0.0.1:0".parse().unwrap(),
        MockConfig {
            api_keys: vec![(KEY.into(), SECRET.into())],
            ..MockConfig::default()
        },
    )
    .await
    .unwrap()
}

fn client(server: &MockServer, credentials: Credentials) -> Client {
    let http = confluent_client::http_client(Duration::from_secs(2)).unwrap();
    let mut settings = ClientSettings::new(&server.base_url()).unwrap();
    settings.retry.backoff.base = Duration::from_millis(20);
    Client::new(http, settings, credentials, None)
}

fn create(email: &str) -> CreateInvitation {
    CreateInvitation {
        email: email.into(),
        auth_type: None,
    }
}

/// The pure decisions (`role_bindings`) driven with the real client against the mock: observing
/// N resources' bindings costs one list per distinct scope, and a create whose answer was lost
/// is adopted, never made twice.
#[tokio::test]
async fn planned_bindings_against_the_mock_cost_one_list_per_scope_and_never_duplicate() {
    use confluent_invitation_operator::crd::{RoleBinding, RoleBindingState};
    use confluent_invitation_operator::ownership::organization_of;
    use confluent_invitation_operator::role_bindings::{self, Created, Demand, Observed, Step};

    let server = mock().await;
    let c = client(&server, Credentials::api_key(KEY, SECRET));
    let m = server.state();
    // N = 30 invitees, k = 2 bindings each, over s = 3 distinct scopes
    let mut users = Vec::new();
    for n in 0..30 {
        let inv = c
            .create_invitation(&create(&format!("user{n}@example.com")))
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
        .map(|(n, inv)| role_bindings::wanted(&items(n), Some(&org), inv.user_id().unwrap()))
        .collect();

    // first reconcile of each: nothing observed, so create; one lost answer on the way
    m.inject(Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/role-bindings".into(),
        count: 1,
        action: FaultAction::CommitThenDrop,
    });
    let mut lost = 0;
    for (n, w) in wanted.iter().enumerate() {
        let user = users[n].user_id().unwrap();
        let plan = role_bindings::plan(
            user,
            w,
            Observed {
                bindings: &[],
                organization_wide: false,
            },
            &[],
            false,
            &[],
            false,
        );
        for step in plan.steps {
            let Step::Create { request, .. } = step else {
                panic!("{step:?}")
            };
            match c.create_role_binding(&request).await {
                Ok(_) => {}
                Err(Error::Network { .. }) => lost += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    assert_eq!(lost, 1);
    assert_eq!(m.role_bindings().len(), 60, "the lost create did commit");

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
    // every resource: all bound, the lost one adopted, nothing created twice
    let mut adopted = 0;
    for (n, w) in wanted.iter().enumerate() {
        let user = users[n].user_id().unwrap();
        let mine = by_user
            .get(&user_principal(user))
            .cloned()
            .unwrap_or_default();
        let observed = Observed {
            bindings: &mine,
            organization_wide: false,
        };
        let plan = role_bindings::plan(user, w, observed, &[], false, &[], false);
        assert!(
            plan.entries
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
            role_bindings::verdict(&plan.entries),
            role_bindings::Verdict::Bound
        );
        // with their ids recorded, the next resync plans nothing
        let again = role_bindings::plan(user, w, observed, &plan.entries, false, &[], false);
        assert!(again.steps.is_empty());
    }
    assert_eq!(
        adopted, 60,
        "no id was recorded yet: each binding is adopted once"
    );
    assert_eq!(m.role_bindings().len(), 60, "no duplicate");

    // a refused pair settles as Refused with Confluent's detail, and Ready says so
    let user = users[0].user_id().unwrap();
    let bad = role_bindings::wanted(
        &[RoleBinding {
            role_name: "DeveloperRead".into(),
            crn_pattern: "environment=env-0/cloud-cluster=lkc-1".into(),
        }],
        Some(&org),
        user,
    );
    let plan = role_bindings::plan(
        user,
        &bad,
        Observed {
            bindings: &[],
            organization_wide: false,
        },
        &[],
        false,
        &[],
        false,
    );
    let Step::Create { index, request } = &plan.steps[0] else {
        panic!()
    };
    let e = c.create_role_binding(request).await.unwrap_err();
    let entry = role_bindings::settle(&plan.entries[*index], Created::Refused(e.detail()));
    match role_bindings::verdict(&[entry]) {
        role_bindings::Verdict::NotReady { reason, message } => {
            assert_eq!(reason, "RoleBindingRefused");
            assert!(message.contains("DeveloperRead on crn://"), "{message}");
            assert!(message.contains("cannot be bound"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
