//! The Event publisher every reconcile shares: kube's Recorder, handed over before its cache of
//! published Events grows without bound.

use kube::runtime::events::{Recorder, Reporter};
use parking_lot::Mutex;

/// How many Events one Recorder publishes before it is replaced by a fresh one.
pub const EVENT_MEMORY: usize = 1024;

/// Hands out kube's [`Recorder`], which turns a repeated Event (same object, type and reason)
/// into a `series` count on the first instead of a new object. Its cache keeps every Event it
/// published for 6 minutes and is only pruned by the next publish: a burst of new invitations
/// stayed in it for as long as nothing else happened (BENCHMARKS.md, "Measured once"). So a
/// Recorder serves `limit` Events, then a fresh one takes over: at most `limit` Events are
/// remembered, and a repeat after a hand-over starts a new Event instead of extending the old
/// series.
pub struct EventSink {
    kube: kube::Client,
    reporter: Reporter,
    limit: usize,
    /// The Recorder in use and how many Events it has published.
    current: Mutex<(Recorder, usize)>,
    /// How many Recorders were replaced.
    handovers: std::sync::atomic::AtomicUsize,
}

impl EventSink {
    /// A sink whose Recorders serve `limit` Events each.
    pub fn new(kube: kube::Client, reporter: Reporter, limit: usize) -> Self {
        let recorder = Recorder::new(kube.clone(), reporter.clone());
        Self {
            kube,
            reporter,
            limit: limit.max(1),
            current: Mutex::new((recorder, 0)),
            handovers: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The Recorder for the next Event.
    pub fn recorder(&self) -> Recorder {
        let mut current = self.current.lock();
        if current.1 >= self.limit {
            *current = (Recorder::new(self.kube.clone(), self.reporter.clone()), 0);
            self.handovers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        current.1 += 1;
        current.0.clone()
    }

    /// Who publishes: the controller and the replica.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// How many times a fresh Recorder took over (the tests read it).
    pub fn handovers(&self) -> usize {
        self.handovers.load(std::sync::atomic::Ordering::Relaxed)
    }
}
