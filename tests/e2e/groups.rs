//! `InvitationGroup`: one child Invitation per member, members in and out, a clean exit.

use std::time::{Duration, Instant};

use confluent_invitation_operator::invitation::resource::Invitation;
use confluent_invitation_operator::invitation_group::decide;
use confluent_invitation_operator::invitation_group::resource::{
    GROUP_LABEL, InvitationGroup, InvitationGroupSpec,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use crate::harness::*;
use crate::role_bindings::{ENV, TOPIC};

fn group_of(name: &str, members: &[&str], policy: &str, bindings: bool) -> InvitationGroup {
    let mut spec = serde_json::json!({
        "members": members,
        "memberRemovalPolicy": policy,
    });
    if bindings {
        spec["roleBindings"] = serde_json::json!([
            {"roleName": "DeveloperRead", "crnPattern": TOPIC},
            {"roleName": "DeveloperWrite", "crnPattern": TOPIC},
        ]);
    }
    let spec: InvitationGroupSpec = serde_json::from_value(spec).expect("a group spec");
    InvitationGroup::new(name, spec)
}

fn groups(env: &Env) -> Api<InvitationGroup> {
    Api::namespaced(env.kube.clone(), &env.ns)
}

async fn create_group(env: &Env, group: &InvitationGroup) {
    groups(env)
        .create(&PostParams::default(), group)
        .await
        .expect("group created");
}

async fn set_members(env: &Env, group: &str, members: &[&str]) {
    let patch = serde_json::json!({"spec": {"members": members}});
    groups(env)
        .patch(group, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("members patched");
}

/// The group once its Ready reason is `reason`.
async fn wait_group(env: &Env, group: &str, reason: &str) -> InvitationGroup {
    eventually(&format!("group {group} {reason}"), WAIT, || {
        let api = groups(env);
        async move {
            let g = api.get_opt(group).await.ok().flatten()?;
            let ready = g.status.as_ref()?.ready()?;
            (ready.reason == reason
                && g.status.as_ref()?.observed_generation == g.metadata.generation)
                .then_some(g)
        }
    })
    .await
}

/// The group's live (not deleting) children.
async fn children(env: &Env, group: &str) -> Vec<Invitation> {
    env.api
        .list(&ListParams::default().labels(&format!("{GROUP_LABEL}={group}")))
        .await
        .expect("children listed")
        .items
        .into_iter()
        .filter(|i| i.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_group_invites_its_members_with_their_bindings_and_follows_the_list() {
    let env = env("group").await;
    let members = ["ana@example.com", "bo@example.com", "cy@example.com"];
    create_group(&env, &group_of("payments", &members, "Delete", true)).await;
    let ready = wait_group(&env, "payments", "MembersReady").await;
    let status = ready.status.expect("status");
    assert_eq!(
        (
            status.summary.members,
            status.summary.ready,
            status.summary.pending
        ),
        (3, 3, 3)
    );
    let emails: Vec<&str> = status.members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, members, "sorted by email");
    for m in &status.members {
        assert_eq!(m.invitation, decide::child_name("payments", &m.email));
        let user = m.user_id.as_deref().expect("a user id");
        assert_eq!(
            env.bindings_of_user(user).len(),
            2,
            "{} has both bindings",
            m.email
        );
        assert_eq!(env.live(&m.email).len(), 1);
    }
    assert_eq!(env.remote().calls().create, 3, "three invitations");
    let child = env
        .api
        .get(&status.members[0].invitation)
        .await
        .expect("child");
    let owner = &child.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("InvitationGroup", Some(true))
    );
    assert!(
        !child.name_any().contains("example"),
        "no email in a child's name"
    );
    let (kind, note) = env.wait_event("payments", "MembersAdded").await;
    assert_eq!(kind, "Normal");
    assert!(
        note.contains("3 members") && note.contains("ana@example.com"),
        "{note}"
    );

    // add, remove and re-add a member: one invitation each time
    set_members(
        &env,
        "payments",
        &[
            "ana@example.com",
            "bo@example.com",
            "cy@example.com",
            "dee@example.com",
        ],
    )
    .await;
    wait_group(&env, "payments", "MembersReady").await;
    assert_eq!(env.remote().calls().create, 4);
    set_members(
        &env,
        "payments",
        &["ana@example.com", "bo@example.com", "cy@example.com"],
    )
    .await;
    eventually("dee's invitation deleted", WAIT, || {
        let env = &env;
        async move { env.live("dee@example.com").is_empty().then_some(()) }
    })
    .await;
    wait_group(&env, "payments", "MembersReady").await;
    assert_eq!(children(&env, "payments").await.len(), 3);
    set_members(
        &env,
        "payments",
        &[
            "ana@example.com",
            "bo@example.com",
            "cy@example.com",
            "dee@example.com",
        ],
    )
    .await;
    wait_group(&env, "payments", "MembersReady").await;
    assert_eq!(
        env.remote().calls().create,
        5,
        "re-adding sends one invitation"
    );
    assert_eq!(env.live("dee@example.com").len(), 1);

    // a child edited by hand is put back
    let bo = decide::child_name("payments", "bo@example.com");
    let edit = serde_json::json!({"spec": {"roleBindings": null, "reinviteOnExpiry": true}});
    env.api
        .patch(&bo, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("child edited");
    let back = eventually("bo's Invitation put back", WAIT, || {
        let env = &env;
        let bo = bo.clone();
        async move {
            let c = env.api.get(&bo).await.ok()?;
            (c.spec.role_bindings.len() == 2 && !c.spec.reinvite_on_expiry).then_some(c)
        }
    })
    .await;
    assert_eq!(back.spec.email, "bo@example.com");

    // an edit to an empty list is refused: nobody removed
    set_members(&env, "payments", &[]).await;
    let refused = wait_group(&env, "payments", "EmptyMembers").await;
    let (kind, _) = env.wait_event("payments", "EmptyMembers").await;
    assert_eq!(kind, "Warning");
    assert_eq!(refused.status.expect("status").summary.members, 0);
    tokio::time::sleep(Duration::from_secs(2 * RESYNC.as_secs())).await;
    assert_eq!(children(&env, "payments").await.len(), 4, "nobody removed");

    // deleting the group deletes every child, each with its policy
    groups(&env)
        .delete("payments", &DeleteParams::default())
        .await
        .expect("group deleted");
    eventually("every member's invitation deleted", WAIT, || {
        let env = &env;
        async move {
            let left = env.api.list(&ListParams::default()).await.ok()?.items;
            (left.is_empty() && members.iter().all(|m| env.live(m).is_empty())).then_some(())
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn removing_an_accepted_member_follows_the_removal_policy() {
    let env = env("group-removal").await;
    // (group, its removal policy): one accepted member removed from each
    for (name, policy) in [
        ("keep", "Delete"),
        ("leave", "Orphan"),
        ("drop", "DeleteUser"),
    ] {
        let accepted = format!("{name}-a@example.com");
        let other = format!("{name}-b@example.com");
        create_group(&env, &group_of(name, &[&accepted, &other], policy, true)).await;
        let ready = wait_group(&env, name, "MembersReady").await;
        let member = ready
            .status
            .expect("status")
            .members
            .into_iter()
            .find(|m| m.email == accepted)
            .expect("the member");
        let user = member.user_id.clone().expect("user");
        let id = id_of(&env.api.get(&member.invitation).await.expect("child"));
        env.remote().accept(&id).expect("accepted");
        let child = member.invitation.clone();
        eventually("the member shows Accepted", WAIT, || {
            let env = &env;
            let child = child.clone();
            async move { (phase_of(&env.api.get(&child).await.ok()?)? == "Accepted").then_some(()) }
        })
        .await;
        set_members(&env, name, &[&other]).await;
        env.wait_gone(&child).await;
        let user_exists = env
            .remote()
            .users()
            .iter()
            .any(|u| u.id.as_deref() == Some(&user));
        let bindings = env.bindings_of_user(&user).len();
        match policy {
            // the member stays, their bindings from the group go
            "Delete" => assert_eq!((user_exists, bindings), (true, 0), "{policy}"),
            // nothing touched
            "Orphan" => assert_eq!((user_exists, bindings), (true, 2), "{policy}"),
            // the user goes, with their bindings
            _ => assert_eq!((user_exists, bindings), (false, 0), "{policy}"),
        }
        let after = wait_group(&env, name, "MembersReady").await;
        assert_eq!(after.status.expect("status").summary.members, 1);
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_member_whose_email_another_invitation_owns_shows_the_owner() {
    let env = env("group-conflict").await;
    env.create(&invitation("standalone", "shared@example.com"))
        .await;
    env.wait_phase("standalone", "Sent", "True").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    create_group(
        &env,
        &group_of(
            "team",
            &["shared@example.com", "solo@example.com"],
            "Delete",
            false,
        ),
    )
    .await;
    // (MembersNotReady comes first while the members have no status yet)
    let status = eventually("the group shows the conflict", WAIT, || {
        let api = groups(&env);
        async move {
            let status = api.get_opt("team").await.ok().flatten()?.status?;
            (status.summary.conflicts == 1 && status.summary.ready == 1).then_some(status)
        }
    })
    .await;
    assert_eq!(
        status.ready().map(|c| c.reason.as_str()),
        Some("MembersNotReady")
    );
    let shared = status
        .members
        .iter()
        .find(|m| m.email == "shared@example.com")
        .expect("member");
    assert_eq!(shared.reason.as_deref(), Some("EmailConflict"));
    let owner = format!("{}/standalone", env.ns);
    assert!(
        shared
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&owner)),
        "{shared:?}"
    );
    assert_eq!(
        env.remote().calls().create,
        2,
        "the standalone and solo only"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn twenty_removals_five_per_resync_take_four_windows() {
    // a longer resync than the suite's, so each window can be seen
    let resync = Duration::from_secs(5);
    let env = env_with(
        "group-throttle",
        Options {
            resync,
            ..Options::default()
        },
    )
    .await;
    let all: Vec<String> = (0..21).map(|i| format!("m{i:02}@example.com")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    create_group(&env, &group_of("big", &refs, "Delete", false)).await;
    wait_group(&env, "big", "MembersReady").await;
    let edited = Instant::now();
    set_members(&env, "big", &["m20@example.com"]).await;
    let throttled = wait_group(&env, "big", "RemovalThrottled").await;
    let message = throttled
        .status
        .and_then(|s| s.ready().map(|c| c.message.clone()));
    assert!(
        message.as_deref().is_some_and(|m| m.contains("15 members")),
        "{message:?}"
    );
    // The live children as the windows pass: each window's five deletions are sent one after
    // the other, so a poll may land between two of them; what must hold is that no window
    // removes more than five (the count never falls below 21 - 5 × windows begun) and that
    // each window's level is reached and held (16, 11, 6, then 1).
    let mut seen: Vec<(Duration, usize)> = Vec::new();
    while edited.elapsed() < WAIT {
        let left = children(&env, "big").await.len();
        let at = edited.elapsed();
        if seen.last().map(|(_, n)| *n) != Some(left) {
            seen.push((at, left));
        }
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (at, left) in &seen {
        // the first window began at the pass the edit woke, after `edited`
        let windows_begun = 1 + (at.as_secs_f64() / resync.as_secs_f64()) as usize;
        assert!(
            *left + 5 * windows_begun >= 21,
            "{left} left {at:?} after the edit: more than 5 per window ({seen:?})"
        );
    }
    let levels: Vec<usize> = seen.iter().map(|(_, n)| *n).collect();
    for level in [16, 11, 6, 1] {
        assert!(levels.contains(&level), "level {level} held: {seen:?}");
    }
    assert!(
        levels.windows(2).all(|w| w[1] < w[0]),
        "only ever fewer: {seen:?}"
    );
    assert!(
        edited.elapsed() >= resync * 3,
        "four windows take three resync intervals at least: {:?}",
        edited.elapsed()
    );
    wait_group(&env, "big", "MembersReady").await;
    assert_eq!(
        env.remote().calls().delete,
        20,
        "each removed member's invitation deleted once"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_group_that_would_pass_the_role_binding_budget_adds_nobody() {
    let mut env = env("group-budget").await;
    env.kill_operator();
    env.options_mut().extra_args = vec!["--role-binding-budget".into(), "10".into()];
    env.start_operator();
    env.wait_ready().await;
    // a standalone Invitation with 2 bindings, a group of 3 × 2: 8 of 10
    env.create(&with_role_bindings(
        invitation("solo", "solo@example.com"),
        &[
            ("DeveloperRead", TOPIC),
            ("EnvironmentAdmin", &env.crn(ENV)),
        ],
    ))
    .await;
    env.wait_phase("solo", "Sent", "True").await;
    create_group(
        &env,
        &group_of(
            "team",
            &["a@example.com", "b@example.com", "c@example.com"],
            "Delete",
            true,
        ),
    )
    .await;
    wait_group(&env, "team", "MembersReady").await;
    // two more members would make 12 of 10: 2 over
    set_members(
        &env,
        "team",
        &[
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "d@example.com",
            "e@example.com",
        ],
    )
    .await;
    let refused = wait_group(&env, "team", "RoleBindingBudget").await;
    let message = refused
        .status
        .as_ref()
        .and_then(|s| s.ready().map(|c| c.message.clone()))
        .unwrap_or_default();
    assert!(
        message.contains("by 2") && message.contains("--role-binding-budget 10"),
        "{message}"
    );
    assert_eq!(children(&env, "team").await.len(), 3, "nobody added");
    assert_eq!(env.remote().calls().create, 4, "solo and the three");
    // asking for fewer grows again
    set_members(
        &env,
        "team",
        &[
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "d@example.com",
        ],
    )
    .await;
    wait_group(&env, "team", "MembersReady").await;
    assert_eq!(children(&env, "team").await.len(), 4);
}

/// With label-selector shards, a group and its members' Invitations stay in one slice: the
/// children carry the group's labels, and only the shard that selects the group makes them.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_labelled_group_and_its_members_stay_in_their_shard() {
    let mut env = env("group-shard").await;
    env.kill_operator();
    let mut a = env.spawn_operator(&["--label-selector", "shard=a"]);
    let mut b = env.spawn_operator(&["--label-selector", "shard notin (a)"]);
    env.ready(&mut a).await;
    env.ready(&mut b).await;
    let mut group = group_of(
        "sharded",
        &["s1@example.com", "s2@example.com"],
        "Delete",
        false,
    );
    group.metadata.labels = Some([("shard".to_owned(), "a".to_owned())].into());
    create_group(&env, &group).await;
    let ready = wait_group(&env, "sharded", "MembersReady").await;
    assert_eq!(ready.status.expect("status").summary.ready, 2);
    for child in children(&env, "sharded").await {
        assert_eq!(
            child.labels().get("shard").map(String::as_str),
            Some("a"),
            "{}",
            child.name_any()
        );
    }
    assert_eq!(env.remote().calls().create, 2, "each member invited once");
    drop((a, b));
}
