//! Role bindings (`/iam/v2/role-bindings`): how an invited person gets access. The wire types
//! and the calls, through the same [`Client`] as invitations: the same credential, limiter and
//! retry rules (list, GET and DELETE retried; a POST never, as the API has no idempotency key).
//!
//! What the real service does beyond `openapi/iam-v2-role-bindings.openapi.yaml` (see
//! `openapi/README.md`): a missing binding answers `403` with `{"error_code": 40301, ...}`, read
//! here as [`Error::NotFound`]; CRNs may come back percent-encoded (`%3A` for `:`), so they are
//! compared after decoding ([`same_crn`]); `crn_pattern` is a required filter of the list.

use std::borrow::Cow;

use futures::{Stream, TryStreamExt};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::client::{Client, ListPage, Operation, PAGE_SIZE, decode, path_segment};
use super::error::Error;
use super::model::{ListMeta, ObjectMeta, sparse_object};

/// What every absolute CRN starts with.
pub const CRN_PREFIX: &str = "crn://confluent.cloud/";

/// The `error_code` of the 403 a missing binding answers ("Either unauthorized to access role
/// binding or role binding does not exist").
pub const MISSING_BINDING_CODE: &str = "40301";

/// The `principal` of a user: `User:<user id>`.
pub fn user_principal(user_id: &str) -> String {
    format!("User:{user_id}")
}

sparse_object! {
    /// `iam.v2.RoleBinding` as the server returns it (every field optional, unknown ones ignored).
    pub struct RemoteRoleBinding {
        pub api_version: Option<String>,
        pub kind: Option<String>,
        /// `rb-…`.
        pub id: Option<String>,
        pub metadata: Option<ObjectMeta>,
        /// `User:u-…` or `Group:…`.
        pub principal: Option<String>,
        pub role_name: Option<String>,
        /// The absolute CRN pattern of the scope or resources bound.
        pub crn_pattern: Option<String>,
    }
}

impl RemoteRoleBinding {
    /// Whether this binding grants exactly `role_name` on `crn_pattern` to `principal` (the CRN
    /// compared after percent-decoding).
    pub fn grants(&self, principal: &str, role_name: &str, crn_pattern: &str) -> bool {
        self.principal.as_deref() == Some(principal)
            && self.role_name.as_deref() == Some(role_name)
            && self
                .crn_pattern
                .as_deref()
                .is_some_and(|c| same_crn(c, crn_pattern))
    }

    /// Whether this binding is the one `request` would create.
    pub fn is(&self, request: &CreateRoleBinding) -> bool {
        self.grants(&request.principal, &request.role_name, &request.crn_pattern)
    }
}

/// `iam.v2.RoleBindingList`: one page of a list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteRoleBindingList {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub metadata: ListMeta,
    pub data: Vec<RemoteRoleBinding>,
}

impl ListPage for RemoteRoleBindingList {
    type Item = RemoteRoleBinding;
    fn into_parts(self) -> (Vec<RemoteRoleBinding>, Option<String>) {
        (self.data, self.metadata.next)
    }
}

/// Body of `POST /iam/v2/role-bindings` (all three required).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CreateRoleBinding {
    pub principal: String,
    pub role_name: String,
    /// Absolute: `crn://confluent.cloud/organization=…/…`.
    pub crn_pattern: String,
}

/// Filters of `GET /iam/v2/role-bindings`. `crn_pattern` is required by the API: without a
/// trailing `/*` it matches that scope only, with it that scope and every scope beneath.
/// `principal` and `role_name` are exact matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleBindingFilter {
    pub crn_pattern: String,
    pub principal: Option<String>,
    pub role_name: Option<String>,
}

impl RoleBindingFilter {
    /// Every binding at exactly this scope.
    pub fn scope(crn_pattern: impl Into<String>) -> Self {
        Self {
            crn_pattern: crn_pattern.into(),
            principal: None,
            role_name: None,
        }
    }

    /// Every binding at this scope and beneath it (`<scope>/*`).
    pub fn nested(crn_pattern: &str) -> Self {
        Self::scope(format!("{}/*", crn_pattern.trim_end_matches("/*")))
    }

    /// The narrowest list that finds the binding `request` would create.
    pub fn exact(request: &CreateRoleBinding) -> Self {
        Self {
            crn_pattern: request.crn_pattern.clone(),
            principal: Some(request.principal.clone()),
            role_name: Some(request.role_name.clone()),
        }
    }
}

/// `crn` with its percent-escapes decoded (`crn%3A//…` → `crn://…`). An escape that is not two
/// hex digits, or decodes to invalid UTF-8, is kept as written.
pub fn decoded_crn(crn: &str) -> Cow<'_, str> {
    if !crn.contains('%') {
        return Cow::Borrowed(crn);
    }
    let bytes = crn.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(crn),
    }
}

/// The organization id in a CRN (`crn://confluent.cloud/organization=<id>/...`).
pub fn organization_of(crn: &str) -> Option<&str> {
    crn.split('/')
        .find_map(|part| part.strip_prefix("organization="))
        .filter(|id| !id.is_empty())
}

/// Whether two CRN patterns name the same thing, after percent-decoding both.
pub fn same_crn(a: &str, b: &str) -> bool {
    a == b || decoded_crn(a) == decoded_crn(b)
}

/// Whether an error says the binding does not exist: a 404, or the 403 of a missing binding
/// (`error_code 40301`). A 403 that names the API key is [`Error::Unauthenticated`], never this.
fn missing_binding_is_not_found(e: Error) -> Error {
    match e {
        Error::Forbidden(r) if r.code.as_deref() == Some(MISSING_BINDING_CODE) => {
            Error::NotFound(r)
        }
        other => other,
    }
}

impl Client {
    /// Lists every role binding matching `filter`, following `next` to the end.
    pub async fn list_role_bindings(
        &self,
        filter: &RoleBindingFilter,
    ) -> Result<Vec<RemoteRoleBinding>, Error> {
        let mut all = Vec::new();
        let mut pages = std::pin::pin!(self.role_binding_pages(filter));
        while let Some(page) = pages.try_next().await? {
            all.extend(page);
        }
        Ok(all)
    }

    /// The same list, one page at a time.
    pub fn role_binding_pages(
        &self,
        filter: &RoleBindingFilter,
    ) -> impl Stream<Item = Result<Vec<RemoteRoleBinding>, Error>> + Send + 'static {
        self.pages::<RemoteRoleBindingList>(
            Operation::ListRoleBindings,
            self.role_bindings_url(filter),
        )
    }

    fn role_bindings_url(&self, filter: &RoleBindingFilter) -> Result<Url, Error> {
        let mut url = self.url("/iam/v2/role-bindings")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("crn_pattern", &filter.crn_pattern);
            for (name, value) in [
                ("principal", &filter.principal),
                ("role_name", &filter.role_name),
            ] {
                if let Some(v) = value {
                    q.append_pair(name, v);
                }
            }
            q.append_pair("page_size", &PAGE_SIZE.to_string());
        }
        Ok(url)
    }

    /// The existing binding `request` would create, if any: a list with the exact scope,
    /// principal and role, compared after percent-decoding. The safe create is this, then
    /// [`Client::create_role_binding`] only when it finds nothing, and this again on a 409.
    pub async fn find_role_binding(
        &self,
        request: &CreateRoleBinding,
    ) -> Result<Option<RemoteRoleBinding>, Error> {
        let found = self
            .list_role_bindings(&RoleBindingFilter::exact(request))
            .await?;
        Ok(found.into_iter().find(|b| b.is(request)))
    }

    /// Creates a role binding. Never retried: after a lost response, find it before creating
    /// again; a duplicate answers [`Error::AlreadyExists`]; a role that does not take this scope
    /// answers [`Error::Invalid`] with Confluent's detail.
    pub async fn create_role_binding(
        &self,
        request: &CreateRoleBinding,
    ) -> Result<RemoteRoleBinding, Error> {
        let op = Operation::CreateRoleBinding;
        let url = self.url("/iam/v2/role-bindings")?;
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::Config(format!("encoding the role binding request: {e}")))?;
        let reply = self.send(op, Method::POST, &url, Some(body)).await?;
        decode(op, &reply)
    }

    /// Reads one role binding. A 404, or the 403 with `error_code 40301` (the real service's
    /// answer for a missing binding), is [`Error::NotFound`]. Any other 403 stays
    /// [`Error::Forbidden`]: a caller that forgets a binding it reads as gone must not forget
    /// one it merely may not see.
    pub async fn get_role_binding(&self, id: &str) -> Result<RemoteRoleBinding, Error> {
        let op = Operation::GetRoleBinding;
        let url = self.url(&format!("/iam/v2/role-bindings/{}", path_segment(id)?))?;
        let reply = self
            .idempotent(op, Method::GET, &url)
            .await
            .map_err(missing_binding_is_not_found)?;
        decode(op, &reply)
    }

    /// Deletes one role binding (any 2xx is success). Gone already: [`Error::NotFound`] (a 404,
    /// or the 403 with `error_code 40301`). Any other 403 stays [`Error::Forbidden`]: reading it
    /// as gone could leave a binding behind.
    pub async fn delete_role_binding(&self, id: &str) -> Result<(), Error> {
        let op = Operation::DeleteRoleBinding;
        let url = self.url(&format!("/iam/v2/role-bindings/{}", path_segment(id)?))?;
        self.idempotent(op, Method::DELETE, &url)
            .await
            .map(drop)
            .map_err(missing_binding_is_not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerRefusal;

    #[test]
    fn parses_a_real_binding_leniently() {
        let body = r#"{"api_version": "iam/v2", "kind": "RoleBinding", "id": "rb-1a2b3",
            "metadata": {"self": "https://api.confluent.cloud/iam/v2/role-bindings/rb-1a2b3",
                         "resource_name": "crn://confluent.cloud/organization=o/role-binding=rb-1a2b3",
                         "something": true},
            "principal": "User:u-abc12", "role_name": "DeveloperRead",
            "crn_pattern": "crn%3A//confluent.cloud/organization=o/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
            "new_field": [1]}"#;
        let b: RemoteRoleBinding = serde_json::from_str(body).unwrap();
        assert_eq!(b.id.as_deref(), Some("rb-1a2b3"));
        assert!(b.grants(
            "User:u-abc12",
            "DeveloperRead",
            "crn://confluent.cloud/organization=o/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders"
        ));
        assert!(!b.grants("User:u-abc12", "DeveloperWrite", "crn://x"));
        let empty: RemoteRoleBindingList = serde_json::from_str(r#"{"data": []}"#).unwrap();
        assert!(empty.data.is_empty());
        assert_eq!(
            serde_json::from_str::<RemoteRoleBinding>("{}").unwrap(),
            RemoteRoleBinding::default()
        );
    }

    #[test]
    fn crns_compare_after_percent_decoding_both_sides() {
        let plain = "crn://confluent.cloud/organization=o/environment=env-1";
        assert!(same_crn(plain, plain));
        assert!(same_crn(
            "crn%3A%2F%2Fconfluent.cloud/organization=o/environment=env-1",
            plain
        ));
        assert!(same_crn(
            plain,
            "crn%3a//confluent.cloud/organization%3Do/environment=env-1"
        ));
        assert!(!same_crn(
            plain,
            "crn://confluent.cloud/organization=o/environment=env-2"
        ));
        // broken escapes are kept, never panic
        assert_eq!(decoded_crn("a%zz%4"), "a%zz%4");
        assert_eq!(decoded_crn("%ff%fe"), "%ff%fe");
        assert_eq!(decoded_crn("%"), "%");
        assert_eq!(decoded_crn("topic=%C3%A9t%C3%A9"), "topic=été");
    }

    #[test]
    fn filters() {
        let req = CreateRoleBinding {
            principal: user_principal("u-1"),
            role_name: "EnvironmentAdmin".into(),
            crn_pattern: "crn://confluent.cloud/organization=o/environment=env-1".into(),
        };
        let f = RoleBindingFilter::exact(&req);
        assert_eq!(f.principal.as_deref(), Some("User:u-1"));
        assert_eq!(f.role_name.as_deref(), Some("EnvironmentAdmin"));
        assert_eq!(
            RoleBindingFilter::nested("crn://confluent.cloud/organization=o").crn_pattern,
            "crn://confluent.cloud/organization=o/*"
        );
        assert_eq!(
            RoleBindingFilter::nested("crn://confluent.cloud/organization=o/*").crn_pattern,
            "crn://confluent.cloud/organization=o/*"
        );
    }

    #[test]
    fn only_the_missing_binding_403_reads_as_gone_on_delete() {
        let missing = Error::Forbidden(ServerRefusal {
            status: 403,
            code: Some(MISSING_BINDING_CODE.into()),
            ..ServerRefusal::default()
        });
        assert!(matches!(
            missing_binding_is_not_found(missing),
            Error::NotFound(_)
        ));
        let denied = Error::Forbidden(ServerRefusal {
            status: 403,
            code: Some("user_unauthorized".into()),
            ..ServerRefusal::default()
        });
        assert!(matches!(
            missing_binding_is_not_found(denied),
            Error::Forbidden(_)
        ));
    }

    #[test]
    fn organization_is_read_from_a_crn() {
        assert_eq!(
            organization_of("crn://confluent.cloud/organization=o-1/invitation=i-1"),
            Some("o-1")
        );
        assert_eq!(
            organization_of("crn://confluent.cloud/invitation=i-1"),
            None
        );
        assert_eq!(
            organization_of("crn://confluent.cloud/organization=/x"),
            None
        );
        assert_eq!(organization_of(""), None);
    }
}
