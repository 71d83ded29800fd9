//! Locks shared between a suite's tasks.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also after a panicking holder poisoned it: a failed check must not hide the state
/// the summary reports.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
