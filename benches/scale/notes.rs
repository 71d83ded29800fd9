//! The observations under the results: plain statements derived from one row of a run.

use std::time::Duration;

use crate::flags::Opts;
use crate::measure::per_window;
use crate::phases::Row;
use crate::units::{count, rate_str, secs};

/// Plain statements derived from one row.
pub fn notes(opts: &Opts, r: &Row) -> Vec<String> {
    let mut notes = Vec::new();
    let c = &r.converge_calls;
    if r.ready_after.is_some() {
        notes.push(format!(
            "{:.2} Confluent calls per invitation to converge ({} list, {} create, {} get per \
             invitation), against {:.2} for the bound",
            c.total as f64 / r.n as f64,
            ratio(c.list, r.n),
            ratio(c.create, r.n),
            ratio(c.get, r.n),
            r.bound.as_secs_f64() * r.rate / r.n as f64
        ));
    } else {
        notes.push(format!(
            "not all Ready within {}: {} of {} Ready, the others {:?}; the Ready count last \
             grew {} after the first create; {} Confluent calls were made meanwhile ({} list, {} \
             create, {} get)",
            secs(r.converge_timeout),
            count(r.ready_count),
            count(r.n),
            r.not_ready,
            secs(r.last_growth),
            count(c.total),
            count(c.list),
            count(c.create),
            count(c.get)
        ));
    }
    let marks: Vec<String> = r
        .milestones
        .iter()
        .zip(["25%", "50%", "75%"])
        .map(|(m, label)| match m {
            Some(t) => format!("{label} after {}", secs(*t)),
            None => format!("{label} never"),
        })
        .collect();
    let converging = r.ready_after.unwrap_or(r.converge_timeout);
    notes.push(format!(
        "Ready over time: {}; the operator used {:.2} CPU cores on average until {}",
        marks.join(", "),
        r.converge_cpu / converging.as_secs_f64().max(0.001),
        if r.ready_after.is_some() {
            "all were Ready"
        } else {
            "the wait ended"
        }
    ));
    let resync = opts.resync.as_secs_f64();
    let polling_rate = r.n as f64 / resync;
    if polling_rate > r.rate {
        notes.push(format!(
            "per-object polling (a GET per Invitation per resync) would need {polling_rate:.0} \
             calls/s, more than the {} req/s limit: one such round would take at least {} \
             instead of {}",
            rate_str(r.rate),
            secs(Duration::from_secs_f64(r.n as f64 / r.rate)),
            secs(opts.resync)
        ));
    }
    if let Some(w) = per_window(&r.steady_calls, r.windows) {
        let budget = r.rate * resync;
        notes.push(format!(
            "in steady state the operator spent {:.2} CPU seconds per resync interval ({:.1}% of \
             one core) for {w:.1} Confluent calls",
            r.steady_cpu / f64::from(r.windows.max(1)),
            r.steady_cpu * 100.0 / (resync * f64::from(r.windows.max(1)))
        ));
        if w >= 0.9 * budget {
            notes.push(format!(
                "the steady state uses {:.0}% of the rate limit ({w:.0} of {budget:.0} calls per \
                 resync): nothing is left for new Invitations or retries",
                w * 100.0 / budget
            ));
        } else {
            notes.push(format!(
                "the steady state uses {:.0}% of the rate limit ({w:.0} of {budget:.0} calls per \
                 resync)",
                w * 100.0 / budget
            ));
        }
    }
    if r.log_warnings + r.log_errors > 0 {
        let top: Vec<String> = r
            .log_top
            .iter()
            .map(|(m, k)| format!("{k} × \"{m}\""))
            .collect();
        let mut note = format!(
            "the operator logged {} warnings and {} errors: {}",
            count(r.log_warnings),
            count(r.log_errors),
            top.join(", ")
        );
        if r.log_top
            .iter()
            .any(|(m, _)| m.contains("Server cert bypassed"))
        {
            note.push_str(
                " (\"Server cert bypassed\" is kube-rs noting the throwaway control plane's \
                 `insecure-skip-tls-verify` kubeconfig, once per connection)",
            );
        }
        notes.push(note);
    } else {
        notes.push("the operator logged no warning or error".into());
    }
    notes.push(format!(
        "the whole run took {} (creating the N objects: {}); the machine's 1-minute load \
         average was {:.2} before and {:.2} after",
        secs(r.wall),
        secs(r.created_after),
        r.load.0,
        r.load.1
    ));
    notes
}

pub fn ratio(part: u64, n: u64) -> String {
    format!("{:.2}", part as f64 / n as f64)
}
