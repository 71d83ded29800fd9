//! Time as the API renders it.

use jiff::Timestamp;

/// Truncates to whole seconds: the API renders timestamps with seconds precision.
pub fn whole_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}
