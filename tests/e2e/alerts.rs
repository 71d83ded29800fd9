//! The chart's alerts read series the operator really exports: a live scrape, after making
//! each of them happen (an error, a 429, an expired invitation, a deletion held by its
//! finalizer), holds every metric an alert names, with every label it matches or groups by.

use std::collections::BTreeMap;

use confluent_invitation_operator::invitation::resource::PAUSED_ANNOTATION;
use confluent_mock::{Fault, FaultAction};
use kube::api::DeleteParams;

use crate::harness::*;

const ALERTS: &str =
    include_str!("../../deploy/helm/confluent-invitation-operator/files/alerts.yaml");
const PREFIX: &str = "confluent_invitation_operator_";

/// One metric an alert reads: its name, the label values it matches, the labels it groups by.
#[derive(Debug)]
struct Read {
    alert: String,
    metric: String,
    matchers: Vec<(String, String)>,
    by: Vec<String>,
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The `label="value"` pairs of a selector or a sample's label set.
fn label_pairs(set: &str) -> Vec<(String, String)> {
    set.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

/// What each alert expression reads, from the rule file.
fn reads() -> Vec<Read> {
    let rules: serde_json::Value = serde_saphyr::from_str(ALERTS).expect("the rule file parses");
    let mut out = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let alert = rule["alert"].as_str().expect("alert").to_owned();
            let expr = rule["expr"].as_str().expect("expr");
            let by: Vec<String> = expr
                .split("by (")
                .skip(1)
                .flat_map(|rest| rest.split(')').next().unwrap_or_default().split(','))
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            let mut rest = expr;
            while let Some(at) = rest.find(PREFIX) {
                let tail = &rest[at..];
                let end = tail.find(|c| !is_name(c)).unwrap_or(tail.len());
                let metric = tail[..end].to_owned();
                let mut matchers = Vec::new();
                if tail[end..].starts_with('{') {
                    let close = tail[end..].find('}').expect("a closed selector");
                    matchers = label_pairs(&tail[end + 1..end + close]);
                }
                out.push(Read {
                    alert: alert.clone(),
                    metric,
                    matchers,
                    by: by.clone(),
                });
                rest = &tail[end..];
            }
        }
    }
    out
}

/// The scrape's samples: metric name to the label sets it was exported with.
fn samples(scrape: &str) -> BTreeMap<String, Vec<Vec<(String, String)>>> {
    let mut out: BTreeMap<String, Vec<Vec<(String, String)>>> = BTreeMap::new();
    for line in scrape.lines().filter(|l| l.starts_with(PREFIX)) {
        let end = line.find(|c| !is_name(c)).unwrap_or(line.len());
        let labels = if line[end..].starts_with('{') {
            let close = line[end..].find('}').unwrap_or(0);
            label_pairs(&line[end + 1..end + close])
        } else {
            Vec::new()
        };
        out.entry(line[..end].to_owned()).or_default().push(labels);
    }
    out
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn every_series_the_alerts_read_is_exported_with_its_labels() {
    let env = env("alerts").await;
    // a 429 (counted by code)
    env.remote().inject(Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1,
        action: FaultAction::Status { status: 429 },
    });
    // a refusal (a Forbidden reconcile error), retried after its backoff
    env.remote().inject(Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1,
        action: FaultAction::Status { status: 403 },
    });
    env.create(&invitation("late", "late@example.com")).await;
    let id = id_of(&env.wait_phase("late", "Sent", "True").await);
    // an expired invitation
    env.remote().expire(&id).unwrap();
    env.wait_phase("late", "Expired", "False").await;
    // a deletion held by its finalizer (paused)
    env.create(&invitation("held", "held@example.com")).await;
    env.wait_phase("held", "Sent", "True").await;
    env.api
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({
                "metadata": { "annotations": { PAUSED_ANNOTATION: "true" } }
            })),
        )
        .await
        .unwrap();
    env.wait_reason("held", "Paused").await;
    env.api
        .delete("held", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(RESYNC).await;

    let operator = env.operator.as_ref().unwrap();
    let scrape = eventually("a scrape with a held deletion", WAIT, || async {
        let scrape = operator.metrics().await;
        let held = scrape
            .lines()
            .find_map(|l| l.strip_prefix("confluent_invitation_operator_oldest_deletion_seconds "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .is_some_and(|age| age > 0.0);
        held.then_some(scrape)
    })
    .await;
    let exported = samples(&scrape);
    let reads = reads();
    assert!(
        reads.len() >= 6,
        "the rule file names its metrics: {reads:?}"
    );
    for read in &reads {
        let sets = exported.get(&read.metric).unwrap_or_else(|| {
            panic!(
                "{}: {} is not exported; scrape:\n{scrape}",
                read.alert, read.metric
            )
        });
        for (label, value) in &read.matchers {
            assert!(
                sets.iter()
                    .any(|s| s.iter().any(|(k, v)| k == label && v == value)),
                "{}: no {}{{{label}=\"{value}\"}} sample in {sets:?}",
                read.alert,
                read.metric
            );
        }
        for label in &read.by {
            assert!(
                sets.iter().all(|s| s.iter().any(|(k, _)| k == label)),
                "{}: {} samples lack the label {label}: {sets:?}",
                read.alert,
                read.metric
            );
        }
    }
    // the leader alert reads 1 from a leading replica
    assert!(
        scrape.contains("confluent_invitation_operator_leader 1\n"),
        "{scrape}"
    );
}
