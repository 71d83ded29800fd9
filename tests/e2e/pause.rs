//! The pause annotation: no Confluent call while it is set, shown in status and `kubectl get`,
//! and a deletion made while paused waits for its removal.

use confluent_client::model::InviteStatus;
use confluent_invitation_operator::invitation::resource::PAUSED_ANNOTATION;
use kube::api::DeleteParams;

use crate::harness::*;

/// The cells of `kubectl get inv NAME` (the API server's Table rendering of the printer
/// columns), by column name.
async fn table_row(env: &Env, name: &str) -> Vec<(String, serde_json::Value)> {
    let request = http::Request::get(format!(
        "/apis/iam.ccloud.dev/v1alpha1/namespaces/{}/invitations/{name}",
        env.ns
    ))
    .header(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .body(Vec::new())
    .expect("request");
    let table: serde_json::Value =
        serde_json::from_str(&env.kube.request_text(request).await.expect("table")).expect("JSON");
    let columns = table["columnDefinitions"].as_array().expect("columns");
    let cells = table["rows"][0]["cells"].as_array().expect("one row");
    columns
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .zip(cells.iter().cloned())
        .collect()
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_paused_invitation_sends_nothing_until_resumed() {
    let env = env("pause-new").await;
    let mut inv = invitation("p", "paused@example.com");
    inv.metadata.annotations = Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
    env.create(&inv).await;
    let held = env.wait_reason("p", "Paused").await;
    assert_eq!(ready_of(&held).unwrap().0, "False");
    assert!(
        !has_finalizer(&held),
        "nothing remote exists, so nothing to guard"
    );
    let (kind, note) = env.wait_event("p", "Paused").await;
    assert_eq!(kind, "Normal");
    assert!(note.contains(PAUSED_ANNOTATION), "{note}");
    let row = table_row(&env, "p").await;
    assert!(
        row.contains(&("Paused".to_owned(), serde_json::json!("true"))),
        "{row:?}"
    );
    assert!(
        row.contains(&("Ready".to_owned(), serde_json::json!("False"))),
        "{row:?}"
    );
    let calls = env.remote().calls().total;
    tokio::time::sleep(RESYNC * 3).await;
    assert_eq!(
        env.remote().calls().total,
        calls,
        "no Confluent call while paused"
    );
    assert_eq!(env.remote().calls().create, 0);
    assert!(env.live("paused@example.com").is_empty());

    env.set_paused("p", false).await;
    let resumed = env.wait_phase("p", "Sent", "True").await;
    assert!(has_finalizer(&resumed));
    assert_eq!(env.live("paused@example.com").len(), 1);
    let row = table_row(&env, "p").await;
    assert!(
        row.contains(&("Paused".to_owned(), serde_json::Value::Null)),
        "{row:?}"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn deleting_a_paused_invitation_waits_for_the_annotation_to_go() {
    let env = env("pause-delete").await;
    env.create(&invitation("d", "held@example.com")).await;
    let id = id_of(&env.wait_phase("d", "Sent", "True").await);
    env.set_paused("d", true).await;
    env.wait_reason("d", "Paused").await;
    env.api
        .delete("d", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let held = env
        .wait_for("d", "paused while deleting", |i| {
            ready_of(i).is_some_and(|r| r.1 == "Paused" && r.2.contains("deletion waits"))
        })
        .await;
    assert!(has_finalizer(&held));
    let calls = env.remote().calls();
    tokio::time::sleep(RESYNC * 3).await;
    assert!(
        env.api.get_opt("d").await.unwrap().is_some(),
        "held by the finalizer"
    );
    // The credential's periodic list goes on (it serves every Invitation of the credential);
    // nothing is asked or sent about this one.
    let now = env.remote().calls();
    assert_eq!(
        (now.get, now.create, now.delete, now.delete_user),
        (calls.get, calls.create, 0, 0),
        "no call about the paused invitation"
    );
    assert_eq!(
        env.remote_by_id(&id).unwrap().status,
        Some(InviteStatus::Sent)
    );

    env.set_paused("d", false).await;
    env.wait_gone("d").await;
    assert_eq!(
        env.remote_by_id(&id).unwrap().status,
        Some(InviteStatus::Deactivated)
    );
    env.wait_event("d", "Deleted").await;
}
