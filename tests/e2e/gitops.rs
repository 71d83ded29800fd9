//! GitOps health on real status objects: what Flux's kstatus concludes from the operator's
//! status (the Ready condition plus observedGeneration).

use confluent_invitation_operator::invitation::resource::Invitation;

use crate::harness::*;

/// kstatus's reading of a custom resource (sigs.k8s.io/cli-utils, the generic rules Flux uses):
/// deletion → Terminating; status.observedGeneration behind metadata.generation → InProgress;
/// Reconciling=True → InProgress; Stalled=True → Failed; a Ready condition → Current only when
/// True; no conditions at all → Current.
fn kstatus(obj: &Invitation) -> &'static str {
    if obj.metadata.deletion_timestamp.is_some() {
        return "Terminating";
    }
    let Some(status) = &obj.status else {
        return "Current";
    };
    if let (Some(observed), Some(generation)) =
        (status.observed_generation, obj.metadata.generation)
        && observed != generation
    {
        return "InProgress";
    }
    let condition = |t: &str| status.conditions.iter().find(|c| c.type_ == t);
    if condition("Reconciling").is_some_and(|c| c.status == "True") {
        return "InProgress";
    }
    if condition("Stalled").is_some_and(|c| c.status == "True") {
        return "Failed";
    }
    match condition("Ready") {
        Some(c) if c.status == "True" => "Current",
        Some(_) => "InProgress",
        None => "Current",
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn flux_reads_health_from_the_ready_condition_and_observed_generation() {
    let env = env("kstatus").await;
    env.create(&invitation("k", "kstatus@example.com")).await;
    let inv = env.wait_phase("k", "Sent", "True").await;
    assert_eq!(kstatus(&inv), "Current");

    // a spec change: until the operator has looked at the new generation, Flux must wait
    let patched = env
        .patch_spec("k", serde_json::json!({"deletionPolicy": "Orphan"}))
        .await;
    assert!(patched.metadata.generation > inv.metadata.generation);
    assert_eq!(
        kstatus(&patched),
        "InProgress",
        "observedGeneration is behind"
    );
    let generation = patched.metadata.generation;
    let inv = env
        .wait_for("k", "observed at the new generation", |i| {
            i.status.as_ref().and_then(|s| s.observed_generation) == generation
        })
        .await;
    assert_eq!(kstatus(&inv), "Current");
    let ready = inv.status.as_ref().unwrap().ready().unwrap().clone();
    assert_eq!(
        ready.observed_generation, generation,
        "the condition carries it too"
    );

    // an expired invitation is not healthy (a second later, so the flip's time differs at the
    // one-second precision of metav1.Time)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    env.remote().expire(&id_of(&inv)).unwrap();
    let inv = env.wait_reason("k", "Expired").await;
    assert_eq!(kstatus(&inv), "InProgress");
    // and a healthy lastTransitionTime moved when Ready flipped
    assert_ne!(
        inv.status
            .as_ref()
            .unwrap()
            .ready()
            .unwrap()
            .last_transition_time,
        ready.last_transition_time
    );
}
