use super::rate_headers::server_wait_at;
use super::*;
use reqwest::header::HeaderMap;

#[test]
fn ids_cannot_escape_their_path_segment() {
    assert!(path_segment("i-abc12").is_ok());
    for bad in ["", "../users/u-1", "i-1?x=1", "i-1/", "i 1", "i-%2f"] {
        assert!(path_segment(bad).is_err(), "{bad}");
    }
}

#[test]
fn retry_after_wins_over_relative_reset() {
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-reset", "9".parse().unwrap());
    assert_eq!(server_wait(&h), Some(Duration::from_secs(9)));
    h.insert("retry-after", "3".parse().unwrap());
    assert_eq!(server_wait(&h), Some(Duration::from_secs(3)));
}

#[test]
fn retry_after_as_an_http_date() {
    let now: jiff::Timestamp = "2015-10-21T07:27:30Z".parse().unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        "retry-after",
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    h.insert("x-ratelimit-reset", "9".parse().unwrap());
    assert_eq!(server_wait_at(&h, now), Some(Duration::from_secs(30)));
    // a date already past: no wait beyond the limiter's own
    h.insert(
        "retry-after",
        "Wed, 21 Oct 2015 07:00:00 GMT".parse().unwrap(),
    );
    assert_eq!(server_wait_at(&h, now), Some(Duration::ZERO));
    // a far date is capped
    h.insert(
        "retry-after",
        "Thu, 22 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(server_wait_at(&h, now), Some(Duration::from_secs(3600)));
    // neither seconds nor a date: the relative reset
    h.insert("retry-after", "soon".parse().unwrap());
    assert_eq!(server_wait_at(&h, now), Some(Duration::from_secs(9)));
}

#[test]
fn endpoint_must_be_http() {
    assert!(ClientSettings::new("https://api.confluent.cloud").is_ok());
    assert!(ClientSettings::new("ftp://x").is_err());
    assert!(ClientSettings::new("not a url").is_err());
}
