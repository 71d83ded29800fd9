//! A credential is what Confluent sees, not the Secret that holds it: every Secret holding the
//! same API key shares one client (one limiter, one snapshot, one list per resync), a key rotated
//! in one Secret only is a second credential, and two tokens are two identities, whose
//! organizations are learnt apart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use confluent_invitation_operator::invitation::resource::Invitation;
use confluent_mock::{MockConfig, OtherOrganization};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};

use crate::harness::*;

const TOKEN_A: &str = "e2e-token-of-org-a-3e9f-never-log-me";
const TOKEN_B: &str = "e2e-token-of-org-b-81c2-never-log-me";
/// The organization [`TOKEN_B`] acts in.
const ORG_B: &str = "7a3e0c52-5b8d-4f0e-8c61-00000000000b";
const SECOND_KEY: &str = "e2e-second-key";
const SECOND_SECRET: &str = "e2e-second-secret-6d0a-never-log-me";

fn labelled(env: &Env, mut inv: Invitation) -> Invitation {
    inv.metadata.labels = Some(BTreeMap::from([("e2e".to_string(), env.ns.clone())]));
    inv
}

/// Restarts the world with a mock of `config` and an operator watching every namespace (its
/// Invitations labelled for this test).
async fn restart_with(env: &mut Env, config: MockConfig) {
    env.kill_operator();
    env.org_id = config.org_id.clone();
    env.mock = confluent_mock::start("127.0.0.1:0".parse().expect("an address"), config)
        .await
        .expect("mock started");
    env.start_operator_across_namespaces();
    env.wait_ready().await;
}

/// Creates the namespace `<test namespace>-<suffix>`; its name.
async fn team_namespace(env: &Env, suffix: &str) -> String {
    let name = format!("{}-{suffix}", env.ns);
    let nss: Api<Namespace> = Api::all(env.kube.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.clone());
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    name
}

/// Writes the Secret `creds` of `namespace` (created, or its data replaced).
async fn write_creds(env: &Env, namespace: &str, data: &[(&str, &str)]) {
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), namespace);
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if secrets.get_opt("creds").await.expect("readable").is_some() {
        let patch = serde_json::json!({ "stringData": data });
        secrets
            .patch("creds", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("Secret patched");
        return;
    }
    let mut s = Secret::default();
    s.metadata.name = Some("creds".into());
    s.string_data = Some(data);
    secrets
        .create(&PostParams::default(), &s)
        .await
        .expect("Secret created");
}

/// The Invitation `name` of `namespace` once Ready is True.
async fn wait_ready_in(env: &Env, namespace: &str, name: &str) -> Invitation {
    let api: Api<Invitation> = Api::namespaced(env.kube.clone(), namespace);
    eventually(&format!("{namespace}/{name} Ready"), WAIT, || {
        let api = api.clone();
        async move {
            let inv = api.get_opt(name).await.ok().flatten()?;
            (ready_of(&inv)?.0 == "True").then_some(inv)
        }
    })
    .await
}

/// The reasons of the Events about `name` in `namespace`.
async fn event_reasons_in(env: &Env, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(env.kube.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .expect("events listable")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

/// Stops the operator and takes down the extra namespaces, releasing their Invitations and the
/// Secret the operator marked in use (nothing would, with the operator gone).
async fn tear_down(env: &mut Env, namespaces: &[String]) {
    env.kill_operator();
    for ns in namespaces {
        let api: Api<Invitation> = Api::namespaced(env.kube.clone(), ns);
        let _ = test_support::strip_finalizers(&api, 8).await;
        let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), ns);
        let release = serde_json::json!({"metadata": {"finalizers": null}});
        let _ = secrets
            .patch("creds", &PatchParams::default(), &Patch::Merge(&release))
            .await;
        let nss: Api<Namespace> = Api::all(env.kube.clone());
        let _ = nss.delete(ns, &DeleteParams::default()).await;
    }
}

fn crn_of(inv: &Invitation) -> String {
    inv.status
        .as_ref()
        .and_then(|s| s.resource_name.clone())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn two_tokens_of_two_organizations_never_conflict() {
    let mut env = env("token-orgs").await;
    restart_with(
        &mut env,
        MockConfig {
            api_keys: vec![(API_KEY.into(), API_SECRET.into())],
            tokens: vec![TOKEN_A.into()],
            other_organizations: vec![OtherOrganization {
                api_key: "e2e-org-b-key".into(),
                api_secret: "e2e-org-b-secret".into(),
                org_id: ORG_B.into(),
                tokens: vec![TOKEN_B.into()],
            }],
            ..MockConfig::default()
        },
    )
    .await;
    let team_a = env.ns.clone();
    let team_b = team_namespace(&env, "b").await;
    write_creds(&env, &team_a, &[("accessToken", TOKEN_A)]).await;
    write_creds(&env, &team_b, &[("accessToken", TOKEN_B)]).await;

    // A first: its create teaches the operator its token's organization
    env.create(&labelled(
        &env,
        with_secret(invitation("a", "both@example.com"), "creds"),
    ))
    .await;
    let a = wait_ready_in(&env, &team_a, "a").await;
    // B a second later (creationTimestamp has one-second resolution): the younger, the one that
    // would be told EmailConflict if its token were taken for A's organization
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b_api: Api<Invitation> = Api::namespaced(env.kube.clone(), &team_b);
    b_api
        .create(
            &PostParams::default(),
            &labelled(
                &env,
                with_secret(invitation("b", "both@example.com"), "creds"),
            ),
        )
        .await
        .expect("b created");
    let b = wait_ready_in(&env, &team_b, "b").await;

    assert!(
        crn_of(&a).contains(&format!("organization={}/", env.org_id)),
        "{}",
        crn_of(&a)
    );
    assert!(
        crn_of(&b).contains(&format!("organization={ORG_B}/")),
        "{}",
        crn_of(&b)
    );
    // each organization holds exactly its one invitation
    let remote = env.remote();
    assert_eq!(remote.invitations().len(), 1);
    assert_eq!(remote.invitations_in(ORG_B).len(), 1);
    assert_eq!(remote.calls().create, 2);

    // a few resyncs later (the sweeps compare claims too) both are still Ready, and neither was
    // ever told EmailConflict
    tokio::time::sleep(RESYNC * 3).await;
    for (ns, name) in [(&team_a, "a"), (&team_b, "b")] {
        let api: Api<Invitation> = Api::namespaced(env.kube.clone(), ns);
        let inv = api.get(name).await.expect("readable");
        assert_eq!(
            ready_of(&inv).map(|r| (r.0, r.1)),
            Some(("True".to_owned(), "Sent".to_owned())),
            "{ns}/{name}"
        );
        let reasons = event_reasons_in(&env, ns, name).await;
        assert!(
            !reasons.iter().any(|r| r == "EmailConflict"),
            "{ns}/{name}: {reasons:?}"
        );
    }
    assert_eq!(remote.calls().create, 2, "nothing sent again");
    let log = env.operator_log();
    assert!(
        !log.contains(TOKEN_A) && !log.contains(TOKEN_B),
        "a token in the log"
    );
    tear_down(&mut env, &[team_b]).await;
}

/// How long without a list call is "between two resyncs": a resync's lists follow each other
/// within milliseconds against the mock, and resyncs are [`RESYNC`] apart.
const QUIET: Duration = Duration::from_millis(700);

/// The mock's invitation LIST count once no list came for [`QUIET`].
async fn quiet_lists(env: &Env) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let before = env.remote().calls().list;
        tokio::time::sleep(QUIET).await;
        let after = env.remote().calls().list;
        if after == before {
            return after;
        }
        assert!(Instant::now() < deadline, "the lists never paused");
    }
}

/// The invitation LIST calls of each of the next `resyncs` resyncs, counted between their
/// bursts; the one in progress or just ahead is skipped, so a change made before the call is
/// in force.
async fn lists_per_resync(env: &Env, resyncs: usize) -> Vec<u64> {
    let mut at = quiet_lists(env).await;
    let mut counts = Vec::with_capacity(resyncs + 1);
    for _ in 0..=resyncs {
        let started = at;
        eventually("the next resync lists", RESYNC * 3, || async move {
            (env.remote().calls().list > started).then_some(())
        })
        .await;
        let next = quiet_lists(env).await;
        counts.push(next - at);
        at = next;
    }
    counts.remove(0);
    counts
}

/// Invitations spread over the namespaces, and invitations made out of band.
const PER_NAMESPACE: usize = 10;
const SEEDED: usize = 200;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn secrets_holding_one_key_list_it_once_per_resync() {
    let mut env = env("shared-key").await;
    restart_with(
        &mut env,
        MockConfig {
            api_keys: vec![
                (API_KEY.into(), API_SECRET.into()),
                (SECOND_KEY.into(), SECOND_SECRET.into()),
            ],
            ..MockConfig::default()
        },
    )
    .await;
    // five teams' namespaces, each with its own Secret holding the same key (the operator's
    // default one too)
    let mut namespaces = vec![env.ns.clone()];
    for i in 1..5 {
        namespaces.push(team_namespace(&env, &i.to_string()).await);
    }
    let key = [("apiKey", API_KEY), ("apiSecret", API_SECRET)];
    for ns in &namespaces {
        write_creds(&env, ns, &key).await;
    }
    for ns in &namespaces {
        let api: Api<Invitation> = Api::namespaced(env.kube.clone(), ns);
        for i in 0..PER_NAMESPACE {
            let inv = labelled(
                &env,
                with_secret(
                    invitation(&format!("m-{i}"), &format!("{ns}-{i}@example.com")),
                    "creds",
                ),
            );
            api.create(&PostParams::default(), &inv)
                .await
                .expect("Invitation created");
        }
    }
    for i in 0..SEEDED {
        env.remote()
            .seed_invitation(&format!("seeded-{i}@example.com"), None);
    }
    for ns in &namespaces {
        for i in 0..PER_NAMESPACE {
            wait_ready_in(&env, ns, &format!("m-{i}")).await;
        }
    }
    let invitations = namespaces.len() * PER_NAMESPACE + SEEDED;
    assert_eq!(env.remote().invitations().len(), invitations);
    // ⌈250 / 100⌉: one paginated list, whatever the number of Secrets holding the key
    let pages = invitations.div_ceil(100) as u64;
    assert_eq!(pages, 3);
    let calls = env.remote().calls();

    let shared = lists_per_resync(&env, 3).await;
    eprintln!("5 Secrets, one key, {invitations} invitations: lists per resync {shared:?}");
    assert_eq!(shared, vec![pages; 3], "one list of the key per resync");

    // the key rotated in one Secret only: two credentials, each listed once
    write_creds(
        &env,
        &namespaces[1],
        &[("apiKey", SECOND_KEY), ("apiSecret", SECOND_SECRET)],
    )
    .await;
    let rotated_one = lists_per_resync(&env, 3).await;
    eprintln!("one Secret rotated: lists per resync {rotated_one:?}");
    assert_eq!(rotated_one, vec![2 * pages; 3], "two credentials");

    // rotated everywhere: the first key's client is used by nobody, its snapshot goes
    for ns in &namespaces {
        write_creds(
            &env,
            ns,
            &[("apiKey", SECOND_KEY), ("apiSecret", SECOND_SECRET)],
        )
        .await;
    }
    let rotated_all = lists_per_resync(&env, 3).await;
    eprintln!("every Secret rotated: lists per resync {rotated_all:?}");
    assert_eq!(rotated_all, vec![pages; 3], "one credential again");

    let calls_after = env.remote().calls();
    assert_eq!(
        (
            calls_after.create,
            calls_after.get,
            calls_after.unauthenticated
        ),
        (calls.create, calls.get, 0),
        "nothing but lists in steady state"
    );
    let log = env.operator_log();
    assert!(
        !log.contains(API_SECRET) && !log.contains(SECOND_SECRET),
        "a secret in the log"
    );
    namespaces.remove(0);
    tear_down(&mut env, &namespaces).await;
}
