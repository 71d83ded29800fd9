//! Query strings: a strict `application/x-www-form-urlencoded` parser (so malformed input is a
//! 400 the mock chooses, not a framework rejection) and the matching encoder for `next` links.

/// Splits and decodes `a=1&b=x%40y` into pairs; `None` on bad percent-escapes or non-UTF-8.
pub fn parse(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Percent-decodes one component, `+` meaning space.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes one component, leaving only RFC 3986 unreserved characters bare.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in ["jane+tag@example.com", "a b&c=d", "ünï", ""] {
            assert_eq!(decode(&encode(s)).as_deref(), Some(s));
        }
    }

    #[test]
    fn parses_pairs() {
        assert_eq!(
            parse("email=a%2Bb%40c.io&page_size=5&&flag").unwrap(),
            vec![
                ("email".into(), "a+b@c.io".into()),
                ("page_size".into(), "5".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(parse("a=1+2").unwrap(), vec![("a".into(), "1 2".into())]);
        assert!(parse("a=%zz").is_none());
        assert!(parse("a=%4").is_none());
        assert!(parse("a=%ff").is_none());
    }
}
