//! The one locking rule of the mock, in a module of its own so the state it guards (faults, rate
//! limits, the shared handle) can each use it without importing one another.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering from poisoning: a panicking test thread must not wedge the mock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
