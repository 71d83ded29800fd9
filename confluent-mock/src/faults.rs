//! Fault injection: the failures a controller must survive (5xx, 429, slow answers, lost
//! connections, and commits whose answer is lost, the case behind the create-then-409 problem),
//! made to happen on the next matching requests.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::sync::lock;

/// Makes the next `count` requests matching `method` and `path_prefix` fail with `action`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `"POST"`, `"GET"`, ... (case-insensitive); `None` matches any method.
    #[serde(default)]
    pub method: Option<String>,
    /// Matches requests whose path and query start with this: `/iam/v2/invitations` matches
    /// every call on invitations, `/iam/v2/invitations?` only lists.
    pub path_prefix: String,
    /// How many matching requests fail; each consumes one. A count of 0 does nothing.
    pub count: u32,
    /// What happens to them.
    pub action: FaultAction,
}

/// What a faulted request gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FaultAction {
    /// Answer this status with a real Failure body (a 429 also carries `Retry-After: 1` and
    /// `X-RateLimit-Reset: 1`); the operation is not performed.
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// Wait this long, then handle the request normally.
    Delay {
        /// Milliseconds to wait.
        millis: u64,
    },
    /// Close the TCP connection without any response; the operation is not performed.
    Drop,
    /// Perform the operation, then answer 500: the client cannot know it succeeded.
    CommitThen500,
    /// Perform the operation, then close the connection without any response.
    CommitThenDrop,
}

impl Fault {
    /// Makes the next `count` requests matching `method` (any when `None`) and `path_prefix`
    /// fail with `action`.
    pub fn new(method: Option<&str>, path_prefix: &str, count: u32, action: FaultAction) -> Self {
        Self {
            method: method.map(str::to_owned),
            path_prefix: path_prefix.into(),
            count,
            action,
        }
    }

    /// Whether this fault applies to a request.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.count > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// The pending faults, in the order they were injected.
#[derive(Debug, Default)]
pub struct FaultQueue {
    faults: Mutex<Vec<Fault>>,
}

impl FaultQueue {
    /// Queues a fault (a zero count is ignored).
    pub fn push(&self, fault: Fault) {
        if fault.count > 0 {
            lock(&self.faults).push(fault);
        }
    }

    /// Consumes one count of the first fault matching the request and returns its action.
    pub fn take(&self, method: &str, path: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|f| f.matches(method, path))?;
        let fault = &mut faults[i];
        fault.count -= 1;
        let action = fault.action.clone();
        if fault.count == 0 {
            faults.remove(i);
        }
        Some(action)
    }

    /// The faults still pending.
    pub fn pending(&self) -> Vec<Fault> {
        lock(&self.faults).clone()
    }

    /// Forgets every pending fault.
    pub fn clear(&self) {
        lock(&self.faults).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_counts_in_order() {
        let q = FaultQueue::default();
        q.push(Fault::new(
            Some("post"),
            "/iam/v2/invitations",
            2,
            FaultAction::Drop,
        ));
        q.push(Fault::new(
            None,
            "/iam/v2",
            1,
            FaultAction::Status { status: 503 },
        ));
        q.push(Fault::new(None, "/", 0, FaultAction::Drop));
        assert_eq!(q.pending().len(), 2);
        assert_eq!(
            q.take("GET", "/iam/v2/invitations"),
            Some(FaultAction::Status { status: 503 })
        );
        assert_eq!(q.take("GET", "/iam/v2/invitations"), None);
        assert_eq!(q.take("POST", "/iam/v2/users/u-1"), None);
        assert_eq!(
            q.take("POST", "/iam/v2/invitations"),
            Some(FaultAction::Drop)
        );
        assert_eq!(
            q.take("POST", "/iam/v2/invitations"),
            Some(FaultAction::Drop)
        );
        assert_eq!(q.take("POST", "/iam/v2/invitations"), None);
        assert!(q.pending().is_empty());
    }

    #[test]
    fn json_shape() {
        let f: Fault = serde_json::from_str(
            r#"{"method":"POST","path_prefix":"/iam/v2/invitations","count":1,"action":{"type":"commit_then_drop"}}"#,
        )
        .unwrap();
        assert_eq!(f.action, FaultAction::CommitThenDrop);
        let f: Fault = serde_json::from_str(
            r#"{"path_prefix":"/","count":3,"action":{"type":"status","status":429}}"#,
        )
        .unwrap();
        assert_eq!(f.method, None);
        assert_eq!(f.action, FaultAction::Status { status: 429 });
        let v = serde_json::to_value(FaultAction::Delay { millis: 5 }).unwrap();
        assert_eq!(v, serde_json::json!({"type": "delay", "millis": 5}));
    }
}
