//! Arbitrary status codes, headers' values and bodies through the client's error
//! classification: `Error::from_status`, `ServerRefusal::from_response` and their `Display`, as the
//! controller turns them into conditions, Events and metrics labels. Never a panic; always a
//! CamelCase reason, and a message that names the status.

#![no_main]

use std::time::Duration;

use confluent_client::error::bounded;
use confluent_client::{Error, ServerRefusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // [status: 2 bytes][flags: 1 byte][retry-after: 4 bytes][body...]
    if data.len() < 7 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let flags = data[2];
    let wait = u32::from_be_bytes([data[3], data[4], data[5], data[6]]);
    let body = &data[7..];
    let request_id = (flags & 1 == 1).then(|| String::from_utf8_lossy(body).into_owned());
    let retry_after = (flags & 2 == 2).then(|| Duration::from_secs(u64::from(wait)));

    let refusal = ServerRefusal::from_response(status, body, request_id.clone());
    // what is shown always names the status
    let shown = refusal.to_string();
    assert!(shown.contains(&format!("[HTTP {status}")), "{shown}");

    let e = Error::from_status(status, body, request_id.clone(), retry_after);
    let reason = e.reason();
    assert!(!reason.is_empty() && reason.chars().all(|c| c.is_ascii_alphabetic()));
    let _ = e.to_string();
    assert!(!e.detail().is_empty());
    // the request id is kept, cut to a bounded size
    let kept = request_id.as_deref().map(bounded);
    assert_eq!(e.request_id(), kept.as_deref());
    if status == 429 {
        assert_eq!(
            e.retry_after(),
            Some(retry_after.unwrap_or(Duration::from_secs(1)))
        );
        assert!(e.is_transient());
    } else {
        let r = e.refusal().expect("every non-429 status keeps the refusal");
        assert_eq!(r, &refusal);
        assert_eq!(e.is_transient(), (500..=599).contains(&status));
    }
});
