//! The organization's role bindings, as pure logic: the rules of `/iam/v2/role-bindings` the real
//! service enforces (`src/confluent/openapi/README.md`, role-bindings section), unit-tested
//! without a socket. The HTTP side is [`super::role_binding_api`].
//!
//! Modelled, where the contract is silent (the mock's own choices):
//! - A missing binding answers `403` with `{"error_code": 40301, "message": …}` to GET, as
//!   reported, **and to DELETE** (the same service and path; a second DELETE of one binding
//!   answers it too).
//! - `principal` must be `User:<id>` of a user of the organization: an invitee from the
//!   invitation's creation on, or a member. Anything else (`User:i-…`, an unknown user, a
//!   `Group:`) answers `403 user_unauthorized`, as `User:i-…` was reported to.
//! - A `crn_pattern` outside the caller's organization answers `403 user_unauthorized`.
//! - The scope of a pattern is its last `key=value` segment: `organization`, `environment`, a
//!   cluster (`cloud-cluster`, `kafka`, `schema-registry`, `ksql`) or a resource (`topic`,
//!   `group`, `transactional-id`, `subject`, `connector`). A role bound at a scope it does not
//!   take, an unknown role or an unknown segment answers `400 invalid_configuration`.
//! - A duplicate (same principal, role and pattern after percent-decoding) answers `409
//!   resource_already_exists` with the existing binding's URL in `Location`.
//! - Patterns are stored percent-decoded; the list filter is compared decoded too.
//! - Deleting a user removes their bindings; deleting or expiring an invitation does not.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::clock::whole_seconds;
use super::error::MockError;
use super::ids::Ids;
use super::pagination::{self, Page};
use confluent_client::role_bindings::{CRN_PREFIX, CreateRoleBinding, decoded_crn};

/// How many `/iam/v2/role-bindings` requests the mock saw, per operation, whatever their
/// outcome (the other counters, `total` included, are in [`super::CallCounts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBindingCalls {
    /// `GET /iam/v2/role-bindings`.
    pub list: u64,
    /// `POST /iam/v2/role-bindings`.
    pub create: u64,
    /// `GET /iam/v2/role-bindings/{id}`.
    pub get: u64,
    /// `DELETE /iam/v2/role-bindings/{id}`.
    pub delete: u64,
}

/// The scope a CRN pattern binds at, which decides the roles it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Organization,
    Environment,
    Cluster,
    /// A resource inside a cluster: topic, group, transactional id, subject, connector.
    Resource,
}

impl Scope {
    /// The roles that bind at this scope (README, role-bindings section).
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            Self::Organization => &[
                "OrganizationAdmin",
                "AccountAdmin",
                "BillingAdmin",
                "NetworkAdmin",
                "MetricsViewer",
            ],
            Self::Environment => &[
                "EnvironmentAdmin",
                "DataSteward",
                "DataDiscovery",
                "FlinkAdmin",
                "FlinkDeveloper",
                "MetricsViewer",
            ],
            Self::Cluster => &["CloudClusterAdmin", "Operator"],
            Self::Resource => &[
                "DeveloperRead",
                "DeveloperWrite",
                "DeveloperManage",
                "ResourceOwner",
            ],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::Environment => "environment",
            Self::Cluster => "cluster",
            Self::Resource => "resource",
        }
    }

    fn of_key(key: &str) -> Option<Self> {
        match key {
            "organization" => Some(Self::Organization),
            "environment" => Some(Self::Environment),
            "cloud-cluster" | "kafka" | "schema-registry" | "ksql" => Some(Self::Cluster),
            "topic" | "group" | "transactional-id" | "subject" | "connector" => {
                Some(Self::Resource)
            }
            _ => None,
        }
    }
}

/// Every role some scope takes.
fn known_role(role: &str) -> bool {
    [
        Scope::Organization,
        Scope::Environment,
        Scope::Cluster,
        Scope::Resource,
    ]
    .iter()
    .any(|s| s.roles().contains(&role))
}

/// Why a role-binding request is refused; each maps to one HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum RoleBindingError {
    /// A malformed request: 400 (`invalid_filter` or `invalid_configuration`).
    #[error(transparent)]
    Request(#[from] MockError),
    /// No such binding: 403 with the `error_code 40301` body, as the real service answers.
    #[error("Either unauthorized to access role binding or role binding does not exist")]
    Missing {
        /// The id asked for.
        id: String,
    },
    /// The principal or scope is not the caller's to bind: 403 `user_unauthorized`.
    #[error("{detail}")]
    Forbidden {
        /// What is not allowed.
        detail: String,
    },
    /// The organization holds as many bindings as its quota allows: 402 `quota_exceeded`.
    #[error("The organization has reached its quota of {quota} role bindings")]
    QuotaExceeded {
        /// The quota.
        quota: usize,
    },
    /// The same binding exists: 409 `resource_already_exists`.
    #[error("The role binding '{existing}' already exists")]
    Duplicate {
        /// The existing binding's id.
        existing: String,
    },
}

/// The role bindings an organization may hold, as Confluent documents it (1 000; whether that
/// still holds is unverified).
pub const QUOTA: usize = 1000;

/// One binding as the organization stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleBindingRecord {
    /// Creation order; the list sort key and page cursor.
    pub seq: u64,
    /// `rb-` + 5 lowercase alphanumerics.
    pub id: String,
    pub principal: String,
    pub role_name: String,
    /// Percent-decoded.
    pub crn_pattern: String,
    pub created_at: Timestamp,
}

/// Filters and paging of a list, split from the query string.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleBindingQuery {
    /// Required by the API: the scope (`…/*`: and everything beneath).
    pub crn_pattern: Option<String>,
    /// Exact match.
    pub principal: Option<String>,
    /// Exact match.
    pub role_name: Option<String>,
    /// Honoured only without a page token.
    pub page_size: Option<u32>,
    /// From a previous page's `next` link.
    pub page_token: Option<String>,
}

/// The bindings of one organization, in creation order.
#[derive(Debug)]
pub struct RoleBindings {
    records: BTreeMap<u64, RoleBindingRecord>,
    /// How many bindings the organization may hold ([`QUOTA`] unless a test sets another):
    /// Confluent documents about 1 000 per organization.
    pub(crate) quota: usize,
    /// Ids are never reused, even across [`RoleBindings::reset`].
    ids: Ids,
    next_seq: u64,
}

impl Default for RoleBindings {
    fn default() -> Self {
        Self {
            records: BTreeMap::new(),
            quota: QUOTA,
            ids: Ids::new(),
            next_seq: 1,
        }
    }
}

/// The scope of an absolute CRN pattern of organization `org_id`: checks its shape, and that it
/// stays in the organization.
pub fn scope_of(crn: &str, org_id: &str) -> Result<Scope, RoleBindingError> {
    let invalid =
        |detail: String| RoleBindingError::from(MockError::invalid_body("/crn_pattern", detail));
    let Some(path) = crn.strip_prefix(CRN_PREFIX) else {
        return Err(invalid(format!(
            "The property '/crn_pattern' must start with {CRN_PREFIX}, got '{crn}'"
        )));
    };
    let mut scope = None;
    for (i, segment) in path.split('/').enumerate() {
        let Some((key, value)) = segment
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        else {
            return Err(invalid(format!(
                "The CRN pattern '{crn}' has a malformed segment '{segment}' (expected key=value)"
            )));
        };
        if i == 0 {
            if key != "organization" {
                return Err(invalid(format!(
                    "The CRN pattern '{crn}' must start with organization=<id>"
                )));
            }
            if value != org_id {
                return Err(RoleBindingError::Forbidden {
                    detail: format!(
                        "The CRN pattern '{crn}' is outside your organization '{org_id}'"
                    ),
                });
            }
        }
        scope = Some(Scope::of_key(key).ok_or_else(|| {
            invalid(format!(
                "The CRN pattern '{crn}' has an unknown resource type '{key}'"
            ))
        })?);
    }
    scope.ok_or_else(|| invalid(format!("The CRN pattern '{crn}' names no scope")))
}

/// Whether a stored pattern matches a list's `crn_pattern` filter (both decoded): the same
/// scope, or with a trailing `/*` that scope and every scope beneath it.
pub fn filter_matches(filter: &str, crn: &str) -> bool {
    match filter.strip_suffix("/*") {
        Some(base) => {
            crn == base
                || crn
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        None => crn == filter,
    }
}

impl RoleBindings {
    /// Forgets every binding; ids and sequence numbers keep counting.
    pub fn reset(&mut self) {
        self.records.clear();
    }

    fn find(&self, principal: &str, role_name: &str, crn: &str) -> Option<&RoleBindingRecord> {
        self.records
            .values()
            .find(|r| r.principal == principal && r.role_name == role_name && r.crn_pattern == crn)
    }

    fn insert(
        &mut self,
        principal: &str,
        role_name: &str,
        crn: &str,
        now: Timestamp,
    ) -> RoleBindingRecord {
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = RoleBindingRecord {
            seq,
            id: self.ids.fresh("rb-", 5),
            principal: principal.to_owned(),
            role_name: role_name.to_owned(),
            crn_pattern: crn.to_owned(),
            created_at: whole_seconds(now),
        };
        self.records.insert(seq, record.clone());
        record
    }

    /// `POST /iam/v2/role-bindings` in organization `org_id`. `principal_is_user` says whether
    /// the principal is `User:<id>` of an existing user (the organization knows its users).
    pub fn create(
        &mut self,
        req: &CreateRoleBinding,
        org_id: &str,
        principal_is_user: bool,
        now: Timestamp,
    ) -> Result<RoleBindingRecord, RoleBindingError> {
        let crn = decoded_crn(req.crn_pattern.trim()).into_owned();
        let scope = scope_of(&crn, org_id)?;
        if !known_role(&req.role_name) {
            return Err(MockError::invalid_body(
                "/role_name",
                format!("The role '{}' does not exist", req.role_name),
            )
            .into());
        }
        if !scope.roles().contains(&req.role_name.as_str()) {
            return Err(MockError::invalid_body(
                "/role_name",
                format!(
                    "The role '{}' cannot be bound at the {} scope '{crn}'; roles of that scope: {}",
                    req.role_name,
                    scope.name(),
                    scope.roles().join(", ")
                ),
            )
            .into());
        }
        if !principal_is_user {
            return Err(RoleBindingError::Forbidden {
                detail: format!(
                    "The principal '{}' is not a user of this organization",
                    req.principal
                ),
            });
        }
        if let Some(existing) = self.find(&req.principal, &req.role_name, &crn) {
            return Err(RoleBindingError::Duplicate {
                existing: existing.id.clone(),
            });
        }
        if self.records.len() >= self.quota {
            return Err(RoleBindingError::QuotaExceeded { quota: self.quota });
        }
        Ok(self.insert(&req.principal, &req.role_name, &crn, now))
    }

    /// A test control: a binding as if made out of band, without validation. An identical one
    /// is returned instead, with `false`.
    pub fn seed(&mut self, req: &CreateRoleBinding, now: Timestamp) -> (RoleBindingRecord, bool) {
        let crn = decoded_crn(req.crn_pattern.trim()).into_owned();
        if let Some(existing) = self.find(&req.principal, &req.role_name, &crn) {
            return (existing.clone(), false);
        }
        (self.insert(&req.principal, &req.role_name, &crn, now), true)
    }

    /// `GET /iam/v2/role-bindings/{id}`.
    pub fn get(&self, id: &str) -> Result<RoleBindingRecord, RoleBindingError> {
        self.records
            .values()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| RoleBindingError::Missing { id: id.to_owned() })
    }

    /// `DELETE /iam/v2/role-bindings/{id}`: the deleted binding.
    pub fn delete(&mut self, id: &str) -> Result<RoleBindingRecord, RoleBindingError> {
        let seq = self.get(id)?.seq;
        self.records
            .remove(&seq)
            .ok_or_else(|| RoleBindingError::Missing { id: id.to_owned() })
    }

    /// Removes every binding of `principal` (a deleted user's).
    pub fn remove_principal(&mut self, principal: &str) {
        self.records.retain(|_, r| r.principal != principal);
    }

    /// Every binding, in creation order.
    pub fn all(&self) -> Vec<RoleBindingRecord> {
        self.records.values().cloned().collect()
    }

    /// `GET /iam/v2/role-bindings`: `crn_pattern` required, exact filters, pages.
    pub fn list(&self, q: &RoleBindingQuery) -> Result<Page<RoleBindingRecord>, RoleBindingError> {
        let Some(filter) = q.crn_pattern.as_deref() else {
            return Err(MockError::invalid_query(
                "crn_pattern",
                "The parameter 'crn_pattern' is required",
            )
            .into());
        };
        let filter = decoded_crn(filter.trim());
        let cursor = pagination::start(q.page_token.as_deref(), q.page_size)?;
        Ok(pagination::page(&self.records, cursor, |r| {
            filter_matches(&filter, &r.crn_pattern)
                && q.principal.as_deref().is_none_or(|p| r.principal == p)
                && q.role_name.as_deref().is_none_or(|n| r.role_name == n)
        }))
    }
}

#[cfg(test)]
mod tests;
