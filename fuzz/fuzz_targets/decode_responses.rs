//! Arbitrary bytes as a Confluent response body: parsing a `RemoteInvitation`, an `InvitationList`, a
//! `User` or a `Failure` either fails with an error or yields a value that serializes and parses
//! back to itself. Never a panic, whatever the server sends.

#![no_main]

use confluent_client::model::{Failure, InvitationList, InviteStatus, RemoteInvitation, User};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses `data` as `T`; what parses must round-trip through our own serializer unchanged.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value = serde_json::from_slice::<T>(data).ok()?;
    let text = serde_json::to_vec(&value).expect("a parsed value serializes");
    let back: T = serde_json::from_slice(&text).expect("our own output parses");
    assert_eq!(back, value, "round trip changed the value");
    Some(value)
}

/// What the controller reads off an invitation.
fn exercise(inv: &RemoteInvitation) {
    let _ = inv.user_id();
    let _ = inv.resource_name();
    let _ = inv.created_at();
    let _ = inv.expires_at_timestamp();
    let _ = inv.email_matches("jane@example.com");
    if let Some(email) = &inv.email {
        assert!(inv.email_matches(email));
        assert!(inv.email_matches(&email.to_ascii_uppercase()));
    }
    if let Some(status) = &inv.status {
        let _ = status.is_live();
        // unknown values are kept verbatim, known ones keep their meaning
        assert_eq!(&InviteStatus::parse(status.as_str()), status);
        assert_eq!(status.to_string(), status.as_str());
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(inv) = round_trip::<RemoteInvitation>(data) {
        exercise(&inv);
    }
    if let Some(list) = round_trip::<InvitationList>(data) {
        list.data.iter().for_each(exercise);
        let _ = list.metadata.next.as_deref().filter(|n| !n.is_empty());
    }
    let _ = round_trip::<User>(data);
    if let Some(failure) = round_trip::<Failure>(data) {
        for e in &failure.errors {
            let _ = e
                .source
                .as_ref()
                .and_then(|s| s.pointer.as_ref().or(s.parameter.as_ref()));
        }
    }
});
