//! Waiting for something to become true.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Calls `probe` every `every` until it gives a value, or `within` has passed (`None`).
pub async fn poll_until<T, Fut>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Fut,
) -> Option<T>
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gives_the_first_value_the_probe_finds() {
        let mut calls = 0;
        let found = poll_until(Duration::from_secs(10), Duration::from_secs(1), || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(found, Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_none_once_the_time_is_up() {
        let started = Instant::now();
        let found: Option<()> =
            poll_until(Duration::from_secs(5), Duration::from_secs(1), || async {
                None
            })
            .await;
        assert_eq!(found, None);
        assert!(started.elapsed() >= Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(7));
    }
}
