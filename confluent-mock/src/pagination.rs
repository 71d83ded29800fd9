//! Paging of lists (`GET /iam/v2/invitations`, `GET /iam/v2/role-bindings`) and its opaque page
//! tokens.
//!
//! A token is a cursor (the creation sequence number of the last item served) plus the page size
//! chosen on the first request, so pages stay stable while invitations are created or deleted
//! between requests, and `page_size` is honoured on the first request only, as the real service
//! does. A checksum makes forged or truncated tokens fail with a 400 instead of serving a wrong
//! page.

use std::collections::BTreeMap;

use super::error::MockError;

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

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items on this page, in creation order.
    pub items: Vec<T>,
    /// The token of the next page; `None` on the last page.
    pub next_token: Option<String>,
    /// How many items match the filters in all.
    pub total_size: u64,
    /// The page size in force.
    pub page_size: u32,
}

/// Where a list request starts: its page token's cursor, else a first page of `page_size`.
pub fn start(page_token: Option<&str>, page_size: Option<u32>) -> Result<Cursor, MockError> {
    match page_token {
        Some(token) => decode(token).ok_or_else(|| {
            MockError::invalid_query(
                "page_token",
                "The page_token is invalid: pass the next link or page_token of a previous page unchanged",
            )
        }),
        None => {
            let page_size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
            if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
                return Err(MockError::invalid_query(
                    "page_size",
                    format!("The page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"),
                ));
            }
            Ok(Cursor {
                after_seq: 0,
                page_size,
            })
        }
    }
}

/// The page after `cursor` of the `records` (keyed by creation sequence number) that `matches`.
pub fn page<T: Clone>(
    records: &BTreeMap<u64, T>,
    cursor: Cursor,
    matches: impl Fn(&T) -> bool,
) -> Page<T> {
    let total_size = records.values().filter(|r| matches(r)).count() as u64;
    let mut rest = records
        .range(cursor.after_seq.saturating_add(1)..)
        .filter(|(_, r)| matches(r));
    let taken: Vec<(&u64, &T)> = rest.by_ref().take(cursor.page_size as usize).collect();
    let next_token = match (rest.next(), taken.last()) {
        (Some(_), Some((last, _))) => Some(encode(Cursor {
            after_seq: **last,
            page_size: cursor.page_size,
        })),
        _ => None,
    };
    Page {
        items: taken.into_iter().map(|(_, r)| r.clone()).collect(),
        next_token,
        total_size,
        page_size: cursor.page_size,
    }
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
