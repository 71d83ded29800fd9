//! `spec.roleBindings`: the invitee's access, created with the invitation for
//! `User:<status.userId>`, kept as listed under lost responses and drift, removed by the deletion
//! policies, never touched by an `EmailConflict` loser, and observed in batches.

use std::collections::BTreeSet;
use std::time::Duration;

use confluent_client::role_bindings::{CreateRoleBinding, user_principal};
use confluent_invitation_operator::invitation::resource::{DeletionPolicy, Invitation};
use confluent_invitation_operator::reason;
use confluent_invitation_operator::role_bindings::resource::RoleBindingState;
use confluent_mock::{Fault, FaultAction};
use kube::api::PostParams;

use crate::harness::*;

/// Within how long drift is repaired: a few resyncs of the harness's 2 s.
pub(crate) const DRIFT: Duration = Duration::from_secs(20);

pub(crate) const ENV: &str = "/environment=env-abc";
pub(crate) const TOPIC: &str = "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";

/// The absolute CRN of the topic the tests bind.
pub(crate) fn topic(env: &Env) -> String {
    env.crn(&format!("/{TOPIC}"))
}

/// The two items most tests list: an environment (absolute) and a topic (relative).
pub(crate) fn two_items(env: &Env) -> [(String, String); 2] {
    [
        ("EnvironmentAdmin".into(), env.crn(ENV)),
        ("DeveloperRead".into(), TOPIC.into()),
    ]
}

pub(crate) fn listing(inv: Invitation, items: &[(String, String)]) -> Invitation {
    let items: Vec<(&str, &str)> = items
        .iter()
        .map(|(r, c)| (r.as_str(), c.as_str()))
        .collect();
    with_role_bindings(inv, &items)
}

/// The mock's bindings of the user as (role, crn).
fn granted(env: &Env, user: &str) -> BTreeSet<(String, String)> {
    env.bindings_of_user(user)
        .into_iter()
        .map(|b| {
            (
                b.role_name.unwrap_or_default(),
                b.crn_pattern.unwrap_or_default(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

/// The id status records for `role` on the absolute `crn`.
pub(crate) fn status_id(inv: &Invitation, role: &str, crn: &str) -> String {
    bindings_of(inv)
        .into_iter()
        .find(|e| e.role_name == role && e.crn_pattern == crn)
        .and_then(|e| e.id)
        .unwrap_or_else(|| panic!("no id for {role} on {crn}: {:#?}", bindings_of(inv)))
}

/// The remote ids of the user's bindings.
pub(crate) fn remote_ids(env: &Env, user: &str) -> BTreeSet<String> {
    env.bindings_of_user(user)
        .into_iter()
        .filter_map(|b| b.id)
        .collect()
}

pub(crate) fn status_ids(inv: &Invitation) -> BTreeSet<String> {
    bindings_of(inv).into_iter().filter_map(|e| e.id).collect()
}

/// Creates `name` for `email` listing `items` and waits until it is Ready with all of them Bound.
pub(crate) async fn create_bound(
    env: &Env,
    inv: Invitation,
    items: &[(String, String)],
) -> Invitation {
    let name = inv.metadata.name.clone().expect("a name");
    env.create(&listing(inv, items)).await;
    let n = items.len();
    env.wait_for(&name, "Ready with every binding Bound", |i| {
        all_bound(i, n) && ready_of(i).is_some_and(|r| r.0 == "True")
    })
    .await
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn bindings_are_created_with_the_invitation_for_the_invitee() {
    let env = env("rb-create").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("jane", "jane@example.com"), &items).await;
    let user = user_of(&inv);
    assert_eq!(phase_of(&inv), Some("Sent"), "the invitee is still pending");

    let entries = bindings_of(&inv);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(
        (
            entries[0].role_name.as_str(),
            entries[0].crn_pattern.as_str()
        ),
        ("EnvironmentAdmin", env.crn(ENV).as_str()),
        "spec order, the absolute CRN as listed"
    );
    assert_eq!(
        (
            entries[1].role_name.as_str(),
            entries[1].crn_pattern.clone()
        ),
        ("DeveloperRead", topic(&env)),
        "the relative CRN resolved in the invitation's organization"
    );
    for e in &entries {
        assert_eq!(e.state, RoleBindingState::Bound);
        assert!(
            e.id.as_deref().is_some_and(|id| id.starts_with("rb-")),
            "{e:?}"
        );
    }

    let remote = env.bindings_of_user(&user);
    assert_eq!(
        granted(&env, &user),
        pairs(&[
            ("EnvironmentAdmin", &env.crn(ENV)),
            ("DeveloperRead", &topic(&env))
        ]),
        "exactly the two listed, for User:{user}: {remote:?}"
    );
    assert_eq!(
        remote_ids(&env, &user),
        status_ids(&inv),
        "status names them"
    );
    assert_eq!(
        env.remote().role_bindings().len(),
        2,
        "nobody else bound anything"
    );
    assert_eq!(env.remote().role_binding_calls().create, 2);

    let created: Vec<_> = env
        .events("jane")
        .await
        .into_iter()
        .filter(|e| e.1 == reason::ROLE_BINDING_CREATED)
        .collect();
    assert_eq!(created.len(), 2, "one Event per binding: {created:?}");
    assert!(created.iter().all(|e| e.0 == "Normal"), "{created:?}");
    for (role, crn) in [
        ("EnvironmentAdmin", env.crn(ENV)),
        ("DeveloperRead", topic(&env)),
    ] {
        assert!(
            created
                .iter()
                .any(|e| e.2.contains(role) && e.2.contains(&crn)),
            "no Event names {role} on {crn}: {created:?}"
        );
    }
    // still one invitation, and the bindings did not change the phase
    assert_eq!(env.live("jane@example.com").len(), 1);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_binding_create_whose_response_was_lost_is_adopted_not_repeated() {
    let env = env("rb-lost").await;
    let items = two_items(&env);
    for (name, email, action) in [
        (
            "five-hundred",
            "rb500@example.com",
            FaultAction::CommitThen500,
        ),
        ("dropped", "rbdrop@example.com", FaultAction::CommitThenDrop),
    ] {
        let before = env.remote().role_binding_calls().create;
        env.remote().inject(Fault {
            method: Some("POST".into()),
            path_prefix: "/iam/v2/role-bindings".into(),
            count: 1,
            action,
        });
        let inv = create_bound(&env, invitation(name, email), &items).await;
        let user = user_of(&inv);
        let remote = env.bindings_of_user(&user);
        assert_eq!(remote.len(), 2, "{name}: one binding per item: {remote:?}");
        assert_eq!(
            granted(&env, &user),
            pairs(&[
                ("EnvironmentAdmin", &env.crn(ENV)),
                ("DeveloperRead", &topic(&env))
            ]),
            "{name}"
        );
        assert_eq!(remote_ids(&env, &user), status_ids(&inv), "{name}");
        assert_eq!(
            env.remote().role_binding_calls().create - before,
            2,
            "{name}: the lost create was never retried blindly"
        );
        let (kind, _) = env.wait_event(name, reason::ROLE_BINDING_ADOPTED).await;
        assert_eq!(kind, "Normal", "{name}");
        assert!(
            env.remote().pending_faults().is_empty(),
            "{name}: fault hit"
        );
    }
    assert_eq!(env.remote().calls().faults_injected, 2);
    // resyncs later, nothing more was created
    let creates = env.remote().role_binding_calls().create;
    tokio::time::sleep(RESYNC * 3).await;
    assert_eq!(env.remote().role_binding_calls().create, creates);
    assert_eq!(env.remote().role_bindings().len(), 4);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_binding_removed_out_of_band_is_recreated() {
    let env = env("rb-drift-removed").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("bob", "bob@example.com"), &items).await;
    let user = user_of(&inv);
    let env_crn = env.crn(ENV);
    let old = status_id(&inv, "EnvironmentAdmin", &env_crn);
    let topic_id = status_id(&inv, "DeveloperRead", &topic(&env));

    env.remote()
        .remove_role_binding(&old)
        .expect("removed in the mock");
    let inv = env
        .wait_for_within("bob", "the binding recreated", DRIFT, |i| {
            all_bound(i, 2)
                && bindings_of(i)
                    .iter()
                    .any(|e| e.role_name == "EnvironmentAdmin" && e.id.as_ref() != Some(&old))
        })
        .await;
    let new = status_id(&inv, "EnvironmentAdmin", &env_crn);
    assert_ne!(new, old);
    assert_eq!(
        status_id(&inv, "DeveloperRead", &topic(&env)),
        topic_id,
        "the other binding untouched"
    );
    assert_eq!(
        remote_ids(&env, &user),
        BTreeSet::from([new.clone(), topic_id]),
        "the mock holds the new one and the untouched one"
    );
    assert_eq!(
        granted(&env, &user),
        pairs(&[
            ("EnvironmentAdmin", &env_crn),
            ("DeveloperRead", &topic(&env))
        ])
    );
    assert_eq!(ready_of(&inv).map(|r| r.0), Some("True".into()));
    let created: Vec<_> = env
        .events("bob")
        .await
        .into_iter()
        .filter(|e| e.1 == reason::ROLE_BINDING_CREATED)
        .collect();
    assert_eq!(created.len(), 3, "two at first, one recreated: {created:?}");
    assert_eq!(env.remote().role_binding_calls().create, 3);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_binding_added_out_of_band_is_left_alone_unless_exclusive() {
    let env = env("rb-drift-added").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("ann", "ann@example.com"), &items).await;
    let user = user_of(&inv);
    let listed = status_ids(&inv);
    let principal = user_principal(&user);
    let extra = env.remote().seed_role_binding(&CreateRoleBinding {
        principal: principal.clone(),
        role_name: "DataSteward".into(),
        crn_pattern: env.crn(ENV),
    });
    let extra_id = extra.id.clone().expect("an id");
    // someone else's binding on the same scope: never the operator's business
    let other = env.remote().seed_role_binding(&CreateRoleBinding {
        principal: "User:u-someone".into(),
        role_name: "EnvironmentAdmin".into(),
        crn_pattern: env.crn(ENV),
    });

    // without exclusiveRoleBindings: untouched, resyncs later
    tokio::time::sleep(RESYNC * 5).await;
    assert!(
        remote_ids(&env, &user).contains(&extra_id),
        "a binding the resource did not create was deleted"
    );
    assert_eq!(env.remote().role_binding_calls().delete, 0);
    let inv = env.api.get("ann").await.expect("readable");
    assert_eq!(
        status_ids(&inv),
        listed,
        "status lists only the listed items"
    );
    assert_eq!(ready_of(&inv).map(|r| r.0), Some("True".into()));
    assert!(
        !env.events("ann")
            .await
            .iter()
            .any(|e| e.1 == reason::UNLISTED_ROLE_BINDING_DELETED)
    );

    // exclusive: the unlisted binding goes, with an Event naming it
    env.patch_spec("ann", serde_json::json!({"exclusiveRoleBindings": true}))
        .await;
    eventually("the unlisted binding deleted", DRIFT, || async {
        (!remote_ids(&env, &user).contains(&extra_id)).then_some(())
    })
    .await;
    let (kind, note) = env
        .wait_event("ann", reason::UNLISTED_ROLE_BINDING_DELETED)
        .await;
    assert_eq!(kind, "Normal");
    for part in [extra_id.as_str(), "DataSteward", env.crn(ENV).as_str()] {
        assert!(note.contains(part), "the Event names {part}: {note}");
    }
    assert_eq!(remote_ids(&env, &user), listed, "the listed ones stay");

    // exclusive, and one more added out of band: gone within a few resyncs too
    let later = env.remote().seed_role_binding(&CreateRoleBinding {
        principal,
        role_name: "MetricsViewer".into(),
        crn_pattern: env.crn(""),
    });
    let later_id = later.id.expect("an id");
    eventually("the binding added later deleted", DRIFT, || async {
        (!remote_ids(&env, &user).contains(&later_id)).then_some(())
    })
    .await;
    assert_eq!(remote_ids(&env, &user), listed);
    let named_later = eventually("an Event names the later binding", WAIT, || async {
        env.events("ann")
            .await
            .into_iter()
            .find(|e| e.1 == reason::UNLISTED_ROLE_BINDING_DELETED && e.2.contains(&later_id))
    })
    .await;
    assert!(named_later.2.contains("MetricsViewer"), "{named_later:?}");
    let inv = env
        .wait_for("ann", "Ready with both listed Bound", |i| {
            all_bound(i, 2) && ready_of(i).is_some_and(|r| r.0 == "True")
        })
        .await;
    assert_eq!(status_ids(&inv), listed);
    assert!(
        env.remote()
            .role_bindings()
            .iter()
            .any(|b| b.id == other.id),
        "another user's binding was touched"
    );
    assert_eq!(
        env.remote().role_binding_calls().delete,
        2,
        "exactly the two unlisted ones were deleted"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn removing_or_changing_an_item_deletes_and_creates() {
    let env = env("rb-spec").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("kim", "kim@example.com"), &items).await;
    let user = user_of(&inv);
    let env_crn = env.crn(ENV);
    let admin_id = status_id(&inv, "EnvironmentAdmin", &env_crn);
    let topic_id = status_id(&inv, "DeveloperRead", &topic(&env));

    // remove the topic item
    env.patch_spec(
        "kim",
        serde_json::json!({"roleBindings": [{"roleName": "EnvironmentAdmin", "crnPattern": env_crn}]}),
    )
    .await;
    let inv = env
        .wait_for("kim", "one binding left", |i| all_bound(i, 1))
        .await;
    assert_eq!(status_ids(&inv), BTreeSet::from([admin_id.clone()]));
    assert_eq!(
        remote_ids(&env, &user),
        BTreeSet::from([admin_id.clone()]),
        "the removed item's binding is gone"
    );
    let (kind, note) = env.wait_event("kim", reason::ROLE_BINDING_DELETED).await;
    assert_eq!(kind, "Normal");
    assert!(note.contains("DeveloperRead"), "{note}");
    assert!(
        env.remote_by_id(&id_of(&inv)).is_some() && env.live("kim@example.com").len() == 1,
        "the invitation stays"
    );

    // change the role of the remaining item: the old binding deleted, a new one created
    env.patch_spec(
        "kim",
        serde_json::json!({"roleBindings": [{"roleName": "DataSteward", "crnPattern": env_crn}]}),
    )
    .await;
    let inv = env
        .wait_for("kim", "the new role Bound", |i| {
            all_bound(i, 1) && bindings_of(i)[0].role_name == "DataSteward"
        })
        .await;
    let steward_id = status_id(&inv, "DataSteward", &env_crn);
    assert_ne!(steward_id, admin_id);
    assert_eq!(
        granted(&env, &user),
        pairs(&[("DataSteward", &env_crn)]),
        "only the new role remains"
    );
    assert_eq!(remote_ids(&env, &user), BTreeSet::from([steward_id]));
    assert_eq!(ready_of(&inv).map(|r| r.0), Some("True".into()));
    let deleted: Vec<_> = env
        .events("kim")
        .await
        .into_iter()
        .filter(|e| e.1 == reason::ROLE_BINDING_DELETED)
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(
        deleted.iter().any(|e| e.2.contains("EnvironmentAdmin")),
        "{deleted:?}"
    );
    let calls = env.remote().role_binding_calls();
    assert_eq!((calls.create, calls.delete), (3, 2), "{calls:?}");
    assert!(!remote_ids(&env, &user).contains(&topic_id));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_refused_role_scope_pair_is_reported_and_the_invitation_stays() {
    let env = env("rb-refused").await;
    let env_crn = env.crn(ENV);
    // DeveloperRead binds at a resource (a topic), not at an environment
    let items = [
        ("EnvironmentAdmin".to_string(), env_crn.clone()),
        ("DeveloperRead".to_string(), ENV[1..].to_string()),
    ];
    env.create(&listing(invitation("rex", "rex@example.com"), &items))
        .await;
    let inv = env.wait_reason("rex", reason::ROLE_BINDING_REFUSED).await;
    let (ready, _, message) = ready_of(&inv).expect("Ready");
    assert_eq!(ready, "False");
    assert!(
        message.contains("1 role binding")
            && message.contains("DeveloperRead")
            && message.contains(&env_crn),
        "the message names the binding: {message}"
    );
    assert!(
        message.contains("cannot be bound at the environment scope"),
        "and carries Confluent's detail: {message}"
    );
    assert_eq!(
        phase_of(&inv),
        Some("Sent"),
        "the phase is the invitation's"
    );
    let entries = bindings_of(&inv);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0].state, RoleBindingState::Bound);
    assert!(entries[0].id.is_some());
    assert_eq!(entries[1].state, RoleBindingState::Refused);
    assert_eq!(entries[1].crn_pattern, env_crn);
    assert!(entries[1].id.is_none());
    assert!(
        entries[1]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("cannot be bound")),
        "{:?}",
        entries[1]
    );
    let (kind, _) = env.wait_event("rex", reason::ROLE_BINDING_REFUSED).await;
    assert_eq!(kind, "Warning");

    // the invitation itself is as it was, and the refusal is not retried until the spec changes
    let id = id_of(&inv);
    let user = user_of(&inv);
    assert_eq!(
        granted(&env, &user),
        pairs(&[("EnvironmentAdmin", &env_crn)])
    );
    let creates = env.remote().role_binding_calls().create;
    tokio::time::sleep(RESYNC * 3).await;
    assert_eq!(
        env.remote().role_binding_calls().create,
        creates,
        "a refused item is not tried again for the same spec"
    );
    let live = env.live("rex@example.com");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id.as_deref(), Some(id.as_str()));
    let calls = env.remote().calls();
    assert_eq!((calls.create, calls.delete), (1, 0), "{calls:?}");
    let inv = env.api.get("rex").await.expect("readable");
    assert_eq!(
        ready_of(&inv).map(|r| r.1),
        Some(reason::ROLE_BINDING_REFUSED.into())
    );

    // fixing the spec makes it Ready
    env.patch_spec(
        "rex",
        serde_json::json!({"roleBindings": [
            {"roleName": "EnvironmentAdmin", "crnPattern": env_crn},
            {"roleName": "DataSteward", "crnPattern": &ENV[1..]},
        ]}),
    )
    .await;
    let inv = env
        .wait_for("rex", "Ready with both Bound", |i| {
            all_bound(i, 2) && ready_of(i).is_some_and(|r| r.0 == "True")
        })
        .await;
    assert_eq!(phase_of(&inv), Some("Sent"));
    assert_eq!(id_of(&inv), id);
    assert_eq!(
        granted(&env, &user),
        pairs(&[("EnvironmentAdmin", &env_crn), ("DataSteward", &env_crn)])
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn the_api_server_refuses_a_duplicate_item() {
    let env = env("rb-duplicate").await;
    let env_crn = env.crn(ENV);
    let dup = listing(
        invitation("dup", "dup@example.com"),
        &[
            ("EnvironmentAdmin".into(), env_crn.clone()),
            ("EnvironmentAdmin".into(), env_crn.clone()),
        ],
    );
    let err = env
        .api
        .create(&PostParams::default(), &dup)
        .await
        .expect_err("a duplicate pair was accepted");
    let text = err.to_string();
    assert!(
        text.contains("spec.roleBindings") && text.contains("Duplicate value"),
        "the error names the field: {text}"
    );
    // more than 50 items: refused too
    let many: Vec<(String, String)> = (0..51)
        .map(|i| {
            (
                "EnvironmentAdmin".into(),
                env.crn(&format!("/environment=env-{i}")),
            )
        })
        .collect();
    let err = env
        .api
        .create(
            &PostParams::default(),
            &listing(invitation("many", "many@example.com"), &many),
        )
        .await
        .expect_err("51 items were accepted");
    assert!(err.to_string().contains("spec.roleBindings"), "{err}");
    // the same pattern with another role is another item, and accepted
    let fine = listing(
        invitation("fine", "fine@example.com"),
        &[
            ("EnvironmentAdmin".into(), env_crn.clone()),
            ("DataSteward".into(), env_crn.clone()),
        ],
    );
    env.create(&fine).await;
    env.wait_for("fine", "both Bound", |i| all_bound(i, 2))
        .await;
    assert!(env.api.get_opt("dup").await.expect("readable").is_none());
    assert_eq!(
        env.remote().calls().create,
        1,
        "only the valid one reached Confluent"
    );
    assert_eq!(env.remote().role_binding_calls().create, 2);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn delete_removes_the_bindings_then_the_pending_invitation() {
    let env = env("rb-del-pending").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("p", "rbpending@example.com"), &items).await;
    let user = user_of(&inv);
    let id = id_of(&inv);
    // binding deletions fail at first: the invitation must still be there while they do
    env.remote().inject(Fault {
        method: Some("DELETE".into()),
        path_prefix: "/iam/v2/role-bindings/".into(),
        count: 2,
        action: FaultAction::Status { status: 500 },
    });
    env.api
        .delete("p", &Default::default())
        .await
        .expect("delete accepted");
    eventually("a binding deletion was tried", WAIT, || async {
        (env.remote().calls().faults_injected > 0).then_some(())
    })
    .await;
    assert_eq!(
        env.live("rbpending@example.com").len(),
        1,
        "the invitation was deleted before its bindings"
    );
    env.wait_gone("p").await;
    assert!(
        env.bindings_of_user(&user).is_empty(),
        "bindings left behind: {:?}",
        env.bindings_of_user(&user)
    );
    assert!(env.live("rbpending@example.com").is_empty());
    assert!(env.remote_by_id(&id).is_some());
    let deleted: Vec<_> = env
        .events("p")
        .await
        .into_iter()
        .filter(|e| e.1 == reason::ROLE_BINDING_DELETED)
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    env.wait_event("p", "Deleted").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn delete_keeps_an_accepted_member_and_removes_the_bindings() {
    let env = env("rb-del-accepted").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("m", "rbmember@example.com"), &items).await;
    let user = user_of(&inv);
    let id = id_of(&inv);
    env.remote().accept(&id).expect("accepted in the mock");
    env.wait_for("m", "Accepted with both Bound", |i| {
        phase_of(i) == Some("Accepted") && all_bound(i, 2)
    })
    .await;
    env.delete_and_wait_gone("m").await;
    assert!(
        env.bindings_of_user(&user).is_empty(),
        "bindings left behind: {:?}",
        env.bindings_of_user(&user)
    );
    assert!(
        env.remote()
            .users()
            .iter()
            .any(|u| u.id.as_deref() == Some(user.as_str())),
        "the member was kept"
    );
    assert_eq!(env.remote().calls().delete_user, 0);
    let (_, note) = env.wait_event("m", "AcceptedUserKept").await;
    assert!(note.contains(&user), "{note}");
    let deleted = env
        .events("m")
        .await
        .into_iter()
        .filter(|e| e.1 == reason::ROLE_BINDING_DELETED)
        .count();
    assert_eq!(deleted, 2);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn orphan_leaves_the_bindings_and_the_invitation() {
    let env = env("rb-del-orphan").await;
    let items = two_items(&env);
    let mut inv = invitation("o", "rborphan@example.com");
    inv.spec.deletion_policy = DeletionPolicy::Orphan;
    let inv = create_bound(&env, inv, &items).await;
    let user = user_of(&inv);
    let ids = status_ids(&inv);
    env.delete_and_wait_gone("o").await;
    assert_eq!(remote_ids(&env, &user), ids, "the bindings stay");
    assert_eq!(
        env.live("rborphan@example.com").len(),
        1,
        "the invitation stays"
    );
    assert_eq!(env.remote().role_binding_calls().delete, 0);
    assert_eq!(env.remote().calls().delete, 0);
    env.wait_event("o", "Orphaned").await;
    assert!(
        !env.events("o")
            .await
            .iter()
            .any(|e| e.1 == reason::ROLE_BINDING_DELETED)
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn delete_user_removes_the_member_and_their_bindings() {
    let env = env("rb-del-user").await;
    let items = two_items(&env);
    let mut inv = invitation("gone", "rbleaver@example.com");
    inv.spec.deletion_policy = DeletionPolicy::DeleteUser;
    let inv = create_bound(&env, inv, &items).await;
    let user = user_of(&inv);
    env.remote().accept(&id_of(&inv)).expect("accepted");
    env.wait_for("gone", "Accepted with both Bound", |i| {
        phase_of(i) == Some("Accepted") && all_bound(i, 2)
    })
    .await;
    env.delete_and_wait_gone("gone").await;
    assert!(
        !env.remote()
            .users()
            .iter()
            .any(|u| u.id.as_deref() == Some(user.as_str())),
        "the user is gone"
    );
    assert!(
        env.bindings_of_user(&user).is_empty(),
        "and their bindings: {:?}",
        env.bindings_of_user(&user)
    );
    assert_eq!(env.remote().calls().delete_user, 1);
    env.wait_event("gone", "UserDeleted").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn an_email_conflict_loser_never_touches_bindings() {
    let env = env("rb-conflict").await;
    let env_crn = env.crn(ENV);
    let owner = create_bound(
        &env,
        invitation("a", "shared-rb@example.com"),
        &[("EnvironmentAdmin".into(), env_crn.clone())],
    )
    .await;
    let user = user_of(&owner);
    let ids = status_ids(&owner);
    let before = env.remote().role_binding_calls();
    // creationTimestamp has one-second resolution
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut loser = listing(
        invitation("b", "Shared-RB@example.com"),
        &[
            ("DataSteward".into(), env_crn.clone()),
            ("DeveloperRead".into(), TOPIC.into()),
        ],
    );
    // were the loser to act, exclusive would delete the owner's binding
    loser.spec.exclusive_role_bindings = true;
    env.create(&loser).await;
    let b = env.wait_reason("b", "EmailConflict").await;
    assert!(
        ready_of(&b)
            .expect("Ready")
            .2
            .contains(&format!("{}/a", env.ns)),
        "{:?}",
        ready_of(&b)
    );
    tokio::time::sleep(RESYNC * 3).await;
    let after = env.remote().role_binding_calls();
    assert_eq!(
        (after.create, after.delete),
        (before.create, before.delete),
        "the loser created or deleted a binding"
    );
    assert_eq!(remote_ids(&env, &user), ids);
    assert_eq!(
        granted(&env, &user),
        pairs(&[("EnvironmentAdmin", &env_crn)])
    );
    for e in env.events("b").await {
        assert!(
            !e.1.starts_with("RoleBinding") && e.1 != reason::UNLISTED_ROLE_BINDING_DELETED,
            "the loser reported a binding change: {e:?}"
        );
    }

    env.delete_and_wait_gone("b").await;
    let after = env.remote().role_binding_calls();
    assert_eq!(
        (after.create, after.delete),
        (before.create, before.delete),
        "deleting the loser touched a binding"
    );
    assert_eq!(remote_ids(&env, &user), ids, "the owner's bindings stay");
    let a = env.api.get("a").await.expect("readable");
    assert!(all_bound(&a, 1) && ready_of(&a).is_some_and(|r| r.0 == "True"));
    assert_eq!(status_ids(&a), ids);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn observation_is_batched_per_scope_not_per_invitation() {
    const N: usize = 20;
    let env = env("rb-cost").await;
    let items = two_items(&env);
    for i in 0..N {
        env.create(&listing(
            invitation(&format!("fleet-{i}"), &format!("fleet-{i}@example.com")),
            &items,
        ))
        .await;
    }
    for i in 0..N {
        env.wait_for(&format!("fleet-{i}"), "Ready with both Bound", |inv| {
            all_bound(inv, 2) && ready_of(inv).is_some_and(|r| r.0 == "True")
        })
        .await;
    }
    assert_eq!(env.remote().role_bindings().len(), 2 * N);
    // let the last creations' wake-ups settle, then measure three resyncs
    tokio::time::sleep(RESYNC * 2).await;
    let before = env.remote().role_binding_calls();
    let invitation_lists = env.remote().calls().list;
    tokio::time::sleep(RESYNC * 3).await;
    let after = env.remote().role_binding_calls();
    let lists = after.list - before.list;
    let sweeps = env.remote().calls().list - invitation_lists;
    eprintln!(
        "rb-cost: {N} Invitations x 2 bindings over 2 scopes: {lists} role-binding lists and \
         {sweeps} invitation lists in 3 resyncs; creates {}, gets {}, deletes {} meanwhile",
        after.create - before.create,
        after.get - before.get,
        after.delete - before.delete
    );
    let distinct_scopes = 2;
    assert!(
        lists <= 3 * distinct_scopes + 5,
        "{lists} role-binding lists in 3 resyncs of {N} Invitations"
    );
    assert!(lists > 0, "bindings were never observed");
    assert_eq!(
        (after.create, after.get, after.delete),
        (before.create, before.get, before.delete),
        "the steady state reads nothing per Invitation and changes nothing"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_binding_confluent_keeps_failing_is_pending_until_it_answers() {
    let env = env("rb-pending").await;
    let items = two_items(&env);
    // each create answers 503 for a while: several reconciles in a row fail
    const FAILURES: u32 = 6;
    env.remote().inject(Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/role-bindings".into(),
        count: FAILURES,
        action: FaultAction::Status { status: 503 },
    });
    env.create(&listing(invitation("pat", "pat@example.com"), &items))
        .await;
    let inv = env.wait_reason("pat", reason::ROLE_BINDING_PENDING).await;
    assert_eq!(ready_of(&inv).map(|r| r.0), Some("False".into()));
    assert_eq!(
        phase_of(&inv),
        Some("Sent"),
        "the phase is the invitation's"
    );
    let entries = bindings_of(&inv);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert!(
        entries.iter().any(|e| {
            // a 503 may have created it: Creating (looked up next), shown as pending
            matches!(
                e.state,
                RoleBindingState::Pending | RoleBindingState::Creating
            ) && e.id.is_none()
                && e.message.is_some()
        }),
        "{entries:#?}"
    );
    assert!(
        entries.iter().all(|e| e.state != RoleBindingState::Refused),
        "a 503 is no refusal: {entries:#?}"
    );
    assert_eq!(env.live("pat@example.com").len(), 1);

    let inv = env
        .wait_for("pat", "Ready once Confluent answers", |i| {
            all_bound(i, 2) && ready_of(i).is_some_and(|r| r.0 == "True")
        })
        .await;
    assert!(env.remote().pending_faults().is_empty());
    let user = user_of(&inv);
    assert_eq!(
        granted(&env, &user),
        pairs(&[
            ("EnvironmentAdmin", &env.crn(ENV)),
            ("DeveloperRead", &topic(&env))
        ])
    );
    assert_eq!(remote_ids(&env, &user), status_ids(&inv));
    assert_eq!(
        env.remote().role_binding_calls().create,
        u64::from(FAILURES) + 2,
        "one create per failure, then one per item"
    );
}

/// A preview needs the invitee's user id, so the Invitation is reconciled for real first; the
/// preview then covers a spec change.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_dry_run_reports_the_bindings_it_would_create_and_delete_and_writes_none() {
    let mut env = env("rb-dry-run").await;
    let env_crn = env.crn(ENV);
    let inv = create_bound(
        &env,
        invitation("dry", "dry@example.com"),
        &[("EnvironmentAdmin".into(), env_crn.clone())],
    )
    .await;
    let user = user_of(&inv);
    let admin_id = status_id(&inv, "EnvironmentAdmin", &env_crn);
    let unlisted = env.remote().seed_role_binding(&CreateRoleBinding {
        principal: user_principal(&user),
        role_name: "DataSteward".into(),
        crn_pattern: env_crn.clone(),
    });
    let unlisted_id = unlisted.id.clone().expect("an id");

    env.kill_operator();
    let preview = env.spawn_operator(&["--dry-run"]);
    env.operator = Some(preview);
    env.wait_ready().await;
    let before = env.remote().role_binding_calls();
    env.patch_spec(
        "dry",
        serde_json::json!({
            "roleBindings": [
                {"roleName": "EnvironmentAdmin", "crnPattern": env_crn},
                {"roleName": "DeveloperRead", "crnPattern": TOPIC},
            ],
            "exclusiveRoleBindings": true,
        }),
    )
    .await;
    let (kind, note) = env
        .wait_event("dry", reason::WOULD_CREATE_ROLE_BINDING)
        .await;
    assert_eq!(kind, "Normal");
    assert!(
        note.contains("DeveloperRead") && note.contains(&topic(&env)),
        "{note}"
    );
    let (_, note) = env
        .wait_event("dry", reason::WOULD_DELETE_ROLE_BINDING)
        .await;
    assert!(note.contains(&unlisted_id), "{note}");
    assert!(
        !env.events("dry")
            .await
            .iter()
            .any(|e| e.1.starts_with("WouldDelete") && e.2.contains(&admin_id)),
        "the listed binding is kept"
    );
    tokio::time::sleep(RESYNC * 3).await;
    let after = env.remote().role_binding_calls();
    assert_eq!(
        (after.create, after.delete),
        (before.create, before.delete),
        "the preview wrote nothing"
    );
    assert_eq!(
        remote_ids(&env, &user),
        BTreeSet::from([admin_id.clone(), unlisted_id.clone()])
    );

    // the same object, reconciled for real
    env.kill_operator();
    env.start_operator();
    env.wait_ready().await;
    let inv = env
        .wait_for("dry", "Ready with both Bound", |i| {
            all_bound(i, 2) && ready_of(i).is_some_and(|r| r.0 == "True")
        })
        .await;
    eventually("the unlisted binding deleted", DRIFT, || async {
        (!remote_ids(&env, &user).contains(&unlisted_id)).then_some(())
    })
    .await;
    assert_eq!(remote_ids(&env, &user), status_ids(&inv));
    assert!(status_ids(&inv).contains(&admin_id));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn roles_outside_allowed_roles_are_refused_unsent_and_kept_from_exclusive() {
    let env = env_with(
        "rb-allowed-roles",
        Options {
            extra_args: vec!["--allowed-roles".into(), "EnvironmentAdmin".into()],
            ..Options::default()
        },
    )
    .await;
    // a member who is an organization admin, and an Invitation for them that would both grant
    // a role the platform team did not allow and strip every other binding
    env.create(&listing(
        invitation("boss", "boss@example.com"),
        &two_items(&env),
    ))
    .await;
    let inv = env
        .wait_for("boss", "RoleBindingRefused", |i| {
            ready_of(i).is_some_and(|r| r.1 == reason::ROLE_BINDING_REFUSED)
                && bindings_of(i).len() == 2
                && bindings_of(i)[0].state == RoleBindingState::Bound
        })
        .await;
    let entries = bindings_of(&inv);
    assert_eq!(entries[1].state, RoleBindingState::Refused);
    let why = entries[1].message.clone().unwrap_or_default();
    assert!(why.contains("--allowed-roles: EnvironmentAdmin"), "{why}");
    let user = user_of(&inv);
    let roles: Vec<String> = env
        .bindings_of_user(&user)
        .iter()
        .filter_map(|b| b.role_name.clone())
        .collect();
    assert_eq!(roles, ["EnvironmentAdmin"], "DeveloperRead was never sent");
    assert_eq!(env.remote().role_binding_calls().create, 1);
    let (kind, note) = env.wait_event("boss", reason::ROLE_BINDING_REFUSED).await;
    assert_eq!(kind, "Warning");
    assert!(note.contains("DeveloperRead"), "{note}");

    // exclusive: an unlisted OrganizationAdmin binding is out of reach, an unlisted binding of
    // an allowed role goes
    let admin = env.remote().seed_role_binding(&CreateRoleBinding {
        principal: user_principal(&user),
        role_name: "OrganizationAdmin".into(),
        crn_pattern: env.crn(""),
    });
    let stray = env.remote().seed_role_binding(&CreateRoleBinding {
        principal: user_principal(&user),
        role_name: "EnvironmentAdmin".into(),
        crn_pattern: env.crn("/environment=env-other"),
    });
    env.patch_spec("boss", serde_json::json!({"exclusiveRoleBindings": true}))
        .await;
    let stray_id = stray.id.clone().expect("an id");
    eventually("the allowed-role stray deleted", DRIFT, || async {
        (!remote_ids(&env, &user).contains(&stray_id)).then_some(())
    })
    .await;
    tokio::time::sleep(RESYNC * 3).await;
    let admin_id = admin.id.clone().expect("an id");
    assert!(
        remote_ids(&env, &user).contains(&admin_id),
        "exclusiveRoleBindings deleted a role outside --allowed-roles"
    );
}
