//! InvitationPolicies: what a namespace may grant, decided before any call. Each test labels its
//! own namespace and writes policies that select that label only (they are cluster-scoped:
//! a policy selecting every namespace would reach the tests running beside it).

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use crate::harness::*;
use crate::role_bindings::{ENV, TOPIC, create_bound, listing, remote_ids, status_ids};
use confluent_invitation_operator::reason;
use confluent_invitation_operator::role_bindings::resource::RoleBindingState;

/// Labels this test's namespace `e2e-policy=<namespace>`, the label its policies select.
async fn label_namespace(env: &Env) {
    let api: Api<Namespace> = Api::all(env.kube.clone());
    api.patch(
        &env.ns,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"e2e-policy": env.ns}}})),
    )
    .await
    .expect("namespace labelled");
}

/// Applies the InvitationPolicy `<namespace>-<name>` selecting this test's namespace, with
/// `spec` (YAML, indented by four) besides the selector, as a cluster admin would.
fn apply_policy(env: &Env, name: &str, spec: &str) -> String {
    let full = format!("{}-{name}", env.ns);
    let manifest = format!(
        "apiVersion: iam.ccloud.dev/v1alpha1\nkind: InvitationPolicy\nmetadata:\n  name: {full}\nspec:\n  namespaceSelector:\n    matchLabels:\n      e2e-policy: {}\n{spec}",
        env.ns
    );
    let (ok, out) = kubectl_apply(&manifest, &[]);
    assert!(ok, "policy {full} applied: {out}");
    full
}

async fn delete_policy(env: &Env, full: &str) {
    let api: Api<confluent_invitation_operator::invitation_policy::resource::InvitationPolicy> =
        Api::all(env.kube.clone());
    let _ = api.delete(full, &DeleteParams::default()).await;
}

/// No call concerned any Invitation: no create, read, deletion or role-binding call (the
/// credential's own snapshot list is no call for anyone).
fn nothing_sent_for_anyone(env: &Env) {
    let calls = env.remote().calls();
    assert_eq!(
        (
            calls.create,
            calls.get,
            calls.delete,
            calls.get_user,
            calls.delete_user
        ),
        (0, 0, 0, 0, 0),
        "{calls:?}"
    );
    let bindings = env.remote().role_binding_calls();
    assert_eq!(
        (
            bindings.list,
            bindings.create,
            bindings.get,
            bindings.delete
        ),
        (0, 0, 0, 0),
        "{bindings:?}"
    );
}

/// The status entry of the item `role` on a pattern ending in `crn_end`.
fn entry<'a>(
    entries: &'a [confluent_invitation_operator::role_bindings::resource::RoleBindingStatus],
    role: &str,
) -> &'a confluent_invitation_operator::role_bindings::resource::RoleBindingStatus {
    entries
        .iter()
        .find(|e| e.role_name == role)
        .unwrap_or_else(|| panic!("an entry for {role}: {entries:#?}"))
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn what_no_grant_covers_is_refused_naming_the_policy_and_never_sent() {
    let env = env("policy-grants").await;
    label_namespace(&env).await;
    let policy = apply_policy(
        &env,
        "team",
        "  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"environment=env-abc\"]\n    - roles: [DeveloperRead]\n      scopes: [\"environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=ord*\"]\n",
    );
    // a second policy selecting the namespace narrows further: both must permit
    let narrower = apply_policy(
        &env,
        "narrower",
        "  grants:\n    - roles: [EnvironmentAdmin, DeveloperRead]\n      scopes: [\"environment=env-abc\"]\n",
    );
    let items = [
        ("EnvironmentAdmin".to_string(), env.crn(ENV)),
        ("DeveloperRead".to_string(), TOPIC.to_string()),
        ("OrganizationAdmin".to_string(), env.crn("")),
        (
            "EnvironmentAdmin".to_string(),
            "environment=env-b".to_string(),
        ),
        (
            "DeveloperWrite".to_string(),
            "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders".to_string(),
        ),
    ];
    env.create(&listing(invitation("jane", "jane@example.com"), &items))
        .await;
    let inv = env
        .wait_for("jane", "two Bound, three Refused", |i| {
            let e = bindings_of(i);
            e.len() == 5
                && e.iter()
                    .filter(|e| e.state == RoleBindingState::Bound)
                    .count()
                    == 2
                && e.iter()
                    .filter(|e| e.state == RoleBindingState::Refused)
                    .count()
                    == 3
        })
        .await;
    let entries = bindings_of(&inv);
    for refused in [&entries[2], &entries[3], &entries[4]] {
        let message = refused.message.clone().unwrap_or_default();
        assert!(
            message.contains(&policy) || message.contains(&narrower),
            "names the policy: {message}"
        );
        assert!(refused.id.is_none(), "{refused:?}");
    }
    assert!(
        entries[2]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("OrganizationAdmin"),
        "{:?}",
        entries[2]
    );
    assert_eq!(
        env.remote().role_binding_calls().create,
        2,
        "only the permitted items reached Confluent"
    );
    let user = user_of(&inv);
    assert_eq!(remote_ids(&env, &user), status_ids(&inv));
    delete_policy(&env, &policy).await;
    delete_policy(&env, &narrower).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_protected_email_an_exclusive_item_or_delete_user_is_refused_with_no_call() {
    let env = env("policy-refusals").await;
    label_namespace(&env).await;
    let policy = apply_policy(
        &env,
        "team",
        "  protectedEmails: [owner@example.com]\n  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"environment=env-abc\"]\n",
    );
    env.create(&invitation("owner", "Owner@Example.com")).await;
    let mut exclusive = invitation("strip", "strip@example.com");
    exclusive.spec.exclusive_role_bindings = true;
    env.create(&exclusive).await;
    let mut delete_user = invitation("purge", "purge@example.com");
    delete_user.spec.deletion_policy =
        confluent_invitation_operator::invitation::resource::DeletionPolicy::DeleteUser;
    env.create(&delete_user).await;
    for (name, want) in [
        ("owner", reason::PRINCIPAL_PROTECTED),
        ("strip", reason::POLICY_VIOLATION),
        ("purge", reason::POLICY_VIOLATION),
    ] {
        let inv = env.wait_reason(name, want).await;
        let (ready, _, message) = ready_of(&inv).expect("Ready");
        assert_eq!(ready, "False", "{name}");
        assert!(
            message.contains(&policy),
            "{name} names the policy: {message}"
        );
    }
    nothing_sent_for_anyone(&env);
    // the protected one's deletion touches nothing either
    env.delete_and_wait_gone("owner").await;
    nothing_sent_for_anyone(&env);
    delete_policy(&env, &policy).await;
}

/// An email protected after its Invitation was granted: the deletion touches nothing, and its
/// Warning names the grant it leaves live (nothing records it once the Invitation is gone).
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_protected_emails_deletion_names_the_grant_it_leaves_live() {
    let env = env("policy-protect-late").await;
    label_namespace(&env).await;
    let grant =
        "  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"environment=env-abc\"]\n";
    let policy = apply_policy(&env, "team", grant);
    let items = [("EnvironmentAdmin".to_string(), env.crn(ENV))];
    let inv = create_bound(&env, invitation("lead", "lead@example.com"), &items).await;
    let id = entry(&bindings_of(&inv), "EnvironmentAdmin")
        .id
        .clone()
        .expect("an id");
    apply_policy(
        &env,
        "team",
        &format!("  protectedEmails: [lead@example.com]\n{grant}"),
    );
    env.wait_reason("lead", reason::PRINCIPAL_PROTECTED).await;
    let deletes = env.remote().role_binding_calls().delete;
    env.delete_and_wait_gone("lead").await;
    assert_eq!(
        env.remote().role_binding_calls().delete,
        deletes,
        "a protected person's binding is not deleted"
    );
    assert_eq!(remote_ids(&env, &user_of(&inv)).len(), 1, "the grant stays");
    let warned = env
        .events("lead")
        .await
        .into_iter()
        .find(|(kind, why, note)| {
            kind == "Warning" && why == reason::PRINCIPAL_PROTECTED && note.contains("nothing in")
        });
    let (_, _, note) = warned.expect("the deletion's Warning");
    assert!(
        note.contains(&id) && note.contains("no longer managed"),
        "the Warning names the grant left live: {note}"
    );
    delete_policy(&env, &policy).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn tightening_a_policy_keeps_a_live_binding_disallowed_or_revokes_it() {
    let env = env("policy-tighten").await;
    label_namespace(&env).await;
    let grant = "  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"environment=env-abc\"]\n    - roles: [DeveloperRead]\n      scopes: [\"environment=env-abc\"]\n";
    let policy = apply_policy(&env, "team", grant);
    let items = [
        ("EnvironmentAdmin".to_string(), env.crn(ENV)),
        ("DeveloperRead".to_string(), TOPIC.to_string()),
    ];
    let inv = create_bound(&env, invitation("dev", "dev@example.com"), &items).await;
    let user = user_of(&inv);
    let admin_id = entry(&bindings_of(&inv), "EnvironmentAdmin")
        .id
        .clone()
        .expect("an id");
    let deletes_before = env.remote().role_binding_calls().delete;

    // EnvironmentAdmin no longer granted, onDisallowedExisting: Keep (the default)
    apply_policy(
        &env,
        "team",
        "  grants:\n    - roles: [DeveloperRead]\n      scopes: [\"environment=env-abc\"]\n",
    );
    let inv = env
        .wait_for("dev", "EnvironmentAdmin Disallowed", |i| {
            bindings_of(i).iter().any(|e| {
                e.role_name == "EnvironmentAdmin" && e.state == RoleBindingState::Disallowed
            })
        })
        .await;
    let kept = entry(&bindings_of(&inv), "EnvironmentAdmin").clone();
    assert_eq!(
        kept.id.as_deref(),
        Some(admin_id.as_str()),
        "the id is kept"
    );
    assert!(
        kept.message
            .as_deref()
            .unwrap_or_default()
            .contains(&policy),
        "{kept:?}"
    );
    assert!(
        remote_ids(&env, &user).contains(&admin_id),
        "kept under Keep"
    );
    assert_eq!(
        env.remote().role_binding_calls().delete,
        deletes_before,
        "no DELETE under Keep"
    );

    // Revoke: the disallowed binding is deleted, and status says so
    apply_policy(
        &env,
        "team",
        "  onDisallowedExisting: Revoke\n  grants:\n    - roles: [DeveloperRead]\n      scopes: [\"environment=env-abc\"]\n",
    );
    let inv = env
        .wait_for("dev", "EnvironmentAdmin revoked", |i| {
            bindings_of(i)
                .iter()
                .any(|e| e.role_name == "EnvironmentAdmin" && e.state == RoleBindingState::Refused)
        })
        .await;
    assert!(!remote_ids(&env, &user).contains(&admin_id), "revoked");
    assert_eq!(remote_ids(&env, &user), status_ids(&inv));
    let (_, note) = env.wait_event("dev", reason::ROLE_BINDING_DELETED).await;
    assert!(note.contains(&admin_id), "{note}");
    delete_policy(&env, &policy).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn with_require_policy_an_unselected_namespace_may_do_nothing() {
    let mut env = env("policy-required").await;
    env.kill_operator();
    env.options_mut().extra_args = vec!["--require-policy".into()];
    env.start_operator();
    env.wait_ready().await;
    env.create(&invitation("jane", "jane@example.com")).await;
    let inv = env.wait_reason("jane", reason::POLICY_MISSING).await;
    let (ready, _, message) = ready_of(&inv).expect("Ready");
    assert_eq!(ready, "False");
    assert!(message.contains("no InvitationPolicy selects"), "{message}");
    nothing_sent_for_anyone(&env);

    // a policy selecting the namespace arrives: the Invitation goes ahead on its own
    label_namespace(&env).await;
    let policy = apply_policy(&env, "team", "");
    let inv = env.wait_phase("jane", "Sent", "True").await;
    assert!(
        inv.status
            .as_ref()
            .and_then(|s| s.invitation_id.clone())
            .is_some()
    );
    let api: Api<confluent_invitation_operator::invitation_policy::resource::InvitationPolicy> =
        Api::all(env.kube.clone());
    let seen = eventually("the policy counts its namespace", WAIT, || {
        let api = api.clone();
        let policy = policy.clone();
        async move {
            let p = api.get(&policy).await.ok()?;
            let status = p.status?;
            (status.selected_namespaces == 1).then_some(status)
        }
    })
    .await;
    assert_eq!(
        seen.ready().map(|c| c.status.as_str()),
        Some("True"),
        "{seen:?}"
    );
    delete_policy(&env, &policy).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn export_says_what_the_target_namespace_s_policies_would_refuse() {
    let env = env("policy-export").await;
    label_namespace(&env).await;
    let policy = apply_policy(
        &env,
        "team",
        "  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"environment=env-abc\"]\n",
    );
    let remote = env.remote();
    let invited = remote.seed_invitation("jane@example.com", None);
    let user = invited.user_id().expect("a user id").to_owned();
    for (role, crn) in [
        ("EnvironmentAdmin", env.crn(ENV)),
        ("DeveloperRead", env.crn(&format!("/{TOPIC}"))),
    ] {
        remote.seed_role_binding(&confluent_client::role_bindings::CreateRoleBinding {
            principal: confluent_client::role_bindings::user_principal(&user),
            role_name: role.into(),
            crn_pattern: crn,
        });
    }
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_confluent-invitation-operator"));
    cmd.args(["export", "--namespace", &env.ns])
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("CONFLUENT_CLOUD_ENDPOINT", env.mock.base_url())
        .env("CONFLUENT_CLOUD_API_KEY", API_KEY)
        .env("CONFLUENT_CLOUD_API_SECRET", API_SECRET);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("export joined")
        .expect("export ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: jane@example.com"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("DeveloperRead")
            && warnings[0].contains("would be Refused")
            && warnings[0].contains(&policy),
        "{stderr}"
    );
    // the manifests are whole all the same: the import decides, not the export
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("DeveloperRead") && stdout.contains("EnvironmentAdmin"),
        "{stdout}"
    );
    delete_policy(&env, &policy).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn two_teams_namespaces_each_grant_only_what_their_own_policy_says() {
    let mut env = env("policy-teams").await;
    // one operator over both namespaces (limited to this test's labelled Invitations)
    env.kill_operator();
    env.start_operator_across_namespaces();
    env.wait_ready().await;
    let team_b = test_support::create_namespace(&env.kube, &format!("{}-b", env.ns))
        .await
        .expect("team B's namespace");
    let namespaces: Api<Namespace> = Api::all(env.kube.clone());
    for (ns, team) in [(env.ns.clone(), "a"), (team_b.clone(), "b")] {
        namespaces
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"labels": {"e2e-team": format!("{}-{team}", env.ns)}}})),
            )
            .await
            .expect("namespace labelled");
    }
    let mut policies = Vec::new();
    for (team, scope) in [("a", "environment=env-abc"), ("b", "environment=env-b")] {
        let name = format!("{}-team-{team}", env.ns);
        let manifest = format!(
            "apiVersion: iam.ccloud.dev/v1alpha1\nkind: InvitationPolicy\nmetadata:\n  name: {name}\nspec:\n  namespaceSelector:\n    matchLabels:\n      e2e-team: {}-{team}\n  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"{scope}\"]\n",
            env.ns
        );
        let (ok, out) = kubectl_apply(&manifest, &[]);
        assert!(ok, "{out}");
        policies.push(name);
    }
    let both = [
        (
            "EnvironmentAdmin".to_string(),
            "environment=env-abc".to_string(),
        ),
        (
            "EnvironmentAdmin".to_string(),
            "environment=env-b".to_string(),
        ),
        ("OrganizationAdmin".to_string(), env.crn("")),
    ];
    let labelled = |mut inv: confluent_invitation_operator::invitation::resource::Invitation| {
        inv.metadata.labels = Some(std::collections::BTreeMap::from([(
            "e2e".to_string(),
            env.ns.clone(),
        )]));
        listing(inv, &both)
    };
    env.create(&labelled(invitation("ann", "ann@example.com")))
        .await;
    let b_api: Api<confluent_invitation_operator::invitation::resource::Invitation> =
        Api::namespaced(env.kube.clone(), &team_b);
    b_api
        .create(
            &kube::api::PostParams::default(),
            &labelled(invitation("bob", "bob@example.com")),
        )
        .await
        .expect("bob created");
    let states = |i: &confluent_invitation_operator::invitation::resource::Invitation| {
        bindings_of(i).iter().map(|e| e.state).collect::<Vec<_>>()
    };
    let ann = env
        .wait_for("ann", "env-abc Bound, the rest Refused", |i| {
            states(i)
                == [
                    RoleBindingState::Bound,
                    RoleBindingState::Refused,
                    RoleBindingState::Refused,
                ]
        })
        .await;
    let bob = eventually("bob: env-b Bound, the rest Refused", WAIT, || {
        let b_api = b_api.clone();
        async move {
            let i = b_api.get_opt("bob").await.ok().flatten()?;
            (states(&i)
                == [
                    RoleBindingState::Refused,
                    RoleBindingState::Bound,
                    RoleBindingState::Refused,
                ])
            .then_some(i)
        }
    })
    .await;
    for (inv, own, other) in [
        (&ann, &policies[0], &policies[1]),
        (&bob, &policies[1], &policies[0]),
    ] {
        for e in bindings_of(inv)
            .iter()
            .filter(|e| e.state == RoleBindingState::Refused)
        {
            let message = e.message.as_deref().unwrap_or_default();
            assert!(
                message.contains(own.as_str()),
                "names its own policy: {message}"
            );
            assert!(
                !message.contains(other.as_str()),
                "not the other team's: {message}"
            );
        }
    }
    assert_eq!(
        env.remote().role_binding_calls().create,
        2,
        "one POST per team: neither OrganizationAdmin nor the other team's environment was sent"
    );
    for name in &policies {
        delete_policy(&env, name).await;
    }
    let _ = b_api.delete("bob", &DeleteParams::default()).await;
    let _ = namespaces.delete(&team_b, &DeleteParams::default()).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_deletion_policy_no_longer_allowed_gives_way_to_delete_and_forgets_no_grant() {
    let env = env("policy-deletion").await;
    let items = [("EnvironmentAdmin".to_string(), env.crn(ENV))];
    let mut inv = invitation("dora", "dora@example.com");
    inv.spec.deletion_policy =
        confluent_invitation_operator::invitation::resource::DeletionPolicy::DeleteUser;
    let inv = create_bound(&env, inv, &items).await;
    let user = user_of(&inv);
    env.remote()
        .accept(&id_of(&inv))
        .expect("accepted in the mock");
    env.wait_phase("dora", "Accepted", "True").await;
    // a policy arrives that allows Delete and Orphan only (the default)
    label_namespace(&env).await;
    let policy = apply_policy(
        &env,
        "team",
        "  grants:\n    - roles: [EnvironmentAdmin]\n      scopes: [\"environment=env-abc\"]\n",
    );
    env.wait_reason("dora", reason::POLICY_VIOLATION).await;
    env.delete_and_wait_gone("dora").await;
    // (the first PolicyViolation Event is the apply-time refusal; this is the deletion's)
    let (kind, _, note) = eventually("the deletion's Warning", WAIT, || async {
        env.events("dora")
            .await
            .into_iter()
            .find(|e| e.1 == reason::POLICY_VIOLATION && e.2.contains("deleted as"))
    })
    .await;
    assert_eq!(kind, "Warning");
    assert!(
        note.contains("deleted as Delete") && note.contains(&policy),
        "{note}"
    );
    // as Delete: the member stays, the grant it recorded goes (never left live, unrecorded)
    assert_eq!(env.remote().calls().delete_user, 0, "no user deleted");
    assert!(
        env.bindings_of_user(&user).is_empty(),
        "its recorded binding is deleted with it"
    );
    delete_policy(&env, &policy).await;
}
