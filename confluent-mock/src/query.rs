//! Query strings: a strict `application/x-www-form-urlencoded` parser (so malformed input is a
//! 400 the mock chooses, not a framework rejection) and the matching encoder for `next` links.

use super::error::MockError;

/// A list request's parameters, checked the same way for every resource.
pub struct ListParams<const N: usize> {
    /// The resource's filters, in the order asked for.
    pub filters: [Option<String>; N],
    /// Honoured only without a page token.
    pub page_size: Option<u32>,
    /// From a previous page's `next` link.
    pub page_token: Option<String>,
    /// The filters given, re-encoded for the `first` and `next` links.
    pub encoded_filters: String,
}

/// Parses a list query: the resource's `filters` and the paging parameters only, each at most
/// once, empty ones ignored; an unknown parameter is refused naming the `resource`.
pub fn parse_list<const N: usize>(
    raw: &str,
    resource: &str,
    filters: [&'static str; N],
) -> Result<ListParams<N>, MockError> {
    let pairs = parse(raw).ok_or_else(|| {
        MockError::invalid_query(
            "query",
            "The query string is not valid application/x-www-form-urlencoded UTF-8",
        )
    })?;
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut page_size = None::<String>;
    let mut page_token = None::<String>;
    for (key, value) in pairs {
        let (name, slot): (&'static str, &mut Option<String>) = match key.as_str() {
            "page_size" => ("page_size", &mut page_size),
            "page_token" => ("page_token", &mut page_token),
            k => match filters.iter().position(|f| *f == k) {
                Some(i) => (filters[i], &mut values[i]),
                None => {
                    return Err(MockError::invalid_query(
                        &key,
                        format!("The '{resource}' resource can't be filtered by '{key}'"),
                    ));
                }
            },
        };
        if value.is_empty() {
            continue;
        }
        if slot.is_some() {
            return Err(MockError::invalid_query(
                name,
                format!("The parameter '{name}' may be given only once"),
            ));
        }
        *slot = Some(value);
    }
    let page_size = match page_size {
        Some(size) => Some(size.parse::<u32>().map_err(|_| {
            MockError::invalid_query(
                "page_size",
                format!("The page_size must be an integer between 1 and 100, got '{size}'"),
            )
        })?),
        None => None,
    };
    if page_token.as_ref().is_some_and(|t| t.len() > 255) {
        return Err(MockError::invalid_query(
            "page_token",
            "The page_token must be at most 255 characters",
        ));
    }
    let encoded_filters = filters
        .iter()
        .zip(&values)
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&");
    Ok(ListParams {
        filters: values,
        page_size,
        page_token,
        encoded_filters,
    })
}

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
