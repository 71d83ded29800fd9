//! Prometheus metrics: what an SRE needs to see the operator work and the Confluent API's
//! answers, without ever a credential or an email in a label.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use confluent_client::{Observer, Operation, StsResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    reason: String,
    #[prometheus(flatten)]
    kind: EventKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventKind {
    #[allow(clippy::struct_field_names)]
    r#type: &'static str,
}

/// Every metric the operator exports, registered once at start-up.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    errors: Family<ReasonLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<OperationLabels, Histogram>,
    invitations: Family<PhaseLabels, Gauge>,
    role_bindings: Family<StateLabels, Gauge>,
    events: Family<EventLabels, Counter>,
    leader: Gauge,
    dry_run: Family<ActionLabels, Counter>,
    oldest_deletion: Gauge,
    stale_claims: Gauge,
    claim_takeovers: Counter,
    sts_exchanges: Family<ResultLabels, Counter>,
    sts_token_remaining: Gauge,
    /// When each keyless credential's current token expires, by identity (never a label: the
    /// gauge is their least remaining life).
    sts_expiries: parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the metrics under the `confluent_invitation_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("confluent_invitation_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by result (ok, error)",
            reconciles.clone(),
        );
        let reconcile_duration = latency_histogram();
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, Confluent calls included",
            reconcile_duration.clone(),
        );
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error or refusal, by condition reason",
            errors.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "confluent_requests",
            "Confluent API calls by operation and HTTP status code (\"none\" when no response arrived)",
            requests.clone(),
        );
        let request_duration = Family::<OperationLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "confluent_request_duration_seconds",
            "Latency of Confluent API calls by operation",
            request_duration.clone(),
        );
        let invitations = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "invitations",
            "Invitation resources by status.phase, as last reconciled",
            invitations.clone(),
        );
        let role_bindings = Family::<StateLabels, Gauge>::default();
        registry.register(
            "role_bindings",
            "Role bindings listed in Invitations' spec.roleBindings, by status state (Bound, Pending, Refused), as last reconciled",
            role_bindings.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Kubernetes Events published, by reason and type",
            events.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica reconciles (it holds the leader-election Lease, or runs without election), 0 otherwise",
            leader.clone(),
        );
        let dry_run = Family::<ActionLabels, Counter>::default();
        registry.register(
            "dry_run_actions",
            "Writes held by --dry-run, by the action that would have run (WouldCreate, WouldAdopt, ...)",
            dry_run.clone(),
        );
        let oldest_deletion = Gauge::default();
        registry.register(
            "oldest_deletion_seconds",
            "Age of the oldest Invitation waiting for its finalizer (deleted, not yet released); 0 when none",
            oldest_deletion.clone(),
        );
        let stale_claims = Gauge::default();
        registry.register(
            "email_claims_stale",
            "Email claims (Leases in --claims-namespace) whose holder's installation stopped renewing its heartbeat: claimants of those emails wait (EmailConflict) unless --claims-takeover-after is set",
            stale_claims.clone(),
        );
        let claim_takeovers = Counter::default();
        registry.register(
            "email_claim_takeovers",
            "Email claims taken over from a holder that was gone or stale for longer than --claims-takeover-after",
            claim_takeovers.clone(),
        );
        let sts_exchanges = Family::<ResultLabels, Counter>::default();
        registry.register(
            "sts_exchanges",
            "STS token exchanges of keyless credentials, by result (issued, refused, rate_limited, failed)",
            sts_exchanges.clone(),
        );
        let sts_token_remaining = Gauge::default();
        registry.register(
            "sts_token_remaining_seconds",
            "The least time, in seconds, that the current STS token of any keyless credential has left, as of its last use or exchange (credentials unused for 15 minutes drop out)",
            sts_token_remaining.clone(),
        );
        Self {
            sts_exchanges,
            sts_token_remaining,
            sts_expiries: parking_lot::Mutex::new(std::collections::HashMap::new()),
            stale_claims,
            claim_takeovers,
            oldest_deletion,
            dry_run,
            leader,
            registry,
            reconciles,
            reconcile_duration,
            errors,
            requests,
            request_duration,
            invitations,
            role_bindings,
            events,
        }
    }

    /// Counts one reconcile.
    pub fn reconciled(&self, ok: bool, elapsed: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts an error or refusal by its reason.
    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a write held by preview mode.
    pub fn dry_run(&self, action: &str) {
        self.dry_run
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .inc();
    }

    /// Counts a published Event.
    pub fn event(&self, reason: &str, warning: bool) {
        let kind = EventKind {
            r#type: if warning { "Warning" } else { "Normal" },
        };
        self.events
            .get_or_create(&EventLabels {
                reason: reason.to_owned(),
                kind,
            })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Records the age of the oldest pending deletion, in whole seconds.
    pub fn set_oldest_deletion(&self, seconds: i64) {
        self.oldest_deletion.set(seconds.max(0));
    }

    /// Records how many email claims have a stale holder.
    pub fn set_stale_claims(&self, count: usize) {
        self.stale_claims
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts an email claim taken over.
    pub fn claim_taken_over(&self) {
        self.claim_takeovers.inc();
    }

    /// Replaces the per-phase gauge with fresh counts.
    pub fn set_phases<'a>(&self, phases: impl IntoIterator<Item = (&'a str, i64)>) {
        self.invitations.clear();
        for (phase, n) in phases {
            self.invitations
                .get_or_create(&PhaseLabels {
                    phase: phase.to_owned(),
                })
                .set(n);
        }
    }

    /// Replaces the per-state gauge of role bindings with fresh counts.
    pub fn set_role_binding_states<'a>(&self, states: impl IntoIterator<Item = (&'a str, i64)>) {
        self.role_bindings.clear();
        for (state, n) in states {
            self.role_bindings
                .get_or_create(&StateLabels {
                    state: state.to_owned(),
                })
                .set(n);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Observer for Metrics {
    fn on_response(&self, operation: Operation, status: Option<u16>, elapsed: Duration) {
        let code = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.as_str(),
                code,
            })
            .inc();
        self.request_duration
            .get_or_create(&OperationLabels {
                operation: operation.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn on_sts_exchange(&self, result: StsResult) {
        self.sts_exchanges
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    fn on_sts_token(&self, identity: &str, remaining: Duration) {
        let now = std::time::Instant::now();
        let mut expiries = self.sts_expiries.lock();
        expiries.insert(identity.to_owned(), now + remaining);
        // A credential no resource used since its token expired 15 minutes ago is not one whose
        // renewal fails: it is gone (a deleted Secret), and must not pin the gauge at 0.
        expiries.retain(|_, at| *at + confluent_client::sts::MAX_LIFETIME > now);
        let least = expiries
            .values()
            .map(|at| at.saturating_duration_since(now))
            .min()
            .unwrap_or_default();
        self.sts_token_remaining
            .set(i64::try_from(least.as_secs()).unwrap_or(i64::MAX));
    }
}

/// Lets an `Arc<Metrics>` be handed to the Confluent clients as their observer.
pub fn observer(metrics: &Arc<Metrics>) -> Arc<dyn Observer> {
    metrics.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_every_family_with_labels() {
        let m = Metrics::new();
        m.reconciled(true, Duration::from_millis(3));
        m.error("QuotaExceeded");
        m.event("Created", false);
        m.on_response(
            Operation::CreateInvitation,
            Some(201),
            Duration::from_millis(40),
        );
        m.on_response(Operation::GetInvitation, None, Duration::from_millis(40));
        m.on_sts_exchange(StsResult::Issued);
        m.on_sts_exchange(StsResult::Refused);
        m.on_sts_token("sts:pool-1:/var/run/token", Duration::from_secs(420));
        m.on_sts_token("sts:pool-2:serviceaccount:ns/bot", Duration::from_secs(42));
        m.on_sts_token("sts:pool-1:/var/run/token", Duration::from_secs(400));
        m.set_phases([("Sent", 2), ("Accepted", 1)]);
        m.set_role_binding_states([("Bound", 4), ("Refused", 1)]);
        let text = m.encode().unwrap();
        for want in [
            "confluent_invitation_operator_reconciles_total{result=\"ok\"} 1",
            "confluent_invitation_operator_reconcile_errors_total{reason=\"QuotaExceeded\"} 1",
            "confluent_invitation_operator_confluent_requests_total{operation=\"create_invitation\",code=\"201\"} 1",
            "confluent_invitation_operator_confluent_requests_total{operation=\"get_invitation\",code=\"none\"} 1",
            "confluent_invitation_operator_invitations{phase=\"Sent\"} 2",
            "confluent_invitation_operator_role_bindings{state=\"Refused\"} 1",
            "confluent_invitation_operator_events_total{reason=\"Created\",type=\"Normal\"} 1",
            "confluent_invitation_operator_reconcile_duration_seconds_count 1",
            "confluent_invitation_operator_confluent_request_duration_seconds_bucket",
            "confluent_invitation_operator_sts_exchanges_total{result=\"issued\"} 1",
            "confluent_invitation_operator_sts_exchanges_total{result=\"refused\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        // the least remaining life of the two keyless credentials, unlabelled
        let least = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("confluent_invitation_operator_sts_token_remaining_seconds ")
            })
            .expect("the gauge");
        assert!(matches!(least, "41" | "42"), "{least}");
    }
}
