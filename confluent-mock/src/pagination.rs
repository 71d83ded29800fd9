//! Opaque page tokens for `GET /iam/v2/invitations`.
//!
//! A token is a cursor (the creation sequence number of the last item served) plus the page size
//! chosen on the first request, so pages stay stable while invitations are created or deleted
//! between requests, and `page_size` is honoured on the first request only, as the real service
//! does. A checksum makes forged or truncated tokens fail with a 400 instead of serving a wrong
//! page.

/// Default `page_size` when the first request does not give one.
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// Largest accepted `page_size`.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Scrambles the cursor so clients do not mistake the token for a number they may compute.
const MASK: u64 = 0x5a17_c0de_f00d_b33f;

/// What a page token carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Serve items created strictly after this sequence number.
    pub after_seq: u64,
    /// The page size fixed by the first request.
    pub page_size: u32,
}

/// Encodes a cursor as an opaque token of 26 lowercase hex digits.
pub fn encode(cursor: Cursor) -> String {
    let payload = format!("{:016x}{:02x}", cursor.after_seq ^ MASK, cursor.page_size);
    let sum = fnv1a32(payload.as_bytes());
    format!("{payload}{sum:08x}")
}

/// Decodes a token made by [`encode`]; `None` for anything else.
pub fn decode(token: &str) -> Option<Cursor> {
    if token.len() != 26 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (payload, sum) = token.split_at(18);
    let sum = u32::from_str_radix(sum, 16).ok()?;
    if sum != fnv1a32(payload.as_bytes()) {
        return None;
    }
    let seq = u64::from_str_radix(&payload[..16], 16).ok()? ^ MASK;
    let page_size = u32::from_str_radix(&payload[16..], 16).ok()?;
    (1..=MAX_PAGE_SIZE).contains(&page_size).then_some(Cursor {
        after_seq: seq,
        page_size,
    })
}

/// 32-bit FNV-1a: a tiny, dependency-free checksum (not a security boundary).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (seq, size) in [(0, 1), (1, 10), (u64::MAX, 100), (12_345, 37)] {
            let c = Cursor {
                after_seq: seq,
                page_size: size,
            };
            assert_eq!(decode(&encode(c)), Some(c));
        }
    }

    #[test]
    fn rejects_forged_and_malformed_tokens() {
        let token = encode(Cursor {
            after_seq: 5,
            page_size: 10,
        });
        let mut forged = token.clone().into_bytes();
        forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(decode(&forged), None);
        assert_eq!(decode(&token[..25]), None);
        assert_eq!(decode("not-a-token"), None);
        assert_eq!(decode(""), None);
        assert_eq!(decode(&format!("{token}0")), None);
    }
}
