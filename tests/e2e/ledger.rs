//! `status.roleBindings` as a ledger: every path that used to lose track of a live grant (a 429
//! on one create, a failed list, a dry run, a lost answer, a tightened `--allowed-roles`, a
//! re-sent invitation, a hand-written id, a failing delete, an Orphan hand-over without its
//! Secret), each driven to its fault and then checked for the invariant: every binding the mock
//! holds for the invitee (current or previous) is recorded in status until it is gone, and what
//! must go goes.

use std::collections::BTreeSet;
use std::time::Duration;

use confluent_client::role_bindings::{CreateRoleBinding, user_principal};
use confluent_invitation_operator::invitation::resource::{DeletionPolicy, Invitation};
use confluent_invitation_operator::reason;
use confluent_invitation_operator::role_bindings::resource::RoleBindingState;
use confluent_mock::{Fault, FaultAction};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use crate::harness::*;
use crate::role_bindings::{
    DRIFT, ENV, TOPIC, create_bound, listing, remote_ids, status_id, status_ids, topic, two_items,
};

fn fault(method: Option<&str>, path_prefix: &str, count: u32, status: u16) -> Fault {
    Fault {
        method: method.map(str::to_owned),
        path_prefix: path_prefix.into(),
        count,
        action: FaultAction::Status { status },
    }
}

/// The path and query prefix of the role-binding lists of exactly `crn` (and its exact
/// look-ups): the client form-encodes the CRN.
fn lists_of(crn: &str) -> String {
    let encoded = crn
        .replace(':', "%3A")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("/iam/v2/role-bindings?crn_pattern={encoded}")
}

fn held(env: &Env, users: &[&str]) -> BTreeSet<String> {
    users.iter().flat_map(|u| remote_ids(env, u)).collect()
}

/// `name` read between two reads of the mock, and the ids the mock held for `users` at both
/// reads that this status does not record: a forgotten grant. (A binding held at both reads
/// existed all along, ids are never reused, and the operator records a binding before it
/// creates it: the status read in between must show it.)
async fn unrecorded_now(env: &Env, name: &str, users: &[&str]) -> (Invitation, BTreeSet<String>) {
    let before = held(env, users);
    let inv = get(env, name).await;
    let after = held(env, users);
    let recorded = status_ids(&inv);
    let missing = before
        .intersection(&after)
        .filter(|id| !recorded.contains(*id))
        .cloned()
        .collect();
    (inv, missing)
}

async fn get(env: &Env, name: &str) -> Invitation {
    env.api.get(name).await.expect("the Invitation")
}

/// Polls until `done`, failing as soon as the mock holds a binding of `users` that status does
/// not record (checked at every poll, not only at the end).
async fn never_unrecorded_until(
    env: &Env,
    name: &str,
    users: &[&str],
    what: &str,
    done: impl Fn(&Invitation) -> bool,
) -> Invitation {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (inv, missing) = unrecorded_now(env, name, users).await;
        assert!(
            missing.is_empty(),
            "{what}: live bindings {missing:?} are not recorded: {:#?}",
            bindings_of(&inv)
        );
        if done(&inv) {
            return inv;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}: {:#?}",
            inv.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ready_reason(i: &Invitation) -> String {
    ready_of(i).map(|r| r.1).unwrap_or_default()
}

fn is_ready(i: &Invitation) -> bool {
    ready_of(i).is_some_and(|r| r.0 == "True")
}

/// `name` once its one item is Bound and Ready is True.
async fn bound_once(env: &Env, name: &str, what: &str) -> Invitation {
    env.wait_for(name, what, |i| all_bound(i, 1) && is_ready(i))
        .await
}

/// Deletes `name` (policy Delete) and checks that `user` is left no binding.
async fn deleted_with_every_binding(env: &Env, name: &str, user: &str, why: &str) {
    env.delete_and_wait_gone(name).await;
    assert!(env.bindings_of_user(user).is_empty(), "{why}");
}

/// The binding `id` is gone, and status records exactly what Confluent holds for `user`.
fn gone_and_status_true(env: &Env, user: &str, id: &str, inv: &Invitation) {
    assert!(!remote_ids(env, user).contains(id));
    assert_eq!(remote_ids(env, user), status_ids(inv));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_replaced_item_stays_recorded_while_rate_limited_then_goes() {
    let env = env("ledger-replaced").await;
    let env_crn = env.crn(ENV);
    let inv = create_bound(
        &env,
        invitation("jane", "jane@example.com"),
        &[("EnvironmentAdmin".into(), env_crn.clone())],
    )
    .await;
    let user = user_of(&inv);
    let old = status_id(&inv, "EnvironmentAdmin", &env_crn);
    // every role-binding call answers 429 for a while: the first create and delete included
    env.remote()
        .inject(fault(None, "/iam/v2/role-bindings", 6, 429));
    env.patch_spec(
        "jane",
        serde_json::json!({"roleBindings": [{"roleName": "DataSteward", "crnPattern": env_crn}]}),
    )
    .await;
    let inv = never_unrecorded_until(&env, "jane", &[&user], "the replacement", |i| {
        all_bound(i, 1) && is_ready(i)
    })
    .await;
    assert!(
        !remote_ids(&env, &user).contains(&old),
        "the replaced binding is deleted"
    );
    assert_eq!(remote_ids(&env, &user), status_ids(&inv));
    assert_eq!(bindings_of(&inv)[0].role_name, "DataSteward");
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_previous_invitees_binding_goes_when_the_invitation_is_sent_again() {
    let env = env("ledger-previous").await;
    let items = [("EnvironmentAdmin".to_owned(), env.crn(ENV))];
    let inv = create_bound(&env, invitation("jane", "jane@example.com"), &items).await;
    let previous = user_of(&inv);
    // removed out of band while role-binding calls are rate limited: re-sent, a new user
    env.remote()
        .inject(fault(None, "/iam/v2/role-bindings", 4, 429));
    env.remote()
        .remove(&id_of(&inv))
        .expect("removed in the mock");
    let inv = never_unrecorded_until(&env, "jane", &[&previous], "the re-sent invitation", |i| {
        i.status.as_ref().and_then(|s| s.user_id.as_deref()) != Some(previous.as_str())
            && all_bound(i, 1)
            && is_ready(i)
    })
    .await;
    let current = user_of(&inv);
    assert!(
        env.bindings_of_user(&previous).is_empty(),
        "the previous invitee's binding is deleted"
    );
    assert_eq!(remote_ids(&env, &current), status_ids(&inv));
    assert!(
        bindings_of(&inv)
            .iter()
            .all(|e| e.principal.as_deref() == Some(user_principal(&current).as_str()))
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_resent_invitation_while_lists_fail_never_shows_the_previous_binding_as_the_new_users() {
    let env = env("ledger-resent-lists").await;
    let env_crn = env.crn(ENV);
    let items = [("EnvironmentAdmin".to_owned(), env_crn.clone())];
    let inv = create_bound(&env, invitation("jane", "jane@example.com"), &items).await;
    let previous = user_of(&inv);
    let old = status_id(&inv, "EnvironmentAdmin", &env_crn);
    env.remote()
        .inject(fault(Some("GET"), "/iam/v2/role-bindings?", 12, 503));
    env.remote()
        .remove(&id_of(&inv))
        .expect("removed in the mock");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (inv, missing) = unrecorded_now(&env, "jane", &[&previous]).await;
        let user = inv.status.as_ref().and_then(|s| s.user_id.clone());
        if user.as_deref() != Some(previous.as_str()) {
            // the new user's status never claims the previous user's binding
            assert!(
                !bindings_of(&inv)
                    .iter()
                    .any(|e| e.id.as_deref() == Some(old.as_str())
                        && e.state == RoleBindingState::Bound),
                "{:#?}",
                bindings_of(&inv)
            );
            if is_ready(&inv) {
                assert!(all_bound(&inv, 1), "{:#?}", bindings_of(&inv));
                break;
            }
        }
        assert!(missing.is_empty(), "{missing:?}: {:#?}", bindings_of(&inv));
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", inv.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually("the previous user's binding deleted", DRIFT, || async {
        env.bindings_of_user(&previous).is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_tightened_allowed_roles_keeps_the_binding_recorded_and_deletes_it_with_the_invitation() {
    let mut env = env("ledger-allowed-roles").await;
    let org = env.crn("");
    let inv = create_bound(
        &env,
        invitation("boss", "boss@example.com"),
        &[("OrganizationAdmin".into(), org.clone())],
    )
    .await;
    let user = user_of(&inv);
    let id = status_id(&inv, "OrganizationAdmin", &org);
    env.kill_operator();
    let tight = env.spawn_operator(&["--allowed-roles", "EnvironmentAdmin"]);
    env.operator = Some(tight);
    env.wait_ready().await;
    let inv = env
        .wait_for("boss", "RoleBindingDisallowed", |i| {
            ready_reason(i) == reason::ROLE_BINDING_DISALLOWED
        })
        .await;
    let entry = &bindings_of(&inv)[0];
    assert_eq!(
        (entry.state, entry.id.as_deref()),
        (RoleBindingState::Disallowed, Some(id.as_str())),
        "the id is kept: {entry:?}"
    );
    let message = entry.message.clone().unwrap_or_default();
    assert!(
        message.contains("--allowed-roles: EnvironmentAdmin"),
        "{message}"
    );
    let (kind, _) = env
        .wait_event("boss", reason::ROLE_BINDING_DISALLOWED)
        .await;
    assert_eq!(kind, "Warning");
    assert!(remote_ids(&env, &user).contains(&id), "kept (Keep)");
    deleted_with_every_binding(
        &env,
        "boss",
        &user,
        "deleted with the Invitation (policy Delete)",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_refusal_of_allowed_roles_is_lifted_when_the_flag_is() {
    let mut env = env_with(
        "ledger-flag-lifted",
        Options {
            extra_args: vec!["--allowed-roles".into(), "EnvironmentAdmin".into()],
            ..Options::default()
        },
    )
    .await;
    env.create(&listing(
        invitation("dev", "dev@example.com"),
        &[("DeveloperRead".into(), TOPIC.into())],
    ))
    .await;
    let inv = env.wait_reason("dev", reason::ROLE_BINDING_REFUSED).await;
    assert!(
        bindings_of(&inv)[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("--allowed-roles")),
        "{:#?}",
        bindings_of(&inv)
    );
    env.kill_operator();
    env.options_mut().extra_args.clear();
    env.start_operator();
    env.wait_ready().await;
    let inv = bound_once(&env, "dev", "Bound without the flag").await;
    assert!(
        bindings_of(&inv)[0].message.is_none(),
        "no word of a flag that no longer holds"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_refused_list_keeps_the_ids_and_the_deletion_still_deletes_them() {
    let env = env("ledger-list-403").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("jane", "jane@example.com"), &items).await;
    let user = user_of(&inv);
    let ids = status_ids(&inv);
    // every role-binding list refused from now on (reads by id and deletes still work)
    env.remote()
        .inject(fault(Some("GET"), "/iam/v2/role-bindings?", 10_000, 403));
    tokio::time::sleep(RESYNC * 3).await;
    let inv = get(&env, "jane").await;
    assert_eq!(
        status_ids(&inv),
        ids,
        "no id dropped: {:#?}",
        bindings_of(&inv)
    );
    assert!(all_bound(&inv, 2), "{:#?}", bindings_of(&inv));
    deleted_with_every_binding(&env, "jane", &user, "both deleted with the Invitation").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_dry_run_keeps_the_id_of_a_binding_it_would_delete() {
    let mut env = env("ledger-dry-run").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("jane", "jane@example.com"), &items).await;
    let user = user_of(&inv);
    let topic_id = status_id(&inv, "DeveloperRead", &topic(&env));
    env.kill_operator();
    let preview = env.spawn_operator(&["--dry-run"]);
    env.operator = Some(preview);
    env.wait_ready().await;
    env.patch_spec(
        "jane",
        serde_json::json!({"roleBindings": [{"roleName": "EnvironmentAdmin", "crnPattern": env.crn(ENV)}]}),
    )
    .await;
    let inv = env
        .wait_reason("jane", reason::WOULD_DELETE_ROLE_BINDING)
        .await;
    assert!(
        status_ids(&inv).contains(&topic_id),
        "{:#?}",
        bindings_of(&inv)
    );
    assert!(
        remote_ids(&env, &user).contains(&topic_id),
        "nothing deleted"
    );
    env.kill_operator();
    env.start_operator();
    env.wait_ready().await;
    let inv = bound_once(&env, "jane", "the removed item's binding deleted").await;
    gone_and_status_true(&env, &user, &topic_id, &inv);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_lost_create_is_found_and_deleted_when_the_invitation_goes_before_the_next_resync() {
    // a resync far away: only the deletion can find the lost create in time
    let env = env_with(
        "ledger-lost-create",
        Options {
            resync: Duration::from_secs(120),
            ..Options::default()
        },
    )
    .await;
    env.remote().inject(Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/role-bindings".into(),
        count: 1,
        action: FaultAction::CommitThenDrop,
    });
    env.create(&listing(
        invitation("jane", "jane@example.com"),
        &[("EnvironmentAdmin".into(), env.crn(ENV))],
    ))
    .await;
    let inv = env
        .wait_for("jane", "the create recorded as Creating", |i| {
            bindings_of(i)
                .first()
                .is_some_and(|e| e.state == RoleBindingState::Creating)
        })
        .await;
    let user = user_of(&inv);
    assert_eq!(
        env.bindings_of_user(&user).len(),
        1,
        "the lost create committed"
    );
    deleted_with_every_binding(&env, "jane", &user, "found by its key and deleted").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_failing_delete_is_not_ready_with_a_warning_until_it_goes() {
    let env = env("ledger-failing-delete").await;
    let items = two_items(&env);
    let inv = create_bound(&env, invitation("jane", "jane@example.com"), &items).await;
    let user = user_of(&inv);
    let topic_id = status_id(&inv, "DeveloperRead", &topic(&env));
    env.remote()
        .inject(fault(Some("DELETE"), "/iam/v2/role-bindings/", 12, 500));
    env.patch_spec(
        "jane",
        serde_json::json!({"roleBindings": [{"roleName": "EnvironmentAdmin", "crnPattern": env.crn(ENV)}]}),
    )
    .await;
    let inv = env
        .wait_reason("jane", reason::ROLE_BINDING_REVOCATION_PENDING)
        .await;
    assert_eq!(ready_of(&inv).map(|r| r.0).as_deref(), Some("False"));
    let entry = bindings_of(&inv)
        .into_iter()
        .find(|e| e.id.as_deref() == Some(topic_id.as_str()))
        .expect("still recorded");
    assert_eq!(entry.state, RoleBindingState::Deleting);
    let (kind, note) = env
        .wait_event("jane", reason::ROLE_BINDING_REVOCATION_PENDING)
        .await;
    assert_eq!(kind, "Warning");
    assert!(note.contains(&topic_id), "{note}");
    let inv = bound_once(&env, "jane", "deleted once DELETE works").await;
    gone_and_status_true(&env, &user, &topic_id, &inv);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn one_scope_whose_list_fails_stops_nobody_elses_drift_repair() {
    let env = env("ledger-one-scope").await;
    let blocked = env.crn("/environment=env-blocked");
    let open = env.crn("/environment=env-open");
    let a = create_bound(
        &env,
        invitation("a", "a@example.com"),
        &[("EnvironmentAdmin".into(), blocked.clone())],
    )
    .await;
    let b = create_bound(
        &env,
        invitation("b", "b@example.com"),
        &[("EnvironmentAdmin".into(), open.clone())],
    )
    .await;
    let a_id = status_id(&a, "EnvironmentAdmin", &blocked);
    let b_id = status_id(&b, "EnvironmentAdmin", &open);
    // the key may not list one scope any more (another team's)
    env.remote()
        .inject(fault(Some("GET"), &lists_of(&blocked), 10_000, 403));
    tokio::time::sleep(RESYNC * 2).await;
    env.remote()
        .remove_role_binding(&b_id)
        .expect("removed out of band");
    let b = env
        .wait_for_within("b", "recreated in the same resync as usual", DRIFT, |i| {
            all_bound(i, 1) && status_ids(i) != BTreeSet::from([b_id.clone()])
        })
        .await;
    assert_eq!(remote_ids(&env, &user_of(&b)), status_ids(&b));
    let a = get(&env, "a").await;
    assert_eq!(
        status_ids(&a),
        BTreeSet::from([a_id.clone()]),
        "the unlistable scope's entry keeps its id"
    );
    assert!(remote_ids(&env, &user_of(&a)).contains(&a_id));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn an_id_written_into_status_by_hand_never_deletes_another_users_binding() {
    let env = env("ledger-forged").await;
    let admin = env.remote().seed_invitation("admin@example.com", None);
    let admin_user = admin.user_id().expect("a user").to_owned();
    let admins = env.remote().seed_role_binding(&CreateRoleBinding {
        principal: user_principal(&admin_user),
        role_name: "OrganizationAdmin".into(),
        crn_pattern: env.crn(""),
    });
    let admin_id = admins.id.clone().expect("an id");
    let inv = create_bound(
        &env,
        invitation("jane", "jane@example.com"),
        &[("EnvironmentAdmin".into(), env.crn(ENV))],
    )
    .await;
    let user = user_of(&inv);
    let mut entries = serde_json::to_value(bindings_of(&inv)).expect("JSON");
    if let Some(list) = entries.as_array_mut() {
        list.push(serde_json::json!({
            "roleName": "OrganizationAdmin",
            "crnPattern": env.crn(""),
            "id": admin_id,
            "state": "Bound",
            "principal": user_principal(&user),
        }));
    }
    env.api
        .patch_status(
            "jane",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"roleBindings": entries}})),
        )
        .await
        .expect("status patched by hand");
    let inv = env
        .wait_for("jane", "the forged entry dropped", |i| {
            !status_ids(i).contains(&admin_id)
        })
        .await;
    assert!(
        remote_ids(&env, &admin_user).contains(&admin_id),
        "the admin's binding was never deleted"
    );
    assert_eq!(env.remote().role_binding_calls().delete, 0);
    assert!(all_bound(&inv, 1));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn an_orphan_handing_over_completes_without_its_secret() {
    let env = env("ledger-orphan-handover").await;
    env.secret(
        "owner-key",
        &[("apiKey", API_KEY), ("apiSecret", API_SECRET)],
    )
    .await;
    let mut owner = with_secret(invitation("a-owner", "shared@example.com"), "owner-key");
    owner.spec.deletion_policy = DeletionPolicy::Orphan;
    let owner = create_bound(&env, owner, &[("EnvironmentAdmin".into(), env.crn(ENV))]).await;
    let invitation_id = id_of(&owner);
    env.create(&invitation("b-claimant", "shared@example.com"))
        .await;
    env.wait_reason("b-claimant", reason::EMAIL_CONFLICT).await;
    // the Secret goes for good (its finalizer removed by hand)
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &env.ns);
    secrets
        .patch(
            "owner-key",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("finalizers removed");
    secrets
        .delete("owner-key", &DeleteParams::default())
        .await
        .expect("Secret deleted");
    env.delete_and_wait_gone("a-owner").await;
    env.wait_for("b-claimant", "the claimant adopts", is_ready)
        .await;
    let claimant = get(&env, "b-claimant").await;
    assert_eq!(
        id_of(&claimant),
        invitation_id,
        "the same invitation, handed over"
    );
}

/// An owner handing the email over keeps no binding its successor only lists: the successor may
/// go before it adopts it (here it is paused), and a binding kept for it would be nobody's.
/// Once it runs, the successor creates and records what it lists; deleted, it takes that along.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_hand_over_leaves_no_binding_to_a_successor_that_never_recorded_it() {
    let env = env("ledger-handover").await;
    let items = [("EnvironmentAdmin".to_string(), env.crn(ENV))];
    let owner = create_bound(&env, invitation("a-owner", "shared@example.com"), &items).await;
    let user = user_of(&owner);
    let invitation_id = id_of(&owner);
    env.create(&listing(
        invitation("b-claimant", "shared@example.com"),
        &items,
    ))
    .await;
    env.wait_reason("b-claimant", reason::EMAIL_CONFLICT).await;
    env.set_paused("b-claimant", true).await;
    env.delete_and_wait_gone("a-owner").await;
    assert!(
        remote_ids(&env, &user).is_empty(),
        "the owner left bindings no status records: {:?}",
        env.bindings_of_user(&user)
    );
    env.set_paused("b-claimant", false).await;
    let claimant = env
        .wait_for("b-claimant", "the claimant takes over, bound", |i| {
            is_ready(i) && all_bound(i, 1)
        })
        .await;
    assert_eq!(
        id_of(&claimant),
        invitation_id,
        "the same invitation, handed over"
    );
    assert_eq!(user_of(&claimant), user, "the same invitee");
    assert_eq!(status_ids(&claimant), remote_ids(&env, &user));
    env.delete_and_wait_gone("b-claimant").await;
    assert!(
        remote_ids(&env, &user).is_empty(),
        "the last claimant takes its binding along"
    );
}
