//! One owner per email across installations (`--claims-namespace`): two operator processes
//! that each see only their own namespace (or shard) agree through a Lease per
//! (organization, email) on who owns the invitation; the holder's deletion hands it over, a
//! claim whose holder is gone is released, and a shard flip or a restart under another
//! installation id keeps the claim where it is.

use std::collections::BTreeMap;
use std::time::Duration;

use confluent_invitation_operator::invitation::email_claim;
use confluent_invitation_operator::invitation::ownership::Scope;
use confluent_invitation_operator::invitation::resource::Invitation;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use crate::harness::*;

/// The flags of an installation keeping its claims in the env's claims namespace.
fn claim_flags(env: &Env, installation: &str) -> Vec<String> {
    vec![
        "--claims-namespace".into(),
        env.claims_namespace(),
        "--installation-id".into(),
        installation.into(),
    ]
}

/// An installation named `installation` watching `scope`, keeping its claims in the env's
/// claims namespace.
fn spawn(env: &mut Env, scope: &[&str], installation: &str) -> Operator {
    let flags = claim_flags(env, installation);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    env.spawn_operator_watching(scope, &flags)
}

/// The claim Lease of `email` in the mock's organization, if any.
async fn claim_of(env: &Env, email: &str) -> Option<Lease> {
    let name = email_claim::claim_name(&Scope::Organization(env.org_id.clone()), email)
        .expect("an organization scope names a claim");
    let leases: Api<Lease> = Api::namespaced(env.kube.clone(), &env.claims_namespace());
    leases.get_opt(&name).await.expect("lease read")
}

/// A second team's namespace, and its Invitations' API.
async fn team_b(env: &Env) -> (String, Api<Invitation>) {
    let ns = test_support::create_namespace(&env.kube, "e2e-claims-b")
        .await
        .expect("namespace created");
    let api = Api::namespaced(env.kube.clone(), &ns);
    (ns, api)
}

async fn drop_namespace(env: &Env, ns: &str) {
    let nss: Api<Namespace> = Api::all(env.kube.clone());
    let _ = nss.delete(ns, &DeleteParams::default()).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn two_installations_agree_on_one_owner_and_hand_over_without_a_second_invitation() {
    let mut env = env("claims").await;
    env.kill_operator(); // replaced by two installations, one per namespace
    let (b_ns, b_api) = team_b(&env).await;
    let a_id = format!("{}/a", env.ns);
    let b_id = format!("{b_ns}/b");
    let a_ns = env.ns.clone();
    let mut a = spawn(&mut env, &["--watch-namespace", &a_ns], &a_id);
    let mut b = spawn(&mut env, &["--watch-namespace", &b_ns], &b_id);
    env.ready(&mut a).await;
    env.ready(&mut b).await;

    // the older one in A's namespace holds the claim
    env.create(&invitation("x", "shared@example.com")).await;
    let owned = env.wait_phase("x", "Sent", "True").await;
    let id = id_of(&owned);
    let user = user_of(&owned);
    let claim = claim_of(&env, "shared@example.com").await.expect("a claim");
    assert_eq!(
        claim.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        owned.uid(),
        "held by the Invitation's UID"
    );
    assert!(
        !claim.name_any().contains("example"),
        "no email in the Lease's name"
    );

    // B sees only its own namespace, yet sends nothing: the claim decides
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b_api
        .create(
            &PostParams::default(),
            &invitation("y", "Shared@Example.com"),
        )
        .await
        .expect("y created");
    let conflicted = wait_reason_via(&b_api, "y", "EmailConflict").await;
    let message = ready_of(&conflicted).expect("Ready").2;
    assert!(
        message.contains(&format!("{a_ns}/x")),
        "the message names the holder: {message}"
    );
    assert_eq!(
        env.remote().calls().create,
        1,
        "exactly one invitation POST"
    );
    assert_eq!(env.live("shared@example.com").len(), 1);

    // the holder goes (policy Delete): the invitation stays for B, which adopts it
    env.delete_and_wait_gone("x").await;
    let adopted = wait_ready_via(&b_api, "y").await;
    assert_eq!(id_of(&adopted), id, "the same invitation id");
    assert_eq!(user_of(&adopted), user, "the same user id");
    let calls = env.remote().calls();
    assert_eq!(
        (calls.create, calls.delete),
        (1, 0),
        "no second POST, no DELETE"
    );
    let claim = claim_of(&env, "shared@example.com").await.expect("a claim");
    assert_eq!(
        claim.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        adopted.uid(),
        "B's Invitation holds the claim now"
    );

    // A's process dies holding a claim; deleting that claim by hand hands it over
    env.create(&invitation("x2", "second@example.com")).await;
    let held = env.wait_phase("x2", "Sent", "True").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b_api
        .create(
            &PostParams::default(),
            &invitation("y2", "second@example.com"),
        )
        .await
        .expect("y2 created");
    wait_reason_via(&b_api, "y2", "EmailConflict").await;
    a.kill();
    let lease = claim_of(&env, "second@example.com")
        .await
        .expect("x2's claim");
    let leases: Api<Lease> = Api::namespaced(env.kube.clone(), &env.claims_namespace());
    leases
        .delete(&lease.name_any(), &DeleteParams::default())
        .await
        .expect("claim deleted by hand");
    let taken = wait_ready_via(&b_api, "y2").await;
    assert_eq!(id_of(&taken), id_of(&held), "the same invitation id");
    assert_eq!(env.remote().calls().create, 2, "x and x2 only");

    // the last claimant of each email goes: its policy applies (B deletes both)
    for name in ["y", "y2"] {
        b_api
            .delete(name, &DeleteParams::default())
            .await
            .expect("deleted");
    }
    eventually("B's Invitations gone", WAIT, || {
        let b_api = b_api.clone();
        async move {
            b_api
                .list(&Default::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        }
    })
    .await;
    assert!(env.live("shared@example.com").is_empty());
    assert!(
        claim_of(&env, "shared@example.com").await.is_none(),
        "released after its cleanup"
    );
    // x2 remains in A's namespace, its finalizer with nobody running: let it go
    let _ = env
        .api
        .patch(
            "x2",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await;
    drop(b);
    drop_namespace(&env, &b_ns).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn the_claim_of_a_force_deleted_holder_is_released_by_its_installation() {
    let mut env = env("claims-gone").await;
    env.kill_operator();
    let (b_ns, b_api) = team_b(&env).await;
    let a_id = format!("{}/a", env.ns);
    let b_id = format!("{b_ns}/b");
    let a_ns = env.ns.clone();
    let mut a = spawn(&mut env, &["--watch-namespace", &a_ns], &a_id);
    let mut b = spawn(&mut env, &["--watch-namespace", &b_ns], &b_id);
    env.ready(&mut a).await;
    env.ready(&mut b).await;
    env.create(&invitation("x", "gone@example.com")).await;
    let owned = env.wait_phase("x", "Sent", "True").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b_api
        .create(&PostParams::default(), &invitation("y", "gone@example.com"))
        .await
        .expect("y created");
    wait_reason_via(&b_api, "y", "EmailConflict").await;

    // x is force-deleted while its installation is down: no cleanup ran, its claim stays
    a.kill();
    env.api
        .delete("x", &DeleteParams::default())
        .await
        .expect("x deleted");
    env.api
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("finalizer removed by hand");
    env.wait_gone("x").await;
    assert!(claim_of(&env, "gone@example.com").await.is_some());
    assert_eq!(
        ready_of(&b_api.get("y").await.expect("y"))
            .expect("Ready")
            .1,
        "EmailConflict",
        "never stolen while its installation may still act"
    );

    // back up, its resync finds the holder gone and releases the claim: B adopts
    let mut a = spawn(&mut env, &["--watch-namespace", &a_ns], &a_id);
    env.ready(&mut a).await;
    let adopted = wait_ready_via(&b_api, "y").await;
    assert_eq!(id_of(&adopted), id_of(&owned), "the same invitation id");
    assert_eq!(env.remote().calls().create, 1, "nothing sent twice");
    drop((a, b));
    drop_namespace(&env, &b_ns).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_shard_flip_and_a_new_installation_id_keep_the_claim() {
    let mut env = env("claims-shards").await;
    env.kill_operator();
    let ns = env.ns.clone();
    let one = format!("{ns}/one");
    let two = format!("{ns}/two");
    let mut s1 = spawn(
        &mut env,
        &["--watch-namespace", &ns, "--label-selector", "shard=1"],
        &one,
    );
    let mut s2 = spawn(
        &mut env,
        &["--watch-namespace", &ns, "--label-selector", "shard=2"],
        &two,
    );
    env.ready(&mut s1).await;
    env.ready(&mut s2).await;
    let mut inv = invitation("x", "sharded@example.com");
    inv.metadata.labels = Some(BTreeMap::from([("shard".to_string(), "1".to_string())]));
    env.create(&inv).await;
    let owned = env.wait_phase("x", "Sent", "True").await;
    let installation_of = |lease: &Lease| {
        lease
            .annotations()
            .get(email_claim::INSTALLATION_ANNOTATION)
            .cloned()
            .unwrap_or_default()
    };
    let claim = claim_of(&env, "sharded@example.com")
        .await
        .expect("a claim");
    assert_eq!(installation_of(&claim), format!("{ns}/one"));

    // the label flips: shard two reconciles it, under the same claim (the same UID)
    let flip = serde_json::json!({"metadata": {"labels": {"shard": "2"}}});
    env.api
        .patch("x", &PatchParams::default(), &Patch::Merge(&flip))
        .await
        .expect("label flipped");
    let flipped = eventually("shard two annotates the claim", WAIT, || {
        let env = &env;
        let want = format!("{ns}/two");
        async move {
            let claim = claim_of(env, "sharded@example.com").await?;
            (installation_of(&claim) == want).then_some(claim)
        }
    })
    .await;
    assert_eq!(
        flipped
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone()),
        owned.uid()
    );

    // shard two restarts under another installation id: still the same holder
    drop(s2);
    let three = format!("{ns}/three");
    let mut s3 = spawn(
        &mut env,
        &["--watch-namespace", &ns, "--label-selector", "shard=2"],
        &three,
    );
    env.ready(&mut s3).await;
    let restarted = eventually("the new installation annotates the claim", WAIT, || {
        let env = &env;
        let want = format!("{ns}/three");
        async move {
            let claim = claim_of(env, "sharded@example.com").await?;
            (installation_of(&claim) == want).then_some(claim)
        }
    })
    .await;
    assert_eq!(
        restarted
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone()),
        owned.uid()
    );
    let now = env.wait_phase("x", "Sent", "True").await;
    assert_eq!(id_of(&now), id_of(&owned));
    assert_eq!(env.remote().calls().create, 1, "no second create");
    drop((s1, s3));
}

/// A heartbeat and a claim as a gone installation leaves them: renewed an hour ago.
async fn leave_a_gone_installation(env: &Env, email: &str) -> String {
    let leases: Api<Lease> = Api::namespaced(env.kube.clone(), &env.claims_namespace());
    let gone = format!("{}/gone", env.ns);
    let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let heartbeat: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": email_claim::heartbeat_name(&gone),
            "labels": {email_claim::KIND_LABEL: email_claim::HEARTBEAT},
        },
        "spec": {"holderIdentity": gone, "leaseDurationSeconds": 60, "renewTime": hour_ago},
    }))
    .expect("a Lease");
    leases
        .create(&PostParams::default(), &heartbeat)
        .await
        .expect("heartbeat left");
    let name = email_claim::claim_name(&Scope::Organization(env.org_id.clone()), email)
        .expect("a claim name");
    let claim: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "labels": {email_claim::KIND_LABEL: email_claim::CLAIM},
            "annotations": {
                email_claim::HOLDER_ANNOTATION: "elsewhere/x",
                email_claim::INSTALLATION_ANNOTATION: gone,
            },
        },
        "spec": {"holderIdentity": "0d6c1b2e-0000-4000-8000-000000000000"},
    }))
    .expect("a Lease");
    leases
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim left");
    gone
}

async fn metric(env: &Env, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{}/metrics", env.http()))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let full = format!("confluent_invitation_operator_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&full))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_gone_installations_claim_is_reported_stale_and_taken_over_only_when_told() {
    let mut env = env("claims-stale").await;
    env.kill_operator();
    // the gone installation's invitation, and what it left in the claims namespace
    let seeded = env
        .remote()
        .seed_invitation("stale@example.com", Some("AUTH_TYPE_LOCAL"));
    let gone = leave_a_gone_installation(&env, "stale@example.com").await;
    let id = format!("{}/a", env.ns);
    let ns = env.ns.clone();
    let mut a = spawn(&mut env, &["--watch-namespace", &ns], &id);
    env.ready(&mut a).await;
    env.operator = Some(a);
    env.create(&invitation("x", "stale@example.com")).await;
    let waiting = env.wait_reason("x", "EmailConflict").await;
    let message = ready_of(&waiting).expect("Ready").2;
    assert!(
        message.contains("elsewhere/x")
            && message.contains(&format!("installation {gone}"))
            && message.contains("looks stale"),
        "{message}"
    );
    let stale = eventually("the stale claim counted", WAIT, || {
        let env = &env;
        async move {
            metric(env, "email_claims_stale")
                .await
                .filter(|v| *v >= 1.0)
        }
    })
    .await;
    if env.claims_namespace() == env.ns {
        assert_eq!(stale, 1.0, "the one claim this test left");
    } // (a claims namespace shared with the other tests holds their stale claims too)
    let calls = env.remote().calls();
    assert_eq!(
        (calls.create, calls.delete),
        (0, 0),
        "never stolen by itself"
    );

    // told to take over claims stale for a second: x adopts the gone installation's invitation
    env.kill_operator();
    let flags = [
        claim_flags(&env, &id),
        vec!["--claims-takeover-after".into(), "1s".into()],
    ]
    .concat();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut a = env.spawn_operator_watching(&["--watch-namespace", &ns], &flags);
    env.ready(&mut a).await;
    env.operator = Some(a);
    let adopted = env.wait_phase("x", "Sent", "True").await;
    assert_eq!(Some(id_of(&adopted)), seeded.id, "the same invitation");
    let claim = claim_of(&env, "stale@example.com").await.expect("a claim");
    assert_eq!(
        claim.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        adopted.uid()
    );
    assert_eq!(metric(&env, "email_claim_takeovers_total").await, Some(1.0));
    assert_eq!(env.remote().calls().create, 0, "nothing sent");
}
