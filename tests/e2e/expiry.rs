//! A natural expiry is reported within seconds of `expiresAt`, whatever the resync interval.

use std::time::Duration;

use crate::harness::*;

/// Far longer than the test: only the wake-up at expiry can report it in time.
const LONG_RESYNC: Duration = Duration::from_secs(600);

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_natural_expiry_is_reported_within_seconds_with_a_long_resync() {
    let env = env_with(
        "expiry-long-resync",
        Options {
            resync: LONG_RESYNC,
            ..Options::default()
        },
    )
    .await;
    // an invitation that expires on its own in a few seconds (the mock's natural expiry)
    let seeded = env.remote().seed_invitation("eve@example.com", None);
    let id = seeded.id.clone().expect("an id");
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(8);
    env.remote().expire_at(&id, expires).expect("expiry set");
    env.create(&invitation("eve", "eve@example.com")).await;
    let sent = env.wait_phase("eve", "Sent", "True").await;
    assert_eq!(id_of(&sent), id);
    let expired = env.wait_phase("eve", "Expired", "False").await;
    let late = jiff::Timestamp::now().duration_since(expires);
    assert!(
        late < jiff::SignedDuration::from_secs(6),
        "Expired reported {late:?} after expiresAt"
    );
    assert_eq!(id_of(&expired), id);
    let (kind, _) = env.wait_event("eve", "Expired").await;
    assert_eq!(kind, "Warning");
}
