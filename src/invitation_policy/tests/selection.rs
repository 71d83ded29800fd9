//! `selects`, the policy's `status`, and the CRD's shape (with its CEL rule).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResourceExt;
use serde_json::json;

use super::{labels, policy, ts};
use crate::invitation::resource::EMAIL_PATTERN;
use crate::invitation_policy::{InvitationPolicy, crd_yaml, selects, status};
use crate::reason;

/// (why, namespaceSelector, the namespace's labels, selects or the words of the error).
type SelectsRow<'a> = (
    &'a str,
    serde_json::Value,
    &'a BTreeMap<String, String>,
    Result<bool, &'a str>,
);

#[test]
fn selects_table() {
    let team_a = labels(&[("team", "a")]);
    let team_b = labels(&[("team", "b")]);
    let prod_a = labels(&[("team", "a"), ("env", "prod")]);
    let none = labels(&[]);
    let expr = |op: &str, values: Option<&[&str]>| match values {
        Some(v) => json!({"matchExpressions": [{"key": "team", "operator": op, "values": v}]}),
        None => json!({"matchExpressions": [{"key": "team", "operator": op}]}),
    };
    let ok = |b: bool| Ok::<bool, &str>(b);
    let cases: Vec<SelectsRow> = vec![
        ("{} selects every namespace", json!({}), &none, ok(true)),
        ("{} selects a labelled one", json!({}), &team_a, ok(true)),
        (
            "matchLabels",
            json!({"matchLabels": {"team": "a"}}),
            &team_a,
            ok(true),
        ),
        (
            "matchLabels, another value",
            json!({"matchLabels": {"team": "a"}}),
            &team_b,
            ok(false),
        ),
        (
            "matchLabels, no labels",
            json!({"matchLabels": {"team": "a"}}),
            &none,
            ok(false),
        ),
        (
            "matchLabels, every label",
            json!({"matchLabels": {"team": "a", "env": "prod"}}),
            &team_a,
            ok(false),
        ),
        (
            "matchLabels, extra labels",
            json!({"matchLabels": {"team": "a"}}),
            &prod_a,
            ok(true),
        ),
        ("In", expr("In", Some(&["a", "b"])), &team_b, ok(true)),
        ("In, absent", expr("In", Some(&["a"])), &none, ok(false)),
        (
            "NotIn, absent",
            expr("NotIn", Some(&["a"])),
            &none,
            ok(true),
        ),
        (
            "NotIn, listed",
            expr("NotIn", Some(&["a"])),
            &team_a,
            ok(false),
        ),
        ("Exists", expr("Exists", None), &team_b, ok(true)),
        ("Exists, absent", expr("Exists", None), &none, ok(false)),
        (
            "DoesNotExist",
            expr("DoesNotExist", None),
            &team_a,
            ok(false),
        ),
        (
            "DoesNotExist, absent",
            expr("DoesNotExist", None),
            &none,
            ok(true),
        ),
        (
            "matchLabels and matchExpressions, both",
            json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}),
            &prod_a,
            ok(true),
        ),
        (
            "matchLabels and matchExpressions, one",
            json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}),
            &team_a,
            ok(false),
        ),
        (
            "In without values",
            expr("In", None),
            &team_a,
            Err("matchExpressions[0]: operator In needs at least one value"),
        ),
        (
            "NotIn with no values",
            expr("NotIn", Some(&[])),
            &team_a,
            Err("operator NotIn needs at least one value"),
        ),
        (
            "Exists with values",
            expr("Exists", Some(&["a"])),
            &team_a,
            Err("operator Exists takes no values"),
        ),
        (
            "an unknown operator",
            expr("Like", Some(&["a"])),
            &team_a,
            Err("operator Like is not In, NotIn"),
        ),
    ];
    for (why, selector, namespace, want) in cases {
        let p = policy("p", json!({"namespaceSelector": selector}));
        match (selects(&p, namespace), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{why}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{why}: {got}"),
            (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
        }
    }
}

/// (why, spec, namespaces selected, Ready, reason, selectedNamespaces, message words).
type StatusRow<'a> = (
    &'a str,
    serde_json::Value,
    usize,
    &'a str,
    &'a str,
    i64,
    &'a [&'a str],
);

#[test]
fn status_table() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let bad_selector = json!({"matchExpressions": [{"key": "team", "operator": "In"}]});
    let grants =
        |scope: &str| json!([{"roles": ["DeveloperRead"], "scopes": ["environment=env-a", scope]}]);
    let cases: Vec<StatusRow> = vec![
        (
            "valid",
            json!({"namespaceSelector": {}}),
            3,
            "True",
            reason::ENFORCED,
            3,
            &["3 namespaces"],
        ),
        (
            "one namespace",
            json!({"namespaceSelector": {}}),
            1,
            "True",
            reason::ENFORCED,
            1,
            &["in 1 namespace"],
        ),
        (
            "none selected is still valid",
            json!({"namespaceSelector": {"matchLabels": {"team": "z"}}}),
            0,
            "True",
            reason::ENFORCED,
            0,
            &["0 namespaces"],
        ),
        (
            "absolute and relative scopes",
            json!({"namespaceSelector": {}, "grants": grants("crn://confluent.cloud/organization=o/environment=e")}),
            2,
            "True",
            reason::ENFORCED,
            2,
            &[],
        ),
        (
            "an invalid selector selects nothing",
            json!({"namespaceSelector": bad_selector}),
            5,
            "False",
            reason::INVALID_POLICY,
            0,
            &[
                "spec.namespaceSelector.matchExpressions[0]",
                "selects no namespace",
            ],
        ),
        (
            "a scope that is no CRN pattern",
            json!({"namespaceSelector": {}, "grants": grants("kafka=lkc-1")}),
            2,
            "False",
            reason::INVALID_POLICY,
            2,
            &["spec.grants[0].scopes[1]", "kafka=lkc-1", "covers nothing"],
        ),
        (
            "both named",
            json!({"namespaceSelector": bad_selector, "grants": grants("crn:x")}),
            2,
            "False",
            reason::INVALID_POLICY,
            0,
            &["spec.namespaceSelector", "; spec.grants[0].scopes[1]"],
        ),
    ];
    for (why, spec, namespaces, ready, reason, selected, words) in cases {
        let mut p = policy("p", spec);
        p.metadata.generation = Some(4);
        let s = status(&p, namespaces, t0);
        let c = s.ready().expect("Ready");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            (ready, reason),
            "{why}: {c:?}"
        );
        assert_eq!(s.selected_namespaces, selected, "{why}");
        assert_eq!(s.observed_generation, Some(4), "{why}");
        assert_eq!(c.observed_generation, Some(4), "{why}");
        assert_eq!(c.last_transition_time, Time(t0), "{why}");
        for w in words {
            assert!(c.message.contains(w), "{why}: {w:?} not in {:?}", c.message);
        }
    }
}

#[test]
fn status_keeps_the_transition_time_until_ready_flips() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let t1 = ts("2026-01-02T00:00:00Z");
    let t2 = ts("2026-01-03T00:00:00Z");
    let mut p = policy("p", json!({"namespaceSelector": {}}));
    p.status = Some(status(&p, 1, t0));
    let again = status(&p, 7, t1);
    let c = again.ready().expect("Ready");
    assert_eq!(c.last_transition_time, Time(t0), "still True");
    assert!(c.message.contains("7 namespaces"), "{c:?}");
    assert_eq!(again.selected_namespaces, 7);

    p.status = Some(again);
    p.spec.namespace_selector.match_expressions =
        serde_json::from_value(json!([{"key": "team", "operator": "Exists", "values": ["a"]}]))
            .expect("expressions");
    let flipped = status(&p, 7, t2);
    assert_eq!(
        flipped.ready().expect("Ready").last_transition_time,
        Time(t2)
    );
    assert_eq!(flipped.conditions.len(), 1, "one Ready, replaced");
}

/// The CRD's shape: cluster-scoped, its names, columns, and what the schema refuses.
#[test]
fn the_crd_is_as_designed() {
    let crd = InvitationPolicy::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("invitationpolicies.iam.ccloud.dev")
    );
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(crd.spec.names.singular.as_deref(), Some("invitationpolicy"));
    assert_eq!(crd.spec.names.categories, Some(vec!["ccloud".to_owned()]));
    let version = &crd.spec.versions[0];
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<(&str, i32)> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
        .collect();
    assert_eq!(
        columns,
        [("Selector", 1), ("Namespaces", 0), ("Ready", 0), ("Age", 0)]
    );

    let schema = serde_json::to_value(version.schema.as_ref().unwrap()).unwrap();
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], json!(["namespaceSelector"]), "{spec:#}");
    let props = &spec["properties"];
    let grant = &props["grants"]["items"]["properties"];
    assert_eq!(grant["roles"]["minItems"], 1);
    assert_eq!(grant["scopes"]["minItems"], 1);
    assert_eq!(grant["roles"]["x-kubernetes-list-type"], "set");
    assert!(grant["scopes"]["items"]["pattern"].is_string());
    assert_eq!(props["protectedEmails"]["items"]["pattern"], EMAIL_PATTERN);
    assert_eq!(props["allowedEmailDomains"]["minItems"], 1);
    assert_eq!(
        props["allowedDeletionPolicies"]["default"],
        json!(["Delete", "Orphan"])
    );
    assert_eq!(
        props["allowedDeletionPolicies"]["items"]["enum"],
        json!(["Delete", "Orphan", "DeleteUser"])
    );
    assert_eq!(
        props["onDisallowedExisting"]["enum"],
        json!(["Keep", "Revoke"])
    );
    assert_eq!(props["onDisallowedExisting"]["default"], "Keep");
    for (field, d) in props.as_object().unwrap() {
        let d = d["description"].as_str().unwrap_or_default();
        assert!(d.len() > 30, "spec.{field} lacks a description: {d:?}");
    }
    let yaml = crd_yaml().expect("the CRD renders");
    assert!(yaml.starts_with("# Generated by"), "{yaml}");
}

/// The API server refuses a selector the operator could not read (where it runs CEL).
#[test]
fn cel_refuses_an_unreadable_selector() {
    use kube::core::cel::validate_cel;
    for (selector, valid) in [
        (json!({}), true),
        (json!({"matchLabels": {"team": "a"}}), true),
        (
            json!({"matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "t", "operator": "Exists"}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "t", "operator": "In"}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "t", "operator": "In", "values": []}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "t", "operator": "Exists", "values": ["a"]}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "t", "operator": "Like", "values": ["a"]}]}),
            false,
        ),
    ] {
        let p = policy("p", json!({"namespaceSelector": selector}));
        let got = validate_cel(&p);
        assert_eq!(got.is_ok(), valid, "{selector}: {got:?}");
        if let Err(e) = got {
            assert!(format!("{e:?}").contains("matchExpressions"), "{e:?}");
        }
    }
}
