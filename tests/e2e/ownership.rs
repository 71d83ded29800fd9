//! One owner per email per Confluent organization: the oldest Invitation claiming an
//! email owns the remote invitation, the others report `EmailConflict` and touch nothing, and
//! the owner's deletion hands the invitation over instead of deleting it.

use std::collections::BTreeMap;
use std::time::Duration;

use confluent_invitation_operator::invitation::resource::Invitation;
use confluent_mock::{MockConfig, OtherOrganization};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::harness::*;

const SECOND_KEY: &str = "e2e-team-b-key";
const SECOND_SECRET: &str = "e2e-team-b-secret-0d1e";

fn labelled(env: &Env, mut inv: Invitation) -> Invitation {
    inv.metadata.labels = Some(BTreeMap::from([("e2e".to_string(), env.ns.clone())]));
    inv
}

/// Team B's claimant `b` for `email`, with team B's credentials, created a second after
/// whatever came before (creationTimestamp has one-second resolution: it is then the younger).
async fn create_b(env: &Env, b_api: &Api<Invitation>, email: &str) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = labelled(env, with_secret(invitation("b", email), "team-b-creds"));
    b_api
        .create(&PostParams::default(), &b)
        .await
        .expect("b created");
}

/// Deletes team B's `b` and waits until it is gone.
async fn delete_b(env: &Env, b_api: &Api<Invitation>, team_b: &str) {
    b_api
        .delete("b", &DeleteParams::default())
        .await
        .expect("b deleted");
    wait_gone_in(env, team_b, "b").await;
}

async fn wait_gone_in(env: &Env, ns: &str, name: &str) {
    let api: Api<Invitation> = Api::namespaced(env.kube.clone(), ns);
    eventually(&format!("{ns}/{name} deleted"), WAIT, || {
        let api = api.clone();
        async move { matches!(api.get_opt(name).await, Ok(None)).then_some(()) }
    })
    .await
}

/// Restarts the world with a mock that knows a second API key (of the same organization, or of
/// `other_org`) and an operator watching every namespace; creates team B's namespace with a
/// Secret holding that key. Returns team B's namespace.
async fn second_team(env: &mut Env, other_org: Option<&str>) -> (String, Api<Namespace>) {
    env.kill_operator();
    let second = (SECOND_KEY.to_string(), SECOND_SECRET.to_string());
    let (api_keys, other_organizations) = match other_org {
        None => (
            vec![(API_KEY.into(), API_SECRET.into()), second],
            Vec::new(),
        ),
        Some(org_id) => (
            vec![(API_KEY.into(), API_SECRET.into())],
            vec![OtherOrganization {
                api_key: second.0,
                api_secret: second.1,
                org_id: org_id.into(),
                tokens: Vec::new(),
            }],
        ),
    };
    env.mock = confluent_mock::start(
        "127.0.0.1:0".parse().expect("an address"),
        MockConfig {
            api_keys,
            other_organizations,
            ..MockConfig::default()
        },
    )
    .await
    .expect("mock started");
    env.start_operator_across_namespaces();
    env.wait_ready().await;
    let team_b = format!("{}-b", env.ns);
    let nss: Api<Namespace> = Api::all(env.kube.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(team_b.clone());
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &team_b);
    let mut creds = Secret::default();
    creds.metadata.name = Some("team-b-creds".into());
    creds.string_data = Some(BTreeMap::from([
        ("apiKey".to_string(), SECOND_KEY.to_string()),
        ("apiSecret".to_string(), SECOND_SECRET.to_string()),
    ]));
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .expect("secret created");
    (team_b, nss)
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn one_owner_per_email_and_a_handover_that_does_not_resend() {
    let mut env = env("ownership").await;
    let (team_b, nss) = second_team(&mut env, None).await;
    let b_api: Api<Invitation> = Api::namespaced(env.kube.clone(), &team_b);

    // team A first (creationTimestamp has one-second resolution)
    env.create(&labelled(&env, invitation("a", "shared@example.com")))
        .await;
    let owned = env.wait_phase("a", "Sent", "True").await;
    let id = id_of(&owned);
    let user = owned.status.as_ref().and_then(|s| s.user_id.clone());
    assert!(user.is_some(), "the owner shows the user id");

    // team B, same email in another case, other credentials of the same organization
    create_b(&env, &b_api, "Shared@Example.com").await;
    let conflicted = wait_reason_via(&b_api, "b", "EmailConflict").await;
    let (ready, _, message) = ready_of(&conflicted).expect("Ready");
    assert_eq!(ready, "False");
    assert!(
        message.contains(&format!("{}/a", env.ns)),
        "the message names the owner: {message}"
    );
    assert_eq!(env.remote().calls().create, 1, "the loser sent nothing");
    assert_eq!(env.live("shared@example.com").len(), 1);

    // a younger loser in team A's namespace: deleting it changes nothing remotely
    tokio::time::sleep(Duration::from_millis(1100)).await;
    env.create(&labelled(&env, invitation("c", "SHARED@example.com")))
        .await;
    let c = env.wait_reason("c", "EmailConflict").await;
    assert!(
        ready_of(&c)
            .expect("Ready")
            .2
            .contains(&format!("{}/a", env.ns))
    );
    let before = env.remote().calls();
    env.delete_and_wait_gone("c").await;
    let after = env.remote().calls();
    assert_eq!(
        (after.create, after.delete, after.delete_user),
        (before.create, before.delete, before.delete_user),
        "deleting a loser touches nothing in Confluent"
    );
    assert_eq!(env.live("shared@example.com").len(), 1);

    // the owner goes (policy Delete): B adopts the same invitation, nothing is re-sent
    env.delete_and_wait_gone("a").await;
    let adopted = eventually("b adopts the invitation", WAIT, || {
        let b_api = b_api.clone();
        async move {
            let inv = b_api.get_opt("b").await.ok().flatten()?;
            (ready_of(&inv)?.0 == "True").then_some(inv)
        }
    })
    .await;
    assert_eq!(id_of(&adopted), id, "same invitation id");
    assert_eq!(
        adopted.status.as_ref().and_then(|s| s.user_id.clone()),
        user,
        "same user id"
    );
    let calls = env.remote().calls();
    assert_eq!(calls.create, 1, "no invitation was re-sent");
    assert_eq!(calls.delete, 0, "the owner's deletion deleted nothing");
    let live = env.live("shared@example.com");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id.as_deref(), Some(id.as_str()));

    // the last claimant goes: its policy applies as before
    delete_b(&env, &b_api, &team_b).await;
    assert!(
        env.live("shared@example.com").is_empty(),
        "the last claimant's Delete policy deleted the invitation"
    );
    let _ = nss.delete(&team_b, &DeleteParams::default()).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn invitations_of_different_organizations_never_conflict() {
    let mut env = env("ownership-orgs").await;
    let other_org = "2f7c1a44-0b1e-4c55-9d1e-000000000002";
    let (team_b, nss) = second_team(&mut env, Some(other_org)).await;
    let b_api: Api<Invitation> = Api::namespaced(env.kube.clone(), &team_b);
    env.create(&labelled(&env, invitation("a", "both@example.com")))
        .await;
    let a = env.wait_phase("a", "Sent", "True").await;
    create_b(&env, &b_api, "Both@Example.com").await;
    let b = eventually("b is invited in its own organization", WAIT, || {
        let b_api = b_api.clone();
        async move {
            let inv = b_api.get_opt("b").await.ok().flatten()?;
            (ready_of(&inv)?.0 == "True").then_some(inv)
        }
    })
    .await;
    assert_ne!(id_of(&a), id_of(&b));
    let crn = b
        .status
        .as_ref()
        .and_then(|s| s.resource_name.clone())
        .unwrap_or_default();
    assert!(crn.contains(&format!("organization={other_org}/")), "{crn}");
    assert_eq!(env.live("both@example.com").len(), 1);
    assert_eq!(
        env.remote()
            .live_invitations_in(other_org, "both@example.com")
            .len(),
        1
    );
    // deleting A applies its policy in its organization only
    env.delete_and_wait_gone("a").await;
    assert!(env.live("both@example.com").is_empty());
    assert_eq!(
        env.remote()
            .live_invitations_in(other_org, "both@example.com")
            .len(),
        1,
        "B's invitation, in the other organization, is untouched"
    );
    delete_b(&env, &b_api, &team_b).await;
    assert!(
        env.remote()
            .live_invitations_in(other_org, "both@example.com")
            .is_empty()
    );
    let _ = nss.delete(&team_b, &DeleteParams::default()).await;
}

/// The successor's spec writes the email in another case than the invitation its predecessor
/// sent, and the server's `email=` filter compares case: the hand-over still finds that
/// invitation (ownership compares emails case-insensitively), so nothing is sent twice.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_successor_writing_the_email_in_another_case_adopts_without_a_second_invitation() {
    let env = env("ownership-case").await;
    env.remote().set_case_sensitive_email_filter(true);
    env.create(&invitation("a", "shared@example.com")).await;
    let owned = env.wait_phase("a", "Sent", "True").await;
    let id = id_of(&owned);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    env.create(&invitation("c", "Shared@Example.com")).await;
    env.wait_reason("c", "EmailConflict").await;
    env.delete_and_wait_gone("a").await;
    let adopted = eventually("c adopts the invitation", WAIT, || {
        let api = env.api.clone();
        async move {
            let inv = api.get_opt("c").await.ok().flatten()?;
            (ready_of(&inv)?.0 == "True").then_some(inv)
        }
    })
    .await;
    assert_eq!(id_of(&adopted), id, "the same invitation id");
    let calls = env.remote().calls();
    assert_eq!((calls.create, calls.delete), (1, 0), "one POST, no DELETE");
    assert_eq!(env.live("shared@example.com").len(), 1);
}
