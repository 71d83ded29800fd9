//! `--label-selector` splits a fleet: each deployment reconciles only its slice.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn disjoint_label_selectors_split_the_fleet() {
    let mut env = env("shard").await;
    env.kill_operator(); // replaced by two sharded ones
    let mut a = env.spawn_operator(&["--label-selector", "shard=a"]);
    let mut b = env.spawn_operator(&["--label-selector", "shard notin (a)"]);
    env.ready(&mut a).await;
    env.ready(&mut b).await;
    let labelled = |name: &str, shard: Option<&str>| {
        let mut inv = invitation(name, &format!("{name}@example.com"));
        if let Some(s) = shard {
            inv.metadata.labels = Some(BTreeMap::from([("shard".to_string(), s.to_string())]));
        }
        inv
    };
    env.create(&labelled("in-a", Some("a"))).await;
    env.create(&labelled("in-b", Some("b"))).await;
    env.create(&labelled("unlabelled", None)).await;
    for name in ["in-a", "in-b", "unlabelled"] {
        env.wait_phase(name, "Sent", "True").await;
        assert_eq!(env.live(&format!("{name}@example.com")).len(), 1);
    }
    // each Event names the replica that acted: shard a handled only in-a
    let reporter = |name: &'static str| {
        let env = &env;
        async move {
            let api: kube::Api<k8s_openapi::api::events::v1::Event> =
                kube::Api::namespaced(env.kube.clone(), &env.ns);
            api.list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter_map(|e| e.reporting_instance)
                .collect::<Vec<_>>()
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a_instance = reporter("in-a").await;
    let b_instance = reporter("in-b").await;
    let u_instance = reporter("unlabelled").await;
    assert!(!a_instance.is_empty() && !b_instance.is_empty());
    assert!(
        a_instance.iter().all(|i| !b_instance.contains(i)),
        "{a_instance:?} vs {b_instance:?}"
    );
    assert_eq!(
        u_instance, b_instance,
        "the catch-all shard took the unlabelled one"
    );
    assert_eq!(
        env.remote().calls().create,
        3,
        "each invitation created once, by one shard"
    );
}
