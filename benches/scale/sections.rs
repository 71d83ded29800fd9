//! The report's sections of particular runs: Secrets sharing one key, role bindings, the mock
//! halving its limit, and the peers' strategy next to ours.

use std::fmt::Write as _;

use crate::flags::{Opts, RunKind};
use crate::measure::{PAGE, bound_with_bindings, per_window, physical_bound};
use crate::peers::PeerRow;
use crate::phases::Row;
use crate::units::{count, pct, rate_str, secs, yes_no};

/// Invitations spread over Secrets holding one key (`--secrets`): what Confluent sees is one
/// credential, so one list per resync and one budget, whatever the number of Secrets.
pub fn render_secrets(out: &mut String, opts: &Opts, rows: &[Row]) {
    if opts.secrets == 0 {
        return;
    }
    let _ = writeln!(out, "\n## Secrets sharing one key\n");
    let _ = writeln!(
        out,
        "The N Invitations are spread over {} credentials Secrets in as many namespaces \
         (Invitation i in the i mod {}-th), every Secret holding the same API key, and the \
         operator has no default credentials. A credential is what Confluent sees, so the \
         Secrets share one client: one rate limiter for the key's one budget, one paginated list \
         of ⌈N/100⌉ pages per resync (a client per Secret would list {} times and pace {} \
         limiters against one budget).\n",
        opts.secrets, opts.secrets, opts.secrets, opts.secrets
    );
    let _ = writeln!(
        out,
        "| N | operator rate flags | Secrets | invitation list calls per resync, steady: measured | ⌈N/100⌉ | equal? | 429s received | all Ready after (ratio to bound) |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---|---:|---:|");
    for r in rows {
        let pages = r.n.div_ceil(PAGE);
        let (measured, equal) = match &r.steady_calls {
            Some(s) => {
                let per = s.list as f64 / f64::from(r.windows.max(1));
                (format!("{per:.1}"), yes_no(per == pages as f64).to_owned())
            }
            None => ("not measured".into(), "n/a".into()),
        };
        let all = &r.all_calls;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {measured} | {} | {equal} | {} of {} ({:.2}%) | {} |",
            count(r.n),
            r.kind.label(),
            opts.secrets,
            count(pages),
            count(all.rate_limited),
            count(all.total),
            pct(all.rate_limited, all.total),
            r.ready_after.map_or("not all Ready".into(), |t| format!(
                "{} ({:.2}×)",
                secs(t),
                t.as_secs_f64() / r.bound.as_secs_f64()
            ))
        );
    }
}

/// Invitations with role bindings: the time to converge with them, and the steady state's calls
/// split into invitation lists, role-binding lists and the rest (the cost bound of role bindings).
pub fn render_bindings(out: &mut String, rows: &[Row]) {
    if rows.iter().all(|r| !r.bindings.any()) {
        return;
    }
    let _ = writeln!(out, "\n## Steady state with bindings\n");
    let _ = writeln!(
        out,
        "Every Invitation lists K role bindings (`spec.roleBindings`, relative environment \
         patterns) over S shared environments, item j of Invitation i in environment (i + j) \
         mod S; all Ready means every binding Bound too. The convergence bound is (N creates + \
         ⌈N/100⌉ list pages + N·K binding creates + the pages of one list per scope) / rate; the \
         steady bound: ⌈N/100⌉ invitation list pages + the pages of one list per \
         scope in use (one credential here) + 5. Calls as the mock counts them, the role-binding \
         ones (`RoleBindingCalls`) included in the totals.\n"
    );
    let _ = writeln!(
        out,
        "| N | operator rate flags | K bindings over S scopes | all Ready after | bound | ratio to bound | calls to all Ready: invitation list / create, role-binding list / create / other (total) | steady calls per resync: invitation lists / role-binding lists / anything else (total) | steady bound per resync | met? | bindings in the mock: bound once / listed, missing, duplicates |"
    );
    let _ = writeln!(out, "|---:|---|---|---:|---:|---:|---|---|---:|---|---|");
    for r in rows.iter().filter(|r| r.bindings.any()) {
        let c = &r.converge_calls;
        let rb = &r.converge_role_binding_calls;
        let (ready, ratio) = match r.ready_after {
            Some(t) => (
                secs(t),
                format!("{:.2}×", t.as_secs_f64() / r.bound.as_secs_f64()),
            ),
            None => (
                format!(
                    "**not within {}** ({}/{} Ready)",
                    secs(r.converge_timeout),
                    count(r.ready_count),
                    count(r.n)
                ),
                "n/a".into(),
            ),
        };
        let limit = r.n.div_ceil(PAGE) + r.bindings.list_pages(r.n, PAGE) + 5;
        let (steady, met) = match (&r.steady_calls, &r.steady_role_binding_calls) {
            (Some(s), Some(b)) => {
                let k = f64::from(r.windows.max(1));
                let total = s.total as f64 / k;
                let invitation_lists = s.list as f64 / k;
                let binding_lists = b.list as f64 / k;
                (
                    format!(
                        "{invitation_lists:.1} / {binding_lists:.1} / {:.1} ({total:.1})",
                        total - invitation_lists - binding_lists
                    ),
                    yes_no(total <= limit as f64).to_owned(),
                )
            }
            _ => ("not measured".into(), "n/a".into()),
        };
        let held = r.binding_check.map_or("not checked".into(), |b| {
            format!(
                "{} / {}, {} missing, {} duplicates",
                count(b.bound_once),
                count(b.expected),
                count(b.missing),
                count(b.duplicates)
            )
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} over {} | {ready} | {} | {ratio} | {} / {}, {} / {} / {} ({}) | {steady} | {} | {met} | {held} |",
            count(r.n),
            r.kind.label(),
            r.bindings.per_invitation,
            r.bindings.scopes,
            secs(r.bound),
            count(c.list),
            count(c.create),
            count(rb.list),
            count(rb.create),
            count(rb.get + rb.delete),
            count(c.total),
            count(limit)
        );
    }
}

/// The mock halves its limit mid-run: the 429s and the time the next Invitations take.
pub fn render_halving(out: &mut String, rows: &[Row]) {
    if rows.iter().all(|r| r.halving.is_none()) {
        return;
    }
    let _ = writeln!(out, "\n## The server halves its limit\n");
    let with_bindings = rows.iter().any(|r| r.bindings.any());
    let _ = writeln!(
        out,
        "After the steady state, the mock halves its rate limit and burst (as a shared \
         organization budget or a change on Confluent's side would), then more Invitations are \
         created. Calls are counted from the halving until all are Ready; the bound is \
         (extra creates + ⌈extra/100⌉{}) / the new rate.{}\n",
        if with_bindings {
            " + extra·K binding creates + the binding list pages"
        } else {
            ""
        },
        if with_bindings {
            " With role bindings, the calls' total counts the role-binding calls too."
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "| N | operator rate flags | new limit | more Invitations | all Ready after | bound | Confluent calls (create / list / get) | 429s |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---|---:|");
    for r in rows {
        let Some(h) = &r.halving else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {} req/s | {} | {} | {} | {} ({} / {} / {}) | {} of {} ({:.2}%) |",
            count(r.n),
            r.kind.label(),
            rate_str(h.rate),
            count(h.extra),
            h.ready_after
                .map_or(format!("**not within {}**", secs(h.timeout)), secs),
            secs(bound_with_bindings(h.extra, h.rate, r.bindings)),
            count(h.calls.total),
            count(h.calls.create),
            count(h.calls.list),
            count(h.calls.get),
            count(h.calls.rate_limited),
            count(h.calls.total),
            pct(h.calls.rate_limited, h.calls.total)
        );
    }
}

/// Our default-flags run next to the peers' strategy at the same size, as ratios.
pub fn render_peers(out: &mut String, opts: &Opts, rows: &[Row], peers: &[PeerRow]) {
    if peers.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Against the peers\n");
    let _ = writeln!(
        out,
        "Terraform's `confluent_invitation` (Pulumi runs the same provider code) and the \
         community Crossplane provider (Terraform's code inside) create with a blind POST and \
         observe with one GET per resource per refresh/poll; their HTTP client retries a 429 \
         after `Retry-After`. This benchmark runs that strategy itself against a fresh mock with \
         the same latency and limit ({} calls in flight, Terraform's default parallelism): every \
         POST until all are answered 2xx (**sent after**), then one poll of a GET per resource \
         (**calls per resync**: what each refresh or poll interval costs). Ours is the \
         default-flags run: all Ready after, and its measured steady calls per resync. Ratios \
         are ours ÷ theirs (below 1: ours is faster or cheaper).\n",
        opts.peer_parallelism
    );
    let _ = writeln!(
        out,
        "| N | strategy | all sent after (ratio to bound) | calls to converge | 429s to converge | calls per resync | 429s per resync | duplicates |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for p in peers {
        let bound = physical_bound(p.n, p.rate);
        let ours = rows
            .iter()
            .find(|r| r.n == p.n && r.kind == RunKind::Default);
        if let Some(r) = ours {
            let c = &r.converge_calls;
            let _ = writeln!(
                out,
                "| {} | this operator, default flags | {} | {} | {} ({:.2}%) | {} | {} | {} |",
                count(r.n),
                r.ready_after.map_or("not all Ready".into(), |t| format!(
                    "{} ({:.2}×)",
                    secs(t),
                    t.as_secs_f64() / r.bound.as_secs_f64()
                )),
                count(c.total),
                count(c.rate_limited),
                pct(c.rate_limited, c.total),
                per_window(&r.steady_calls, r.windows)
                    .map_or("not measured".into(), |w| format!("{w:.1}")),
                r.steady_calls.as_ref().map_or("n/a".into(), |s| format!(
                    "{:.1}",
                    s.rate_limited as f64 / f64::from(r.windows.max(1))
                )),
                count(r.duplicates)
            );
        }
        let _ = writeln!(
            out,
            "| {} | peers: blind POST + GET per resource | {} ({:.2}×) | {} | {} ({:.2}%) | {} | {} | {} |",
            count(p.n),
            secs(p.sent_after),
            p.sent_after.as_secs_f64() / bound.as_secs_f64(),
            count(p.create_calls.total),
            count(p.create_calls.rate_limited),
            pct(p.create_calls.rate_limited, p.create_calls.total),
            count(p.poll_calls.total),
            count(p.poll_calls.rate_limited),
            count(p.duplicates + p.missing)
        );
        if let Some(r) = ours {
            let time = r.ready_after.map_or("n/a".into(), |t| {
                format!(
                    "{:.2}",
                    t.as_secs_f64() / p.sent_after.as_secs_f64().max(1e-9)
                )
            });
            let resync = per_window(&r.steady_calls, r.windows).map_or("n/a".into(), |w| {
                format!("{:.3}", w / (p.poll_calls.total.max(1) as f64))
            });
            let share = |part: u64, whole: u64| pct(part, whole);
            let _ = writeln!(
                out,
                "| {} | **ours ÷ peers** | time {time} | calls {:.2} | 429 share {:.2}% vs {:.2}% | calls per resync {resync} | one poll of theirs took {} | |",
                count(p.n),
                r.converge_calls.total as f64 / p.create_calls.total.max(1) as f64,
                share(r.converge_calls.rate_limited, r.converge_calls.total),
                share(p.create_calls.rate_limited, p.create_calls.total),
                secs(p.poll_took)
            );
        }
    }
}
