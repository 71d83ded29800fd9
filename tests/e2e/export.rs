//! `export`: the real binary lists the mock's organization and prints manifests; applying them
//! to the real API server adopts every invitation without sending one.

use std::collections::HashSet;

use confluent_invitation_operator::crd::{DeletionPolicy, Invitation};
use kube::api::{ListParams, PostParams};

use crate::harness::*;

/// More than one page of the API's 100.
const PEOPLE: usize = 103;

/// Runs `export` against the env's mock; returns (stdout, stderr).
async fn export(env: &Env, extra: &[&str]) -> (String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_confluent-invitation-operator"));
    cmd.arg("export")
        .args(["--namespace", &env.ns])
        .args(extra)
        .env_clear()
        .env("CONFLUENT_CLOUD_ENDPOINT", env.mock.base_url())
        .env("CONFLUENT_CLOUD_API_KEY", API_KEY)
        .env("CONFLUENT_CLOUD_API_SECRET", API_SECRET);
    // the mock serves from this test's runtime: wait for the process off it
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("export joined")
        .expect("export ran");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 manifests");
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 progress");
    assert!(out.status.success(), "export failed: {stderr}");
    (stdout, stderr)
}

fn parse(yaml: &str) -> Vec<Invitation> {
    yaml.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).expect("an Invitation manifest"))
        .collect()
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn an_exported_organization_applies_as_adoptions_without_a_single_create() {
    let env = env("export").await;
    let remote = env.remote();
    let seeded: Vec<_> = (0..PEOPLE)
        .map(|i| remote.seed_invitation(&format!("person.{i}@example.com"), None))
        .collect();
    let accepted = seeded[0].id.clone().unwrap();
    remote.accept(&accepted).unwrap();
    remote.expire(seeded[1].id.as_deref().unwrap()).unwrap();

    let (yaml, progress) = export(&env, &[]).await;
    assert!(progress.contains("(2 pages)"), "{progress}");
    let manifests = parse(&yaml);
    assert_eq!(manifests.len(), PEOPLE - 1, "the expired one is left out");
    let names: HashSet<_> = manifests
        .iter()
        .map(|m| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names.len(), manifests.len(), "unique names");
    assert!(
        manifests
            .iter()
            .all(|m| m.spec.deletion_policy == DeletionPolicy::Orphan)
    );
    let (again, _) = export(&env, &[]).await;
    assert_eq!(again, yaml, "stable: a re-export is identical");
    let (expired, warning) = export(&env, &["--status", "expired"]).await;
    assert!(warning.contains("cannot be adopted"), "{warning}");
    let expired = parse(&expired);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].spec.email, "person.1@example.com");

    for m in &manifests {
        env.api
            .create(&PostParams::default(), m)
            .await
            .expect("manifest applies");
    }
    eventually("every exported Invitation Ready", WAIT * 2, || async {
        let list = env.api.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|i| ready_of(i).is_some_and(|r| r.0 == "True"))
            .count();
        (ready == PEOPLE - 1).then_some(())
    })
    .await;
    assert_eq!(env.remote().calls().create, 0, "not one invitation re-sent");
    let first = &manifests
        .iter()
        .find(|m| m.spec.email == "person.0@example.com")
        .unwrap();
    let name = first.metadata.name.as_deref().unwrap();
    let adopted = env.wait_phase(name, "Accepted", "True").await;
    assert_eq!(id_of(&adopted), accepted);
    env.wait_event(name, "Adopted").await;
}
