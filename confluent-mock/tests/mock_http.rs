//! The Confluent mock over real HTTP: starts it on 127.0.0.1:0 and talks to it with reqwest, as
//! the operator's client will. Every API response is also checked against the response schema
//! the OpenAPI file declares for that operation and status.

use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use confluent_client::model::{Failure, InvitationList, RemoteInvitation, User};
use confluent_client::role_bindings::{
    CreateRoleBinding, RemoteRoleBinding, RemoteRoleBindingList,
};
use confluent_mock::{
    CallCounts, Fault, FaultAction, MockConfig, MockServer, OtherOrganization, RateLimit,
    RoleBindingCalls,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "mock-key";
const SECRET: &str = "mock-secret";
const TOKEN: &str = "sts-token-1";
const ORG: &str = "9bb441c4-edef-46ac-8a41-c49e44a3fd9a";

// ---------------------------------------------------------------------------------------------
// The OpenAPI file and a small schema checker
// ---------------------------------------------------------------------------------------------

fn load(file: &str) -> Value {
    let path = format!(
        "{}/../confluent-client/openapi/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap()
}

/// The invitations file (also users).
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("iam-v2-invitations.openapi.yaml"))
}

/// The role-bindings file.
fn role_binding_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("iam-v2-role-bindings.openapi.yaml"))
}

/// The STS file.
fn sts_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("sts-v1-oauth.openapi.yaml"))
}

/// The file that declares a request path.
fn spec_of(path: &str) -> &'static Value {
    if path.starts_with("/sts/v1/") {
        sts_spec()
    } else if path.starts_with("/iam/v2/role-bindings") {
        role_binding_spec()
    } else {
        spec()
    }
}

/// `v`, or the schema its `$ref` names in `root`'s components.
fn deref<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            let target = &root["components"]["schemas"][name];
            assert!(!target.is_null(), "dangling $ref {r}");
            deref(root, target)
        }
        None => v,
    }
}

/// A schema as the list of its parts: itself, its `$ref` target and its `allOf` members.
fn flatten<'a>(root: &'a Value, v: &'a Value, out: &mut Vec<&'a Value>) {
    let v = deref(root, v);
    out.push(v);
    if let Some(all) = v.get("allOf").and_then(Value::as_array) {
        for part in all {
            flatten(root, part, out);
        }
    }
}

/// Extra properties real responses carry beyond the schema, per the README: `api_version` and
/// `kind` inside `user` and `creator` references.
fn documented_extra(path: &str, key: &str) -> bool {
    (path.ends_with("/user") || path.ends_with("/creator")) && matches!(key, "api_version" | "kind")
}

/// Checks `value` against a schema: every emitted property is declared, required ones are
/// present, and enumerated strings take a listed value.
fn check(root: &Value, schema: &[&Value], value: &Value, path: &str, errors: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            let mut declared = BTreeSet::new();
            for part in schema {
                if let Some(props) = part.get("properties").and_then(Value::as_object) {
                    declared.extend(props.keys().cloned());
                }
                if let Some(req) = part.get("required").and_then(Value::as_array) {
                    for r in req.iter().filter_map(Value::as_str) {
                        if !obj.contains_key(r) {
                            errors.push(format!("{path}: required property '{r}' missing"));
                        }
                    }
                }
            }
            for (key, child) in obj {
                if !declared.contains(key) {
                    if !documented_extra(path, key) {
                        errors.push(format!("{path}: property '{key}' is not in the schema"));
                    }
                    continue;
                }
                let mut sub = Vec::new();
                for part in schema {
                    if let Some(p) = part.get("properties").and_then(|p| p.get(key)) {
                        flatten(root, p, &mut sub);
                    }
                }
                check(root, &sub, child, &format!("{path}/{key}"), errors);
            }
        }
        Value::Array(items) => {
            let mut sub = Vec::new();
            for part in schema {
                if let Some(i) = part.get("items") {
                    flatten(root, i, &mut sub);
                }
            }
            for (i, item) in items.iter().enumerate() {
                check(root, &sub, item, &format!("{path}/{i}"), errors);
            }
        }
        Value::String(s) => {
            for part in schema {
                for key in ["enum", "x-extensible-enum"] {
                    if let Some(list) = part.get(key).and_then(Value::as_array)
                        && !list.iter().any(|v| v.as_str() == Some(s))
                    {
                        errors.push(format!("{path}: '{s}' is not one of {list:?}"));
                    }
                }
            }
        }
        _ => {}
    }
}

/// The OpenAPI path template of a request path.
fn template(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap();
    if path == "/iam/v2/invitations" {
        "/iam/v2/invitations"
    } else if path.starts_with("/iam/v2/invitations/") {
        "/iam/v2/invitations/{id}"
    } else if path.starts_with("/iam/v2/users/") {
        "/iam/v2/users/{id}"
    } else if path == "/sts/v1/oauth2/token" {
        "/sts/v1/oauth2/token"
    } else if path == "/iam/v2/role-bindings" {
        "/iam/v2/role-bindings"
    } else if path.starts_with("/iam/v2/role-bindings/") {
        "/iam/v2/role-bindings/{id}"
    } else {
        panic!("no template for {path}")
    }
}

/// Asserts a response is what the spec declares for the operation and status.
fn conform(method: &Method, path: &str, status: StatusCode, headers: &HeaderMap, body: &Value) {
    assert!(
        headers.get("x-request-id").is_some(),
        "{method} {path}: no X-Request-Id"
    );
    let root = spec_of(path);
    let op = &root["paths"][template(path)][method.as_str().to_ascii_lowercase()];
    assert!(!op.is_null(), "{method} {path}: operation not in the spec");
    let resp = &op["responses"][status.as_str()];
    assert!(
        !resp.is_null(),
        "{method} {path}: status {status} not declared by the spec"
    );
    let schema = &resp["content"]["application/json"]["schema"];
    if schema.is_null() {
        return; // 204, 429: no body schema
    }
    assert_eq!(
        headers["content-type"], "application/json",
        "{method} {path}"
    );
    if missing_binding_body(path, status, body) {
        return;
    }
    let mut parts = Vec::new();
    flatten(root, schema, &mut parts);
    let mut errors = Vec::new();
    check(root, &parts, body, "", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:#?}\n{body:#}"
    );
}

/// The one documented body outside the spec (`openapi/README.md`, role bindings): a missing
/// binding answers 403 `{"error_code": 40301, "message": ...}` and nothing else.
fn missing_binding_body(path: &str, status: StatusCode, body: &Value) -> bool {
    if !(template(path) == "/iam/v2/role-bindings/{id}" && status == StatusCode::FORBIDDEN)
        || body.get("errors").is_some()
    {
        return false;
    }
    let obj = body.as_object().expect("a JSON object");
    assert_eq!(obj.len(), 2, "{body}");
    assert_eq!(obj["error_code"], 40301, "{body}");
    assert!(obj["message"].is_string(), "{body}");
    true
}

// ---------------------------------------------------------------------------------------------
// Test environment
// ---------------------------------------------------------------------------------------------

struct Env {
    server: MockServer,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .to_str()
            .unwrap()
    }

    fn invitation(&self) -> RemoteInvitation {
        serde_json::from_value(self.body.clone()).unwrap()
    }

    fn failure(&self) -> Failure {
        serde_json::from_value(self.body.clone()).unwrap()
    }

    fn detail(&self) -> String {
        self.failure().errors[0].detail.clone().unwrap()
    }

    fn code(&self) -> String {
        self.failure().errors[0].code.clone().unwrap()
    }

    /// The query parameter the first error points at.
    fn parameter(&self) -> Option<String> {
        self.failure().errors[0].source.clone()?.parameter
    }

    /// The body property the first error points at.
    fn pointer(&self) -> Option<String> {
        self.failure().errors[0].source.clone()?.pointer
    }
}

enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

async fn env_with(config: MockConfig) -> Env {
    let server = confluent_mock::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    Env {
        server,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    }
}

/// The organization of the `other-key` credential of [`env_with_another_organization`].
const OTHER_ORG: &str = "5d0c1f7e-7d3a-4c1b-9d8e-0a0b0c0d0e0f";

/// A token of organization [`OTHER_ORG`] in [`env_with_another_organization`].
const OTHER_TOKEN: &str = "sts-token-of-the-other-org";

/// A mock whose `other-key`/`other-secret` credential and [`OTHER_TOKEN`] belong to organization
/// [`OTHER_ORG`]; [`TOKEN`] belongs to the main one.
async fn env_with_another_organization() -> Env {
    env_with(MockConfig {
        org_id: ORG.into(),
        tokens: vec![TOKEN.into()],
        other_organizations: vec![OtherOrganization {
            api_key: "other-key".into(),
            api_secret: "other-secret".into(),
            org_id: OTHER_ORG.into(),
            tokens: vec![OTHER_TOKEN.into()],
        }],
        ..MockConfig::default()
    })
    .await
}

/// The default mock, whose next invitation create meets `action`.
async fn env_with_create_fault(action: FaultAction) -> Env {
    let env = env().await;
    env.server
        .state()
        .inject(Fault::new(Some("POST"), "/iam/v2/invitations", 1, action));
    env
}

async fn env() -> Env {
    env_with(MockConfig {
        tokens: vec![TOKEN.into()],
        org_id: ORG.into(),
        ..MockConfig::default()
    })
    .await
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Value>,
        auth: Auth<'_>,
    ) -> Result<Reply, reqwest::Error> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        };
        let mut req = self.http.request(method, url);
        req = match auth {
            Auth::None => req,
            Auth::Basic(k, s) => req.basic_auth(k, Some(s)),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// An authenticated API call whose answer must conform to the spec.
    async fn api(&self, method: Method, path_or_url: &str, body: Option<Value>) -> Reply {
        let r = self
            .send(method.clone(), path_or_url, body, Auth::Basic(KEY, SECRET))
            .await
            .unwrap();
        let path = path_or_url
            .strip_prefix(&self.server.base_url())
            .unwrap_or(path_or_url);
        conform(&method, path, r.status, &r.headers, &r.body);
        r
    }

    async fn create(&self, email: &str) -> Reply {
        self.api(
            Method::POST,
            "/iam/v2/invitations",
            Some(json!({ "email": email })),
        )
        .await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body, Auth::None).await.unwrap()
    }

    /// `POST /_mock/invitations/{id}/{action}`: a test control on one invitation.
    async fn control_invitation(&self, id: &str, action: &str) -> Reply {
        self.control(
            Method::POST,
            &format!("/_mock/invitations/{id}/{action}"),
            None,
        )
        .await
    }
}

fn is_rfc3339_seconds_z(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_handle_is_a_cheap_shareable_clone() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<confluent_mock::MockHandle>();
    fn sendable<T: Send + 'static>() {}
    sendable::<MockServer>();
}

#[test]
fn config_debug_hides_credentials() {
    let c = MockConfig {
        api_keys: vec![("key-id-1".into(), "s3cr3t".into())],
        tokens: vec!["t0k3n".into()],
        ..MockConfig::default()
    };
    let printed = format!("{c:?}");
    for secret in ["key-id-1", "s3cr3t", "t0k3n"] {
        assert!(!printed.contains(secret), "{printed}");
    }
}

#[tokio::test]
async fn the_spec_file_is_read() {
    let schemas = &spec()["components"]["schemas"];
    assert!(schemas["iam.v2.Invitation"]["properties"]["email"].is_object());
    assert!(schemas["Failure"]["properties"]["errors"].is_object());
    let schemas = &role_binding_spec()["components"]["schemas"];
    assert!(schemas["iam.v2.RoleBinding"]["properties"]["crn_pattern"].is_object());
    assert!(role_binding_spec()["paths"]["/iam/v2/role-bindings/{id}"]["delete"].is_object());
}

#[tokio::test]
async fn authentication_basic_and_bearer() {
    let env = env().await;
    let list = "/iam/v2/invitations";
    for auth in [
        Auth::None,
        Auth::Basic(KEY, "wrong"),
        Auth::Basic("other", SECRET),
        Auth::Bearer("not-a-token"),
    ] {
        let r = env.send(Method::GET, list, None, auth).await.unwrap();
        conform(&Method::GET, list, r.status, &r.headers, &r.body);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header("www-authenticate"),
            r#"Basic error="invalid_key", error_description="The API Key is invalid""#
        );
        let f = r.failure();
        assert_eq!(f.errors.len(), 1);
        let e = &f.errors[0];
        assert_eq!(e.status.as_deref(), Some("401"));
        assert_eq!(e.code.as_deref(), Some("user_unauthenticated"));
        assert_eq!(e.title.as_deref(), Some("Authentication Required"));
        assert_eq!(
            e.detail.as_deref(),
            Some("Valid authentication credentials must be provided")
        );
        assert!(e.id.is_some());
    }
    let basic = env
        .send(Method::GET, list, None, Auth::Basic(KEY, SECRET))
        .await
        .unwrap();
    assert_eq!(basic.status, StatusCode::OK);
    let bearer = env
        .send(Method::GET, list, None, Auth::Bearer(TOKEN))
        .await
        .unwrap();
    assert_eq!(bearer.status, StatusCode::OK);
    assert_ne!(
        basic.header("x-request-id"),
        bearer.header("x-request-id"),
        "request ids are fresh"
    );
    let calls = env.server.state().calls();
    assert_eq!(calls.unauthenticated, 4);
    assert_eq!(calls.list, 6);
    assert_eq!(calls.total, 6);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_key_of_another_organization_sees_only_that_organization() {
    let env = env_with_another_organization().await;
    let main = env.create("jane@example.com").await.invitation();
    let other = env
        .send(
            Method::POST,
            "/iam/v2/invitations",
            Some(json!({ "email": "jane@example.com" })),
            Auth::Basic("other-key", "other-secret"),
        )
        .await
        .unwrap();
    assert_eq!(
        other.status,
        StatusCode::CREATED,
        "no 409: another organization"
    );
    let other = other.invitation();
    let crn = |i: &RemoteInvitation| i.resource_name().unwrap_or_default().to_owned();
    assert!(
        crn(&main).contains(&format!("organization={ORG}/")),
        "{}",
        crn(&main)
    );
    assert!(
        crn(&other).contains(&format!("organization={OTHER_ORG}/")),
        "{}",
        crn(&other)
    );
    let id = other.id.clone().unwrap();
    let path = format!("/iam/v2/invitations/{id}");
    let seen = env
        .send(Method::GET, &path, None, Auth::Basic(KEY, SECRET))
        .await
        .unwrap();
    assert_eq!(
        seen.status,
        StatusCode::NOT_FOUND,
        "the main key does not see it"
    );
    let handle = env.server.state();
    assert_eq!(handle.live_invitations_for("jane@example.com").len(), 1);
    assert_eq!(
        handle
            .live_invitations_in(OTHER_ORG, "jane@example.com")
            .len(),
        1
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_token_of_another_organization_sees_only_that_organization() {
    let env = env_with_another_organization().await;
    let create = |token: &'static str| {
        let env = &env;
        async move {
            env.send(
                Method::POST,
                "/iam/v2/invitations",
                Some(json!({ "email": "sam@example.com" })),
                Auth::Bearer(token),
            )
            .await
            .unwrap()
        }
    };
    let main = create(TOKEN).await;
    assert_eq!(main.status, StatusCode::CREATED);
    let other = create(OTHER_TOKEN).await;
    assert_eq!(
        other.status,
        StatusCode::CREATED,
        "no 409: another organization"
    );
    let (main, other) = (main.invitation(), other.invitation());
    let crn = |i: &RemoteInvitation| i.resource_name().unwrap_or_default().to_owned();
    assert!(
        crn(&main).contains(&format!("organization={ORG}/")),
        "{}",
        crn(&main)
    );
    assert!(
        crn(&other).contains(&format!("organization={OTHER_ORG}/")),
        "{}",
        crn(&other)
    );
    // each token lists its own organization only
    for (token, want) in [(TOKEN, &main), (OTHER_TOKEN, &other)] {
        let listed = env
            .send(
                Method::GET,
                "/iam/v2/invitations",
                None,
                Auth::Bearer(token),
            )
            .await
            .unwrap();
        assert_eq!(listed.status, StatusCode::OK);
        let ids: Vec<&str> = listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert_eq!(ids, vec![want.id.as_deref().unwrap()]);
    }
    let handle = env.server.state();
    assert_eq!(handle.invitations().len(), 1);
    assert_eq!(handle.invitations_in(OTHER_ORG).len(), 1);
    assert!(handle.invitations_in("no-such-org").is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn create_answers_201_with_location_and_the_full_invitation() {
    let env = env().await;
    let r = env.create("Jane.Doe@example.com").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let inv = r.invitation();
    let id = inv.id.clone().unwrap();
    assert!(id.starts_with("i-") && id.len() == 7, "{id}");
    assert!(
        id[2..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    let self_link = env.url(&format!("/iam/v2/invitations/{id}"));
    assert_eq!(r.header("location"), self_link);
    assert_eq!(inv.api_version.as_deref(), Some("iam/v2"));
    assert_eq!(inv.kind.as_deref(), Some("Invitation"));
    let meta = inv.metadata.clone().unwrap();
    assert_eq!(meta.self_link.as_deref(), Some(self_link.as_str()));
    assert_eq!(
        meta.resource_name.unwrap(),
        format!("crn://confluent.cloud/organization={ORG}/invitation={id}")
    );
    let created = meta.created_at.unwrap();
    assert!(is_rfc3339_seconds_z(&created), "{created}");
    assert_eq!(meta.updated_at.as_deref(), Some(created.as_str()));
    assert!(meta.deleted_at.is_none());
    assert_eq!(inv.email.as_deref(), Some("Jane.Doe@example.com"));
    assert_eq!(inv.auth_type.as_deref(), Some("AUTH_TYPE_SSO"));
    assert_eq!(
        inv.status.as_ref().map(|s| s.as_str()),
        Some("INVITE_STATUS_SENT")
    );
    assert!(inv.accepted_at.is_none());
    assert!(r.body.get("accepted_at").is_none());
    let created_ts: jiff::Timestamp = created.parse().unwrap();
    assert_eq!(
        inv.expires_at_timestamp().unwrap(),
        created_ts
            .checked_add(jiff::SignedDuration::from_hours(168))
            .unwrap()
    );
    let user = inv.user.clone().unwrap();
    let uid = user.id.clone().unwrap();
    assert!(uid.starts_with("u-"));
    assert_eq!(
        user.related.unwrap(),
        env.url(&format!("/iam/v2/users/{uid}"))
    );
    assert_eq!(
        user.resource_name.unwrap(),
        format!("crn://confluent.cloud/organization={ORG}/user={uid}")
    );
    assert_eq!(user.kind.as_deref(), Some("User"));
    assert_eq!(user.api_version.as_deref(), Some("iam/v2"));
    let creator = inv.creator.clone().unwrap();
    assert!(creator.id.unwrap().starts_with("u-"));

    // GET answers the same invitation
    let got = env
        .api(Method::GET, &format!("/iam/v2/invitations/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.invitation(), inv);

    // LOCAL can be chosen; the invitee user exists from creation on
    let local = env
        .api(
            Method::POST,
            "/iam/v2/invitations",
            Some(json!({"email": "local@example.com", "auth_type": "AUTH_TYPE_LOCAL"})),
        )
        .await;
    assert_eq!(
        local.invitation().auth_type.as_deref(),
        Some("AUTH_TYPE_LOCAL")
    );
    let u = env
        .api(Method::GET, &format!("/iam/v2/users/{uid}"), None)
        .await;
    assert_eq!(u.status, StatusCode::OK);
    env.server.shutdown().await;
}

#[tokio::test]
async fn create_validates_and_refuses_a_live_email_with_409() {
    let env = env().await;
    assert_eq!(
        env.create("jane@example.com").await.status,
        StatusCode::CREATED
    );
    let again = env.create("JANE@Example.com").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "resource_already_exists");
    assert_eq!(
        again.detail(),
        "This user already exists within the Organization"
    );
    assert_eq!(again.failure().errors[0].status.as_deref(), Some("409"));

    for (body, pointer) in [
        (json!({"email": "not-an-address"}), "/email"),
        (json!({"email": "a@b"}), "/email"),
        (json!({}), "/email"),
        (
            json!({"email": "x@example.com", "auth_type": "AUTH_TYPE_MAGIC"}),
            "/auth_type",
        ),
    ] {
        let r = env
            .api(Method::POST, "/iam/v2/invitations", Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.code(), "invalid_configuration");
        let e = &r.failure().errors[0];
        assert_eq!(
            e.source.as_ref().and_then(|s| s.pointer.as_deref()),
            Some(pointer)
        );
        assert!(e.detail.as_deref().unwrap().contains(pointer), "{e:?}");
    }
    assert_eq!(env.server.state().invitations().len(), 1);
    env.server.shutdown().await;
}

#[tokio::test]
async fn pagination_over_250_invitations_follows_next() {
    let env = env().await;
    let state = env.server.state();
    let mut created = Vec::new();
    for i in 0..250 {
        created.push(
            state
                .seed_invitation(&format!("user{i:03}@example.com"), None)
                .id
                .unwrap(),
        );
    }
    let mut url = env.url("/iam/v2/invitations?page_size=100");
    let mut pages = Vec::new();
    loop {
        let r = env.api(Method::GET, &url, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let list: InvitationList = serde_json::from_value(r.body.clone()).unwrap();
        assert_eq!(list.kind.as_deref(), Some("InvitationList"));
        assert_eq!(list.api_version.as_deref(), Some("iam/v2"));
        assert_eq!(list.metadata.total_size, Some(250));
        assert!(
            list.metadata
                .first
                .as_deref()
                .unwrap()
                .starts_with("http://")
        );
        pages.push(list.data.len());
        let ids: Vec<String> = list.data.iter().map(|i| i.id.clone().unwrap()).collect();
        let offset: usize = pages[..pages.len() - 1].iter().sum();
        assert_eq!(
            ids,
            created[offset..offset + ids.len()],
            "sorted by creation"
        );
        match list.metadata.next {
            Some(next) => {
                assert!(next.starts_with(&env.server.base_url()), "{next}");
                assert!(next.contains("page_token="), "{next}");
                assert!(next.contains("page_size=100"), "{next}");
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, vec![100, 100, 50]);

    // default page size 10; bounds and bad tokens are 400 invalid_filter
    let r = env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 10);
    for (q, param) in [
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=ten", "page_size"),
        ("page_token=bogus", "page_token"),
        ("colour=blue", "colour"),
    ] {
        let r = env
            .api(Method::GET, &format!("/iam/v2/invitations?{q}"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.code(), "invalid_filter");
        assert_eq!(r.parameter().as_deref(), Some(param));
    }
    env.server.shutdown().await;
}

#[tokio::test]
async fn list_filters_are_exact_matches() {
    let env = env().await;
    let a = env.create("a+tag@example.com").await.invitation();
    let b = env.create("b@example.com").await.invitation();
    // a seeded invitation has another creator
    let c = env.server.state().seed_invitation("c@example.com", None);
    env.server.state().accept(b.id.as_deref().unwrap()).unwrap();
    let ids = |r: &Reply| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let q = |s: &str| format!("/iam/v2/invitations?{s}");
    let r = env
        .api(Method::GET, &q("email=A%2BTAG%40example.com"), None)
        .await;
    assert_eq!(ids(&r), vec![a.id.clone().unwrap()]);
    let r = env.api(Method::GET, &q("email=example.com"), None).await;
    assert!(ids(&r).is_empty());
    let r = env
        .api(Method::GET, &q("status=INVITE_STATUS_ACCEPTED"), None)
        .await;
    assert_eq!(ids(&r), vec![b.id.clone().unwrap()]);
    let r = env
        .api(
            Method::GET,
            &q(&format!("user={}", a.user_id().unwrap())),
            None,
        )
        .await;
    assert_eq!(ids(&r), vec![a.id.clone().unwrap()]);
    let creator = a.creator.unwrap().id.unwrap();
    let r = env
        .api(
            Method::GET,
            &q(&format!("creator={creator}&page_size=1")),
            None,
        )
        .await;
    assert_eq!(r.body["metadata"]["total_size"], 2);
    // the next link keeps the filter
    let next = r.body["metadata"]["next"].as_str().unwrap().to_owned();
    assert!(next.contains(&format!("creator={creator}")), "{next}");
    let r2 = env.api(Method::GET, &next, None).await;
    assert_eq!(ids(&r2), vec![b.id.unwrap()]);
    assert!(r2.body["metadata"].get("next").is_none());
    let r = env
        .api(
            Method::GET,
            &q(&format!("creator={}", c.creator.unwrap().id.unwrap())),
            None,
        )
        .await;
    assert_eq!(ids(&r), vec![c.id.unwrap()]);
    env.server.shutdown().await;
}

#[tokio::test]
async fn delete_pending_deactivates_and_allows_a_reinvite() {
    let env = env().await;
    let inv = env.create("jane@example.com").await.invitation();
    let id = inv.id.clone().unwrap();
    let path = format!("/iam/v2/invitations/{id}");
    let del = env.api(Method::DELETE, &path, None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(del.headers.get("x-request-id").is_some());
    let got = env.api(Method::GET, &path, None).await;
    assert_eq!(got.status, StatusCode::OK);
    let got = got.invitation();
    assert_eq!(
        got.status.as_ref().map(|s| s.as_str()),
        Some("INVITE_STATUS_DEACTIVATED")
    );
    assert!(is_rfc3339_seconds_z(
        got.metadata.unwrap().deleted_at.as_deref().unwrap()
    ));
    // deleting again, or an unknown id: 404
    for p in [path.as_str(), "/iam/v2/invitations/i-zzzzz"] {
        let r = env.api(Method::DELETE, p, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.failure().errors[0].title.as_deref(), Some("Not Found"));
    }
    let r = env
        .api(Method::GET, "/iam/v2/invitations/i-zzzzz", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        env.server
            .state()
            .live_invitations_for("jane@example.com")
            .is_empty()
    );
    let again = env.create("jane@example.com").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(again.invitation().id, inv.id);

    // an expired invitation can be deleted too, and its email invited again
    let x = env.create("x@example.com").await.invitation();
    env.server.state().expire(x.id.as_deref().unwrap()).unwrap();
    let r = env
        .api(
            Method::GET,
            &format!("/iam/v2/invitations/{}", x.id.as_deref().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "INVITE_STATUS_EXPIRED");
    assert_eq!(
        env.create("x@example.com").await.status,
        StatusCode::CREATED
    );
    let r = env
        .api(
            Method::DELETE,
            &format!("/iam/v2/invitations/{}", x.id.unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    env.server.shutdown().await;
}

#[tokio::test]
async fn accepted_invitations_and_users() {
    let env = env().await;
    let inv = env.create("jane@example.com").await.invitation();
    let id = inv.id.clone().unwrap();
    let accepted = env.server.state().accept(&id).unwrap();
    assert!(accepted.accepted_at.is_some());
    let r = env
        .api(Method::DELETE, &format!("/iam/v2/invitations/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "The invitation was already accepted");
    // a member cannot be invited again
    assert_eq!(
        env.create("jane@example.com").await.status,
        StatusCode::CONFLICT
    );

    let uid = inv.user_id().unwrap().to_owned();
    let upath = format!("/iam/v2/users/{uid}");
    let u = env.api(Method::GET, &upath, None).await;
    assert_eq!(u.status, StatusCode::OK);
    let user: User = serde_json::from_value(u.body.clone()).unwrap();
    assert_eq!(user.id.as_deref(), Some(uid.as_str()));
    assert_eq!(user.email.as_deref(), Some("jane@example.com"));
    assert_eq!(user.kind.as_deref(), Some("User"));
    assert!(user.full_name.is_some());
    assert_eq!(user.auth_type.as_deref(), Some("AUTH_TYPE_SSO"));
    assert_eq!(env.server.state().users().len(), 1);

    let d = env.api(Method::DELETE, &upath, None).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        env.api(Method::GET, &upath, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.api(Method::DELETE, &upath, None).await.status,
        StatusCode::NOT_FOUND
    );
    let got = env
        .api(Method::GET, &format!("/iam/v2/invitations/{id}"), None)
        .await;
    assert_eq!(got.body["status"], "INVITE_STATUS_DEACTIVATED");
    assert!(env.server.state().users().is_empty());
    let again = env.create("jane@example.com").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(again.invitation().user_id(), Some(uid.as_str()));
    let calls = env.server.state().calls();
    assert_eq!((calls.get_user, calls.delete_user), (2, 2));
    env.server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let env = env_with(MockConfig {
        tokens: vec![TOKEN.into()],
        rate_limit: Some(RateLimit {
            per_second: 0.5,
            burst: 2,
        }),
        ..MockConfig::default()
    })
    .await;
    let list = "/iam/v2/invitations";
    for remaining in ["1", "0"] {
        let r = env.api(Method::GET, list, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ratelimit-limit"), "2");
        assert_eq!(r.header("x-ratelimit-remaining"), remaining);
        assert!(r.header("x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    }
    let r = env.api(Method::GET, list, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(r.header("x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    assert_eq!(r.header("x-ratelimit-remaining"), "0");
    // another credential has its own bucket; the controls are never limited
    let b = env
        .send(Method::GET, list, None, Auth::Bearer(TOKEN))
        .await
        .unwrap();
    assert_eq!(b.status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(
            env.control(Method::GET, "/_mock/calls", None).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(env.server.state().calls().rate_limited, 1);
    // lifting the limit lets requests through and drops the headers
    env.server.state().set_rate_limit(None);
    let r = env.api(Method::GET, list, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-ratelimit-limit").is_none());
    env.server.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_api_requests() {
    let env = env().await;
    env.server.state().set_latency(Duration::from_millis(300));
    let t = Instant::now();
    env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    env.control(Method::GET, "/_mock/calls", None).await;
    assert!(t.elapsed() < Duration::from_millis(300));
    env.server.shutdown().await;
}

#[tokio::test]
async fn fault_status_codes() {
    let env = env().await;
    let state = env.server.state();
    state.inject(Fault::new(
        Some("POST"),
        "/iam/v2/invitations",
        2,
        FaultAction::Status { status: 503 },
    ));
    // GETs do not match a POST fault
    assert_eq!(
        env.api(Method::GET, "/iam/v2/invitations", None)
            .await
            .status,
        StatusCode::OK
    );
    for _ in 0..2 {
        let r = env
            .send(
                Method::POST,
                "/iam/v2/invitations",
                Some(json!({"email": "a@example.com"})),
                Auth::Basic(KEY, SECRET),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.failure().errors[0].status.as_deref(), Some("503"));
    }
    assert!(
        state.invitations().is_empty(),
        "a status fault does not commit"
    );
    assert_eq!(
        env.create("a@example.com").await.status,
        StatusCode::CREATED
    );

    state.inject(Fault::new(
        None,
        "/iam/v2",
        1,
        FaultAction::Status { status: 429 },
    ));
    let r = env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(r.header("x-ratelimit-reset"), "1");
    state.inject(Fault::new(
        None,
        "/iam/v2",
        1,
        FaultAction::Status { status: 500 },
    ));
    let r = env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.failure().errors.len(), 1);
    let calls = state.calls();
    assert_eq!(calls.faults_injected, 4);
    assert_eq!(calls.rate_limited, 1);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_fault_ending_in_a_question_mark_hits_lists_only() {
    let env = env().await;
    let state = env.server.state();
    let id = env.create("q@example.com").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    state.inject(Fault::new(
        Some("GET"),
        "/iam/v2/invitations?",
        2,
        FaultAction::Status { status: 500 },
    ));
    let one = format!("/iam/v2/invitations/{id}");
    assert_eq!(
        env.api(Method::GET, &one, None).await.status,
        StatusCode::OK
    );
    let list = "/iam/v2/invitations?page_size=100";
    assert_eq!(
        env.api(Method::GET, list, None).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        env.api(Method::GET, &one, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.api(Method::GET, list, None).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        env.api(Method::GET, list, None).await.status,
        StatusCode::OK
    );
    assert_eq!(state.calls().faults_injected, 2);
    env.server.shutdown().await;
}

#[tokio::test]
async fn fault_delay() {
    let env = env().await;
    env.server.state().inject(Fault::new(
        Some("get"),
        "/iam/v2/invitations",
        1,
        FaultAction::Delay { millis: 400 },
    ));
    let t = Instant::now();
    let r = env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(400));
    let t = Instant::now();
    env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert!(t.elapsed() < Duration::from_millis(400), "count consumed");
    env.server.shutdown().await;
}

async fn post_expecting_connection_error(env: &Env, email: &str) {
    // warm the pool so the drop happens on a reused connection too
    env.api(Method::GET, "/iam/v2/invitations", None).await;
    let err = env
        .send(
            Method::POST,
            "/iam/v2/invitations",
            Some(json!({ "email": email })),
            Auth::Basic(KEY, SECRET),
        )
        .await
        .expect_err("a dropped connection must be a client error");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );
}

#[tokio::test]
async fn fault_drop_closes_the_connection_without_committing() {
    let env = env_with_create_fault(FaultAction::Drop).await;
    let state = env.server.state();
    post_expecting_connection_error(&env, "drop@example.com").await;
    assert!(state.live_invitations_for("drop@example.com").is_empty());
    // the server keeps serving, and the retry succeeds
    assert_eq!(
        env.create("drop@example.com").await.status,
        StatusCode::CREATED
    );
    assert_eq!(state.calls().faults_injected, 1);
    env.server.shutdown().await;
}

#[tokio::test]
async fn fault_commit_then_drop_commits_and_closes() {
    let env = env_with_create_fault(FaultAction::CommitThenDrop).await;
    let state = env.server.state();
    post_expecting_connection_error(&env, "lost@example.com").await;
    assert_eq!(state.live_invitations_for("LOST@example.com").len(), 1);
    // the blind retry meets the 409 the real service answers
    let retry = env.create("lost@example.com").await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    env.server.shutdown().await;
}

#[tokio::test]
async fn fault_commit_then_500_commits_and_answers_500() {
    let env = env_with_create_fault(FaultAction::CommitThen500).await;
    let state = env.server.state();
    let r = env.create("half@example.com").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(state.live_invitations_for("half@example.com").len(), 1);
    let retry = env.create("half@example.com").await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    // a DELETE whose answer is lost is still a deactivation
    let id = state.live_invitations_for("half@example.com")[0]
        .id
        .clone()
        .unwrap();
    state.inject(Fault::new(
        Some("DELETE"),
        "/iam/v2/invitations/",
        1,
        FaultAction::CommitThenDrop,
    ));
    let err = env
        .send(
            Method::DELETE,
            &format!("/iam/v2/invitations/{id}"),
            None,
            Auth::Basic(KEY, SECRET),
        )
        .await;
    assert!(err.is_err());
    assert!(state.live_invitations_for("half@example.com").is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn control_endpoints() {
    let env = env().await;
    // seed
    let r = env
        .control(
            Method::POST,
            "/_mock/invitations",
            Some(json!({"email": "seed@example.com", "auth_type": "AUTH_TYPE_LOCAL"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.headers.get("x-request-id").is_some());
    let seeded = r.invitation();
    let id = seeded.id.clone().unwrap();
    assert_eq!(seeded.auth_type.as_deref(), Some("AUTH_TYPE_LOCAL"));
    let r = env
        .control(
            Method::POST,
            "/_mock/invitations",
            Some(json!({"email": "SEED@example.com"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "an existing live invitation is returned"
    );
    assert_eq!(r.invitation().id, seeded.id);
    // list
    let r = env.control(Method::GET, "/_mock/invitations", None).await;
    let all: Vec<RemoteInvitation> = serde_json::from_value(r.body).unwrap();
    assert_eq!(all.len(), 1);
    // accept, and users
    let r = env.control_invitation(&id, "accept").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "INVITE_STATUS_ACCEPTED");
    assert!(r.body["accepted_at"].is_string());
    let r = env.control_invitation(&id, "accept").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = env.control(Method::GET, "/_mock/users", None).await;
    let users: Vec<User> = serde_json::from_value(r.body).unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id.as_deref(), seeded.user_id());
    // expire
    let other = env.create("exp@example.com").await.invitation();
    let oid = other.id.unwrap();
    let r = env.control_invitation(&oid, "expire").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "INVITE_STATUS_EXPIRED");
    let r = env
        .control(Method::POST, "/_mock/invitations/i-nope0/expire", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // remove: the API answers 404 afterwards
    let r = env
        .control(Method::DELETE, &format!("/_mock/invitations/{oid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = env
        .api(Method::GET, &format!("/iam/v2/invitations/{oid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // config
    let r = env
        .control(
            Method::PUT,
            "/_mock/config",
            Some(json!({"latency_ms": 5, "rate_limit": {"per_second": 10.0, "burst": 3}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["latency_ms"], 5);
    assert_eq!(env.server.state().latency(), Duration::from_millis(5));
    assert_eq!(
        env.server.state().rate_limit(),
        Some(RateLimit {
            per_second: 10.0,
            burst: 3
        })
    );
    let r = env.api(Method::GET, "/iam/v2/invitations", None).await;
    assert_eq!(r.header("x-ratelimit-limit"), "3");
    let r = env
        .control(
            Method::PUT,
            "/_mock/config",
            Some(json!({"rate_limit": null})),
        )
        .await;
    assert_eq!(r.body["latency_ms"], 5, "absent properties stay");
    assert!(r.body["rate_limit"].is_null());
    let r = env
        .control(
            Method::PUT,
            "/_mock/config",
            Some(json!({"rate_limit": {"per_second": 0, "burst": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // faults
    let r = env
        .control(
            Method::POST,
            "/_mock/faults",
            Some(
                json!({"method": "GET", "path_prefix": "/iam/v2/invitations", "count": 1,
                        "action": {"type": "status", "status": 502}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = env.control(Method::GET, "/_mock/faults", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // 502 is not a status the spec declares, so no conformance check here
    let r = env
        .send(
            Method::GET,
            "/iam/v2/invitations",
            None,
            Auth::Basic(KEY, SECRET),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.failure().errors[0].status.as_deref(), Some("502"));
    let r = env
        .control(
            Method::POST,
            "/_mock/faults",
            Some(json!({"path_prefix": "/"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // calls: /_mock requests are not counted
    let r = env.control(Method::GET, "/_mock/calls", None).await;
    let calls: CallCounts = serde_json::from_value(r.body).unwrap();
    assert_eq!(calls, env.server.state().calls());
    assert_eq!(calls.create, 1);
    assert_eq!(calls.get, 1);
    assert_eq!(calls.list, 2);
    assert_eq!(calls.faults_injected, 1);
    assert_eq!(calls.total, 4);
    // reset
    let r = env.control(Method::POST, "/_mock/reset", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(env.server.state().invitations().is_empty());
    assert!(env.server.state().users().is_empty());
    assert_eq!(env.server.state().calls(), CallCounts::default());
    assert_eq!(
        env.api(Method::GET, "/iam/v2/invitations", None)
            .await
            .status,
        StatusCode::OK,
        "credentials survive a reset"
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn every_response_conforms_to_the_spec() {
    // The other tests check every API response through `Env::api`; this one walks one of each
    // kind in one place, including nested user and creator references and the list envelope.
    let env = env().await;
    let a = env.create("conform@example.com").await;
    let id = a.invitation().id.unwrap();
    env.create("conform@example.com").await; // 409
    env.api(Method::GET, &format!("/iam/v2/invitations/{id}"), None)
        .await;
    env.api(Method::GET, "/iam/v2/invitations?page_size=1", None)
        .await;
    env.api(Method::GET, "/iam/v2/invitations?page_size=500", None)
        .await; // 400
    env.api(Method::GET, "/iam/v2/invitations/i-00000", None)
        .await; // 404
    env.api(Method::DELETE, &format!("/iam/v2/invitations/{id}"), None)
        .await; // 204
    let inv = env.create("conform2@example.com").await.invitation();
    env.server
        .state()
        .accept(inv.id.as_deref().unwrap())
        .unwrap();
    env.api(
        Method::GET,
        &format!("/iam/v2/users/{}", inv.user_id().unwrap()),
        None,
    )
    .await;
    env.api(
        Method::DELETE,
        &format!("/iam/v2/invitations/{}", inv.id.unwrap()),
        None,
    )
    .await; // 400
    // the checker itself catches undeclared properties
    let mut errors = Vec::new();
    let mut parts = Vec::new();
    flatten(
        spec(),
        &spec()["components"]["schemas"]["iam.v2.Invitation"],
        &mut parts,
    );
    check(
        spec(),
        &parts,
        &json!({"id": "i-1", "surprise": 1, "status": "INVITE_STATUS_DELETED",
                "metadata": {"self": "x", "etag": "y"}}),
        "",
        &mut errors,
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    env.server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let env = env().await;
    let r = env
        .send(
            Method::GET,
            "/iam/v2/nothing",
            None,
            Auth::Basic(KEY, SECRET),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("content-type"), "application/json");
    r.failure();
    let r = env
        .send(Method::GET, "/iam/v2/nothing", None, Auth::None)
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "authentication comes first"
    );
    let r = env
        .send(
            Method::PATCH,
            "/iam/v2/invitations/i-abcde",
            Some(json!({})),
            Auth::Basic(KEY, SECRET),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    r.failure();
    assert_eq!(env.server.state().calls().total, 3);
    env.server.shutdown().await;
}

#[tokio::test]
async fn concurrent_creates_of_one_email_yield_one_invitation() {
    let env = env().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let http = env.http.clone();
        let url = env.url("/iam/v2/invitations");
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth(KEY, Some(SECRET))
                .json(&json!({"email": "race@example.com"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19
    );
    let ids: HashSet<_> = env
        .server
        .state()
        .invitations()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), 1);
    env.server.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let env = env().await;
    let url = env.url("/_mock/calls");
    assert!(env.http.get(&url).send().await.is_ok());
    let addr = env.server.addr();
    assert_eq!(env.server.base_url(), format!("http://{addr}"));
    env.server.shutdown().await;
    let fresh = reqwest::Client::new();
    let err = fresh.get(&url).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
}

#[tokio::test]
async fn api_keys_can_be_rotated_and_revoked_at_run_time() {
    let env = env().await;
    let list = "/iam/v2/invitations";
    let shared = &env;
    let status = |auth| async move {
        shared
            .send(Method::GET, list, None, auth)
            .await
            .unwrap()
            .status
    };
    assert_eq!(status(Auth::Basic(KEY, SECRET)).await, StatusCode::OK);
    let r = env
        .control(
            Method::PUT,
            "/_mock/api-keys",
            Some(json!([{"key": "rotated", "secret": "rotated-secret"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        status(Auth::Basic(KEY, SECRET)).await,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    assert_eq!(
        status(Auth::Basic("rotated", "rotated-secret")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(Auth::Bearer(TOKEN)).await,
        StatusCode::OK,
        "tokens stay"
    );
    let r = env
        .control(Method::PUT, "/_mock/api-keys", Some(json!({"key": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    env.server.shutdown().await;
}

#[tokio::test]
async fn an_invitation_can_expire_naturally_at_a_set_time() {
    let env = env().await;
    let id = env
        .create("later@example.com")
        .await
        .invitation()
        .id
        .unwrap();
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let r = env
        .control(
            Method::POST,
            &format!("/_mock/invitations/{id}/expire"),
            Some(json!({"at": at.to_string()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "INVITE_STATUS_SENT", "not yet");
    let get = format!("/iam/v2/invitations/{id}");
    let read = env.api(Method::GET, &get, None).await.invitation();
    assert_eq!(
        read.expires_at_timestamp().map(|t| t.as_second()),
        Some(at.as_second())
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let read = env.api(Method::GET, &get, None).await.invitation();
    assert_eq!(
        read.status.map(|s| s.as_str().to_owned()).as_deref(),
        Some("INVITE_STATUS_EXPIRED")
    );
    env.server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Role bindings
// ---------------------------------------------------------------------------------------------

fn crn(rest: &str) -> String {
    format!("crn://confluent.cloud/organization={ORG}{rest}")
}

const TOPIC: &str = "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";

impl Reply {
    fn binding(&self) -> RemoteRoleBinding {
        serde_json::from_value(self.body.clone()).unwrap()
    }
}

impl Env {
    /// Invites `email` through the API: the invitee's user id, which bindings can use at once.
    async fn invitee(&self, email: &str) -> String {
        let r = self.create(email).await;
        assert_eq!(r.status, StatusCode::CREATED);
        r.invitation().user_id().unwrap().to_owned()
    }

    async fn bind(&self, principal: &str, role: &str, crn_pattern: &str) -> Reply {
        self.api(
            Method::POST,
            "/iam/v2/role-bindings",
            Some(json!({"principal": principal, "role_name": role, "crn_pattern": crn_pattern})),
        )
        .await
    }

    /// Every binding of a list request, following `next`; the number of pages.
    async fn list_bindings(&self, query: &str) -> (Vec<RemoteRoleBinding>, usize) {
        let mut url = format!("/iam/v2/role-bindings?{query}");
        let mut all = Vec::new();
        let mut pages = 0;
        loop {
            let r = self.api(Method::GET, &url, None).await;
            assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
            pages += 1;
            let page: RemoteRoleBindingList = serde_json::from_value(r.body).unwrap();
            assert_eq!(page.kind.as_deref(), Some("RoleBindingList"));
            all.extend(page.data);
            match page.metadata.next {
                Some(next) => url = next,
                None => return (all, pages),
            }
        }
    }
}

/// Percent-encodes a query value (all but RFC 3986's unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn missing(r: &Reply) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:#}", r.body);
    assert_eq!(r.body["error_code"], 40301);
    assert_eq!(
        r.body["message"],
        "Either unauthorized to access role binding or role binding does not exist"
    );
}

#[tokio::test]
async fn role_bindings_create_get_list_delete_for_a_pending_invitee() {
    let env = env().await;
    let uid = env.invitee("jane@example.com").await;
    let principal = format!("User:{uid}");
    let r = env.bind(&principal, "DeveloperRead", &crn(TOPIC)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    let b = r.binding();
    let id = b.id.clone().unwrap();
    assert!(id.starts_with("rb-"), "{id}");
    let self_link = env.url(&format!("/iam/v2/role-bindings/{id}"));
    assert_eq!(r.header("location"), self_link);
    assert_eq!(b.kind.as_deref(), Some("RoleBinding"));
    assert_eq!(b.api_version.as_deref(), Some("iam/v2"));
    assert_eq!(b.principal.as_deref(), Some(principal.as_str()));
    assert_eq!(b.crn_pattern, Some(crn(TOPIC)));
    let meta = b.metadata.clone().unwrap();
    assert_eq!(meta.self_link.as_deref(), Some(self_link.as_str()));
    assert_eq!(
        meta.resource_name,
        Some(crn(&format!("/role-binding={id}")))
    );
    assert!(is_rfc3339_seconds_z(meta.created_at.as_deref().unwrap()));

    let got = env
        .api(Method::GET, &format!("/iam/v2/role-bindings/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.binding(), b);
    let (listed, _) = env
        .list_bindings(&format!("crn_pattern={}", enc(&crn(TOPIC))))
        .await;
    assert_eq!(listed, vec![b.clone()]);

    let deleted = env
        .api(Method::DELETE, &format!("/iam/v2/role-bindings/{id}"), None)
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::OK,
        "200 with the deleted binding"
    );
    assert_eq!(deleted.binding(), b);
    // a missing binding: 403 with the 40301 body, to GET and to DELETE
    missing(
        &env.api(Method::GET, &format!("/iam/v2/role-bindings/{id}"), None)
            .await,
    );
    missing(
        &env.api(Method::DELETE, &format!("/iam/v2/role-bindings/{id}"), None)
            .await,
    );
    let calls = env.server.state().role_binding_calls();
    assert_eq!(
        (calls.list, calls.create, calls.get, calls.delete),
        (1, 1, 2, 2)
    );
    assert_eq!(env.server.state().calls().total, 7, "1 invitation + 6");
    env.server.shutdown().await;
}

#[tokio::test]
async fn role_binding_lists_require_crn_pattern_nest_with_a_star_and_filter_exactly() {
    let env = env().await;
    let jane = format!("User:{}", env.invitee("jane@example.com").await);
    let joe = format!("User:{}", env.invitee("joe@example.com").await);
    for (p, role, rest) in [
        (&jane, "OrganizationAdmin", ""),
        (&jane, "EnvironmentAdmin", "/environment=env-1"),
        (&jane, "EnvironmentAdmin", "/environment=env-10"),
        (&jane, "DeveloperRead", TOPIC),
        (&joe, "EnvironmentAdmin", "/environment=env-1"),
    ] {
        assert_eq!(
            env.bind(p, role, &crn(rest)).await.status,
            StatusCode::CREATED
        );
    }
    let r = env.api(Method::GET, "/iam/v2/role-bindings", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_filter");
    assert_eq!(r.parameter().as_deref(), Some("crn_pattern"));
    let count = |q: String| {
        let env = &env;
        async move { env.list_bindings(&q).await.0.len() }
    };
    let env1 = enc(&crn("/environment=env-1"));
    assert_eq!(
        count(format!("crn_pattern={env1}")).await,
        2,
        "that scope only"
    );
    assert_eq!(
        count(format!("crn_pattern={env1}%2F*")).await,
        3,
        "and beneath, not env-10"
    );
    assert_eq!(
        count(format!(
            "crn_pattern={}&principal={}",
            enc(&crn("/*")),
            enc(&jane)
        ))
        .await,
        4
    );
    assert_eq!(
        count(format!(
            "crn_pattern={}&role_name=EnvironmentAdmin",
            enc(&crn("/*"))
        ))
        .await,
        3
    );
    assert_eq!(
        count(format!(
            "crn_pattern={}&role_name=Environment",
            enc(&crn("/*"))
        ))
        .await,
        0,
        "exact, not partial"
    );
    let r = env
        .api(
            Method::GET,
            "/iam/v2/role-bindings?crn_pattern=x&email=a",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    env.server.shutdown().await;
}

#[tokio::test]
async fn role_binding_pages_follow_next_with_the_filters() {
    let env = env().await;
    let uid = env.invitee("jane@example.com").await;
    let principal = format!("User:{uid}");
    for i in 0..250 {
        env.server.state().seed_role_binding(&CreateRoleBinding {
            principal: principal.clone(),
            role_name: "EnvironmentAdmin".into(),
            crn_pattern: crn(&format!("/environment=env-{i}")),
        });
    }
    // someone else's binding, which the principal filter must keep out of every page
    env.server.state().seed_role_binding(&CreateRoleBinding {
        principal: "User:u-other".into(),
        role_name: "EnvironmentAdmin".into(),
        crn_pattern: crn("/environment=env-0"),
    });
    let (all, pages) = env
        .list_bindings(&format!(
            "crn_pattern={}&principal={}&page_size=100",
            enc(&crn("/*")),
            enc(&principal)
        ))
        .await;
    assert_eq!((all.len(), pages), (250, 3));
    let ids: HashSet<_> = all.iter().map(|b| b.id.clone().unwrap()).collect();
    assert_eq!(ids.len(), 250);
    assert!(
        all.iter()
            .all(|b| b.principal.as_deref() == Some(principal.as_str()))
    );
    let r = env
        .api(
            Method::GET,
            &format!(
                "/iam/v2/role-bindings?crn_pattern={}&page_size=101",
                enc(&crn("/*"))
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_role_at_the_wrong_scope_is_a_400_in_confluents_shape() {
    let env = env().await;
    let principal = format!("User:{}", env.invitee("jane@example.com").await);
    for (role, rest) in [
        ("DeveloperRead", "/environment=env-1/cloud-cluster=lkc-1"),
        ("EnvironmentAdmin", TOPIC),
        ("OrganizationAdmin", "/environment=env-1"),
        ("NoSuchRole", ""),
    ] {
        let r = env.bind(&principal, role, &crn(rest)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{role} {rest}");
        let e = &r.failure().errors[0];
        assert_eq!(e.status.as_deref(), Some("400"));
        assert_eq!(e.code.as_deref(), Some("invalid_configuration"));
        assert!(e.detail.as_deref().unwrap().contains(role), "{e:?}");
        assert_eq!(
            e.source.as_ref().and_then(|s| s.pointer.as_deref()),
            Some("/role_name")
        );
    }
    for (body, pointer) in [
        (
            json!({"role_name": "OrganizationAdmin", "crn_pattern": crn("")}),
            "/principal",
        ),
        (
            json!({"principal": principal, "role_name": "OrganizationAdmin", "crn_pattern": "env-1"}),
            "/crn_pattern",
        ),
        (
            json!({"principal": principal, "crn_pattern": crn("")}),
            "/role_name",
        ),
    ] {
        let r = env
            .api(Method::POST, "/iam/v2/role-bindings", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.pointer().as_deref(), Some(pointer));
    }
    assert!(env.server.state().role_bindings().is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_binding_is_a_409_naming_the_existing_one() {
    let env = env().await;
    let principal = format!("User:{}", env.invitee("jane@example.com").await);
    let first = env
        .bind(&principal, "EnvironmentAdmin", &crn("/environment=env-1"))
        .await;
    let id = first.binding().id.unwrap();
    // the same binding, with the CRN percent-encoded as the service has returned it
    let encoded = crn("/environment=env-1").replace("crn://", "crn%3A//");
    let again = env.bind(&principal, "EnvironmentAdmin", &encoded).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "resource_already_exists");
    assert!(again.detail().contains(&id), "{}", again.detail());
    assert_eq!(
        again.header("location"),
        env.url(&format!("/iam/v2/role-bindings/{id}"))
    );
    assert_eq!(env.server.state().role_bindings().len(), 1);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_binding_needs_a_user_of_the_organization_as_principal() {
    let env = env_with_another_organization().await;
    let inv = env.create("jane@example.com").await.invitation();
    for principal in [
        format!("User:{}", inv.id.as_deref().unwrap()),
        "User:u-nobody".to_owned(),
        "Group:pool-1".to_owned(),
    ] {
        let r = env
            .bind(&principal, "EnvironmentAdmin", &crn("/environment=env-1"))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{principal}");
        assert_eq!(r.code(), "user_unauthorized");
    }
    let uid = inv.user_id().unwrap();
    let ok = env
        .bind(
            &format!("User:{uid}"),
            "EnvironmentAdmin",
            &crn("/environment=env-1"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    // a scope in another organization is not ours to bind
    let r = env
        .bind(
            &format!("User:{uid}"),
            "OrganizationAdmin",
            &format!("crn://confluent.cloud/organization={OTHER_ORG}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // the other organization's key sees none of the main organization's bindings
    let other = env
        .send(
            Method::GET,
            &format!("/iam/v2/role-bindings?crn_pattern={}", enc(&crn("/*"))),
            None,
            Auth::Basic("other-key", "other-secret"),
        )
        .await
        .unwrap();
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body["data"], json!([]));
    assert!(env.server.state().role_bindings_in(OTHER_ORG).is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_user_deletes_their_bindings() {
    let env = env().await;
    let jane = env.invitee("jane@example.com").await;
    let joe = env.invitee("joe@example.com").await;
    for uid in [&jane, &joe] {
        env.bind(
            &format!("User:{uid}"),
            "EnvironmentAdmin",
            &crn("/environment=env-1"),
        )
        .await;
    }
    let r = env
        .api(Method::DELETE, &format!("/iam/v2/users/{jane}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let left: Vec<_> = env
        .server
        .state()
        .role_bindings()
        .into_iter()
        .filter_map(|b| b.principal)
        .collect();
    assert_eq!(left, vec![format!("User:{joe}")]);
    env.server.shutdown().await;
}

#[tokio::test]
async fn role_bindings_share_the_faults_and_the_rate_limit_of_invitations() {
    let env = env().await;
    let state = env.server.state();
    let principal = format!("User:{}", env.invitee("jane@example.com").await);
    // a fault on the role-binding path hits role bindings only
    state.inject(Fault::new(
        Some("GET"),
        "/iam/v2/role-bindings",
        1,
        FaultAction::Status { status: 500 },
    ));
    assert_eq!(
        env.api(Method::GET, "/iam/v2/invitations", None)
            .await
            .status,
        StatusCode::OK
    );
    let list = format!("/iam/v2/role-bindings?crn_pattern={}", enc(&crn("/*")));
    assert_eq!(
        env.api(Method::GET, &list, None).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // a create whose answer is lost did commit
    state.inject(Fault::new(
        Some("POST"),
        "/iam/v2/role-bindings",
        1,
        FaultAction::CommitThen500,
    ));
    let r = env
        .bind(&principal, "EnvironmentAdmin", &crn("/environment=env-1"))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(state.role_bindings().len(), 1);
    assert_eq!(state.calls().faults_injected, 2);
    // one bucket per credential, whichever API is called
    state.set_rate_limit(Some(RateLimit {
        per_second: 0.2,
        burst: 2,
    }));
    assert_eq!(
        env.api(Method::GET, "/iam/v2/invitations", None)
            .await
            .status,
        StatusCode::OK
    );
    let r = env.api(Method::GET, &list, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-ratelimit-remaining"), "0");
    assert_eq!(
        env.api(Method::GET, &list, None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(state.calls().rate_limited, 1);
    assert_eq!(
        state.role_binding_calls().list,
        3,
        "refused requests count too"
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn role_binding_control_endpoints() {
    let env = env().await;
    let body = json!({"principal": "User:u-x", "role_name": "EnvironmentAdmin",
                      "crn_pattern": crn("/environment=env-1")});
    let r = env
        .control(Method::POST, "/_mock/role-bindings", Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.binding().id.unwrap();
    let r = env
        .control(Method::POST, "/_mock/role-bindings", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "the same binding again");
    assert_eq!(r.binding().id.as_deref(), Some(id.as_str()));
    let r = env.control(Method::GET, "/_mock/role-bindings", None).await;
    let all: Vec<RemoteRoleBinding> = serde_json::from_value(r.body).unwrap();
    assert_eq!(all.len(), 1);
    let r = env
        .control(
            Method::POST,
            "/_mock/role-bindings",
            Some(json!({"principal": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = env
        .control(Method::DELETE, &format!("/_mock/role-bindings/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = env
        .control(Method::DELETE, &format!("/_mock/role-bindings/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // controls are not counted
    let r = env
        .control(Method::GET, "/_mock/calls/role-bindings", None)
        .await;
    let counts: RoleBindingCalls = serde_json::from_value(r.body).unwrap();
    assert_eq!(counts, RoleBindingCalls::default());
    let list = format!("/iam/v2/role-bindings?crn_pattern={}", enc(&crn("/*")));
    env.api(Method::GET, &list, None).await;
    assert_eq!(env.server.state().role_binding_calls().list, 1);
    // reset forgets bindings and zeroes the counters
    env.server.state().seed_role_binding(&CreateRoleBinding {
        principal: "User:u-y".into(),
        role_name: "OrganizationAdmin".into(),
        crn_pattern: crn(""),
    });
    assert_eq!(
        env.control(Method::POST, "/_mock/reset", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(env.server.state().role_bindings().is_empty());
    assert_eq!(
        env.server.state().role_binding_calls(),
        RoleBindingCalls::default()
    );
    env.server.shutdown().await;
}

/// The STS exchange answers what its file declares (200 `TokenExchangeReply`, 400 `Failure`),
/// and the token it issues authenticates `/iam/v2` as `Bearer`.
#[tokio::test]
async fn sts_exchange_follows_its_spec() {
    use base64::Engine as _;
    let env = env_with(MockConfig {
        sts_pools: vec![confluent_mock::StsPool {
            id: "pool-h1".into(),
            audience: "confluent".into(),
            subject: None,
        }],
        ..MockConfig::default()
    })
    .await;
    let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let exp = jiff::Timestamp::now().as_second() + 600;
    let jwt = format!(
        "{}.{}.{}",
        enc(b"{}"),
        enc(format!(r#"{{"aud":"confluent","exp":{exp},"sub":"s"}}"#).as_bytes()),
        enc(b"sig")
    );
    let url = format!("{}/sts/v1/oauth2/token", env.server.base_url());
    let post = |form: Vec<(&'static str, String)>| {
        let http = env.http.clone();
        let url = url.clone();
        async move {
            let body = form
                .iter()
                .map(|(k, v)| format!("{k}={}", v.replace(':', "%3A")))
                .collect::<Vec<_>>()
                .join("&");
            let r = http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let headers = r.headers().clone();
            let body: Value = r.json().await.unwrap();
            conform(
                &Method::POST,
                "/sts/v1/oauth2/token",
                status,
                &headers,
                &body,
            );
            (status, body)
        }
    };
    let form = |grant: &str, expires: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("subject_token", jwt.clone()),
            ("identity_pool_id", "pool-h1".to_owned()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:jwt".to_owned(),
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_owned(),
            ),
            ("expires_in", expires.to_owned()),
        ]
    };
    let grant = "urn:ietf:params:oauth:grant-type:token-exchange";
    let (status, body) = post(form(grant, "300")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 300);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(confluent_mock::STS_TOKEN_PREFIX));
    let (status, body) = post(form("password", "300")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "unsupported_grant_type");
    let (status, body) = post(form(grant, "901")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "invalid_request");
    let list = env
        .http
        .get(format!("{}/iam/v2/invitations", env.server.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let m = env.server.state();
    assert_eq!(
        (m.sts_exchanges().issued, m.sts_exchanges().total()),
        (1, 3)
    );
}
