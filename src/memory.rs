//! Keeping the resident set close to what is in use, with glibc's malloc.
//!
//! glibc gives every thread that allocates its own arena (up to 8 per core) and returns freed
//! memory inside an arena to the OS only when asked. The operator's memory churns: every resync
//! lists every invitation again, and every watch event replaces an object. Measured at 10 000
//! Invitations with a 30 s resync (BENCHMARKS.md), the resident set of an idle operator grew by
//! ~10 MiB per resync with the defaults (75 → 113 MiB in 105 s). One arena and a trim after each
//! resync keep it flat (62 MiB); the operator's two worker threads spend most of their time
//! waiting on the network, so sharing one arena costs little.
//! Other C libraries (musl) and other systems are left alone.

/// Limits malloc to one arena. Call before the async runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tunable; it is called once, before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands free memory in every arena back to the OS. Costs a walk of the heap (milliseconds at
/// 10 000 Invitations), so it runs once per resync, not per reconcile.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only returns unused pages to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
}
