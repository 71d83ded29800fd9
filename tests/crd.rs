//! The CRD: `crds/` and the Helm chart hold exactly what the code generates, the schema reads
//! well, and the CEL rules refuse changes to immutable fields.

use confluent_invitation_operator::invitation::resource::{
    AuthType, DeletionPolicy, Invitation, InvitationSpec, crd_yaml,
};
use kube::CustomResourceExt;

const CRD_FILE: &str = "crds/invitations.iam.ccloud.dev.yaml";
const CHART_CRD_FILE: &str =
    "deploy/helm/confluent-invitation-operator/crds/invitations.iam.ccloud.dev.yaml";

fn generated() -> String {
    crd_yaml().expect("the CRD renders")
}

/// The InvitationPolicy CRD, in `crds/` and the chart, as generated.
#[test]
fn the_policy_crd_files_match_the_generator() {
    let generated = confluent_invitation_operator::invitation_policy::resource::crd_yaml()
        .expect("the policy CRD renders");
    for file in [
        "crds/invitationpolicies.iam.ccloud.dev.yaml",
        "deploy/helm/confluent-invitation-operator/crds/invitationpolicies.iam.ccloud.dev.yaml",
    ] {
        let committed = std::fs::read_to_string(file).expect("the policy CRD is committed");
        assert!(
            committed == generated,
            "{file} differs from the generated CRD: run `cargo run -- crd invitation-policy > {file}`"
        );
    }
}

/// The InvitationGroup CRD, in `crds/` and the chart, as generated.
#[test]
fn the_group_crd_files_match_the_generator() {
    let generated = confluent_invitation_operator::invitation_group::resource::crd_yaml()
        .expect("the group CRD renders");
    for file in [
        "crds/invitationgroups.iam.ccloud.dev.yaml",
        "deploy/helm/confluent-invitation-operator/crds/invitationgroups.iam.ccloud.dev.yaml",
    ] {
        let committed = std::fs::read_to_string(file).expect("the group CRD is committed");
        assert!(
            committed == generated,
            "{file} differs from the generated CRD: run `cargo run -- crd invitation-group > {file}`"
        );
    }
}

#[test]
fn crds_directory_matches_the_generator() {
    let committed = std::fs::read_to_string(CRD_FILE).expect("crds/ holds the CRD");
    assert!(
        committed == generated(),
        "{CRD_FILE} differs from the generated CRD: run `cargo run -- crd invitation > {CRD_FILE}` (and copy it to the chart)"
    );
}

#[test]
fn helm_chart_crd_matches_the_generator() {
    let committed = std::fs::read_to_string(CHART_CRD_FILE).expect("the chart holds the CRD");
    assert!(
        committed == generated(),
        "{CHART_CRD_FILE} differs from the generated CRD: copy {CRD_FILE} over it"
    );
}

#[test]
fn the_resource_surface_is_as_designed() {
    let crd = Invitation::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("invitations.iam.ccloud.dev")
    );
    assert_eq!(crd.spec.group, "iam.ccloud.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "Invitation");
    assert_eq!(crd.spec.names.plural, "invitations");
    assert_eq!(crd.spec.names.short_names, Some(vec!["inv".to_string()]));
    assert_eq!(crd.spec.names.categories, Some(vec!["ccloud".to_string()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<&str> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["Email", "Phase", "User", "Ready", "Paused", "Age"]
    );

    let schema = serde_json::to_value(version.schema.as_ref().unwrap()).unwrap();
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["email"]));
    let props = &spec["properties"];
    assert_eq!(
        props["authType"]["enum"],
        serde_json::json!(["AUTH_TYPE_SSO", "AUTH_TYPE_LOCAL"])
    );
    assert_eq!(
        props["deletionPolicy"]["enum"],
        serde_json::json!(["Delete", "Orphan", "DeleteUser"])
    );
    assert_eq!(props["deletionPolicy"]["default"], "Delete");
    assert!(props["email"]["pattern"].is_string());
    // every field explains itself in `kubectl explain invitation.spec`
    for field in [
        "email",
        "authType",
        "credentialsSecretRef",
        "deletionPolicy",
        "reinviteOnExpiry",
    ] {
        let d = props[field]["description"].as_str().unwrap_or_default();
        assert!(d.len() > 30, "spec.{field} lacks a description: {d:?}");
    }
    assert!(
        props["authType"]["description"]
            .as_str()
            .unwrap()
            .contains("Immutable")
    );
}

fn invitation(email: &str, auth: Option<AuthType>) -> Invitation {
    Invitation::new(
        "jane",
        InvitationSpec {
            auth_type: auth,
            ..InvitationSpec::of_email(email)
        },
    )
}

#[test]
fn cel_rules_refuse_changing_immutable_fields() {
    use kube::core::cel::validate_cel_update;
    let old = invitation("jane@example.com", Some(AuthType::Sso));

    let mut same = old.clone();
    same.spec.reinvite_on_expiry = true;
    same.spec.deletion_policy = DeletionPolicy::Orphan;
    assert!(
        validate_cel_update(&same, &old).is_ok(),
        "mutable fields may change"
    );

    let email_changed = invitation("john@example.com", Some(AuthType::Sso));
    let err = validate_cel_update(&email_changed, &old).expect_err("email is immutable");
    assert!(format!("{err:?}").contains("email is immutable"), "{err:?}");

    let auth_changed = invitation("jane@example.com", Some(AuthType::Local));
    let err = validate_cel_update(&auth_changed, &old).expect_err("authType is immutable");
    assert!(
        format!("{err:?}").contains("authType is immutable"),
        "{err:?}"
    );
}
