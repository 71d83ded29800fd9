//! Invalid manifests are refused by the API server, with a message naming the field.

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn invalid_manifests_are_refused_naming_the_field() {
    let env = env("validation").await;
    let manifest = |spec: &str| {
        format!(
            "apiVersion: iam.ccloud.dev/v1alpha1\nkind: Invitation\nmetadata:\n  name: bad\n  namespace: {}\nspec: {spec}\n",
            env.ns
        )
    };
    // kubectl leaves validation to a server that does it (1.25+), which names the field's path;
    // before that, kubectl's own schema check refuses first, in its own words
    let missing_email = if env.server_minor().await >= 25 {
        vec!["spec.email", "Required value"]
    } else {
        vec!["email", "required"]
    };
    for (spec, wants) in [
        ("{}", missing_email),
        (
            "{email: not-an-address}",
            vec!["spec.email", "should match"],
        ),
        ("{email: jаne@example.com}", vec!["spec.email"]), // Cyrillic а
        (
            "{email: a@example.com, authType: AUTH_TYPE_PASSKEY}",
            vec!["spec.authType", "AUTH_TYPE_SSO"],
        ),
        (
            "{email: a@example.com, deletionPolicy: Forget}",
            vec!["spec.deletionPolicy", "Orphan"],
        ),
        (
            "{email: a@example.com, favouriteColour: blue}",
            vec!["unknown field", "favouriteColour"],
        ),
        (
            "{email: a@example.com, reinviteOnExpiry: maybe}",
            vec!["reinviteOnExpiry", "boolean"],
        ),
        (
            "{email: a@example.com, credentialsSecretRef: {}}",
            vec!["spec.credentialsSecretRef.name", "Required"],
        ),
    ] {
        let (ok, out) = kubectl_apply(&manifest(spec), &[]);
        assert!(!ok, "{spec} was accepted: {out}");
        for want in wants {
            assert!(out.contains(want), "{spec}: {want:?} not in {out}");
        }
    }
    let (ok, out) = kubectl_apply(&manifest("{email: valid@example.com}"), &[]);
    assert!(ok, "a valid manifest is accepted: {out}");
    env.wait_phase("bad", "Sent", "True").await;
    assert_eq!(
        env.remote().calls().create,
        1,
        "only the valid one reached Confluent"
    );
}
