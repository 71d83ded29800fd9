//! `export`: the real binary lists the mock's organization and prints manifests; applying them
//! to the real API server adopts every invitation without sending one, and every role binding of
//! the invitees (exported as `spec.roleBindings`) without creating one.

use std::collections::HashSet;

use confluent_client::role_bindings::CreateRoleBinding;
use confluent_client::role_bindings::organization_of;
use confluent_invitation_operator::invitation::resource::{DeletionPolicy, Invitation};
use confluent_invitation_operator::role_bindings::resource::RoleBindingState;
use kube::api::{ListParams, PostParams};

use crate::harness::*;

/// More than one page of the API's 100.
const PEOPLE: usize = 103;

/// Runs `export` against the env's mock; returns (stdout, stderr).
async fn export(env: &Env, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--namespace", env.ns.as_str()];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = run_export(&env.mock.base_url(), true, &args).await;
    assert!(ok, "export failed: {stderr}");
    (stdout, stderr)
}

/// Runs `export` against the mock at `endpoint`, with the test's API key or no credentials at
/// all; returns (success, stdout, stderr).
async fn run_export(endpoint: &str, with_key: bool, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_confluent-invitation-operator"));
    cmd.arg("export")
        .args(args)
        .env_clear()
        .env("CONFLUENT_CLOUD_ENDPOINT", endpoint);
    if with_key {
        cmd.env("CONFLUENT_CLOUD_API_KEY", API_KEY)
            .env("CONFLUENT_CLOUD_API_SECRET", API_SECRET);
    }
    // the mock serves from this test's runtime: wait for the process off it
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("export joined")
        .expect("export ran");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 manifests");
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 progress");
    (out.status.success(), stdout, stderr)
}

fn parse(yaml: &str) -> Vec<Invitation> {
    yaml.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).expect("an Invitation manifest"))
        .collect()
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn an_exported_organization_applies_as_adoptions_without_a_single_create() {
    let env = env("export").await;
    let remote = env.remote();
    let seeded: Vec<_> = (0..PEOPLE)
        .map(|i| remote.seed_invitation(&format!("person.{i}@example.com"), None))
        .collect();
    let accepted = seeded[0].id.clone().unwrap();
    remote.accept(&accepted).unwrap();
    remote.expire(seeded[1].id.as_deref().unwrap()).unwrap();

    // Role bindings made out of band (console, Terraform) for the accepted member, a pending
    // invitee, the expired one (not exported by default), and a group (never exported).
    let org = organization_of(seeded[0].resource_name().unwrap())
        .unwrap()
        .to_owned();
    let crn = |rest: &str| format!("crn://confluent.cloud/organization={org}{rest}");
    let user = |i: usize| format!("User:{}", seeded[i].user_id().unwrap());
    let topic = "/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";
    let seed = |principal: String, role: &str, crn_pattern: String| {
        remote
            .seed_role_binding(&CreateRoleBinding {
                principal,
                role_name: role.into(),
                crn_pattern,
            })
            .id
            .unwrap()
    };
    let bound = [
        (0, "EnvironmentAdmin", crn("/environment=env-abc")),
        (0, "DeveloperRead", crn(topic)),
        (0, "DeveloperRead", crn(&format!("{topic}-*"))),
        (2, "MetricsViewer", crn("")),
        (
            2,
            "CloudClusterAdmin",
            crn("/environment=env-abc/cloud-cluster=lkc-1"),
        ),
    ]
    .map(|(i, role, crn_pattern)| {
        (
            i,
            role,
            crn_pattern.clone(),
            seed(user(i), role, crn_pattern),
        )
    });
    seed(user(1), "EnvironmentAdmin", crn("/environment=env-abc"));
    seed(
        "Group:group-1".into(),
        "EnvironmentAdmin",
        crn("/environment=env-abc"),
    );
    let lists_before = remote.role_binding_calls().list;

    let (yaml, progress) = export(&env, &[]).await;
    assert!(progress.contains("(2 pages)"), "{progress}");
    assert!(
        progress.contains("listed 7 role bindings (1 pages)"),
        "{progress}"
    );
    assert_eq!(
        remote.role_binding_calls().list - lists_before,
        1,
        "one organization-wide list, not one per invitee"
    );
    let manifests = parse(&yaml);
    let items_of = |email: &str| -> Vec<(String, String)> {
        manifests
            .iter()
            .find(|m| m.spec.email == email)
            .unwrap()
            .spec
            .role_bindings
            .iter()
            .map(|b| (b.role_name.clone(), b.crn_pattern.clone()))
            .collect()
    };
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
            .collect()
    };
    assert_eq!(
        items_of("person.0@example.com"),
        owned(&[
            ("EnvironmentAdmin", "environment=env-abc"),
            ("DeveloperRead", &topic[1..]),
            ("DeveloperRead", &format!("{}-*", &topic[1..])),
        ]),
        "relative to the organization, widest scope first"
    );
    assert_eq!(
        items_of("person.2@example.com"),
        owned(&[
            ("MetricsViewer", &format!("organization={org}")),
            (
                "CloudClusterAdmin",
                "environment=env-abc/cloud-cluster=lkc-1"
            ),
        ])
    );
    assert_eq!(
        manifests
            .iter()
            .filter(|m| !m.spec.role_bindings.is_empty())
            .count(),
        2,
        "only invitees with bindings list any"
    );
    assert!(manifests.iter().all(|m| !m.spec.exclusive_role_bindings));
    let lists_before = remote.role_binding_calls().list;
    let (bare, _) = export(&env, &["--no-role-bindings"]).await;
    assert_eq!(remote.role_binding_calls().list, lists_before, "no list");
    let bare = parse(&bare);
    assert_eq!(bare.len(), manifests.len());
    assert!(bare.iter().all(|m| m.spec.role_bindings.is_empty()));
    assert_eq!(manifests.len(), PEOPLE - 1, "the expired one is left out");
    let names: HashSet<_> = manifests
        .iter()
        .map(|m| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names.len(), manifests.len(), "unique names");
    assert!(
        manifests
            .iter()
            .all(|m| m.spec.deletion_policy == DeletionPolicy::Orphan)
    );
    let (again, _) = export(&env, &[]).await;
    assert_eq!(again, yaml, "stable: a re-export is identical");
    let (expired, warning) = export(&env, &["--status", "expired"]).await;
    assert!(warning.contains("cannot be adopted"), "{warning}");
    let expired = parse(&expired);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].spec.email, "person.1@example.com");
    assert_eq!(
        expired[0].spec.role_bindings.len(),
        1,
        "an exported invitee's bindings, whatever the status"
    );

    for m in &manifests {
        env.api
            .create(&PostParams::default(), m)
            .await
            .expect("manifest applies");
    }
    eventually("every exported Invitation Ready", WAIT * 2, || async {
        let list = env.api.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|i| ready_of(i).is_some_and(|r| r.0 == "True"))
            .count();
        (ready == PEOPLE - 1).then_some(())
    })
    .await;
    assert_eq!(env.remote().calls().create, 0, "not one invitation re-sent");
    assert_eq!(
        env.remote().role_binding_calls().create,
        0,
        "not one role binding created: each was adopted"
    );
    let name_of = |email: &str| {
        manifests
            .iter()
            .find(|m| m.spec.email == email)
            .and_then(|m| m.metadata.name.clone())
            .unwrap()
    };
    let name = name_of("person.0@example.com");
    let adopted = env.wait_phase(&name, "Accepted", "True").await;
    assert_eq!(id_of(&adopted), accepted);
    env.wait_event(&name, "Adopted").await;
    env.wait_event(&name, "RoleBindingAdopted").await;
    for person in [0, 2] {
        let name = name_of(&format!("person.{person}@example.com"));
        let inv = env
            .wait_reason(&name, if person == 0 { "Accepted" } else { "Sent" })
            .await;
        let status = inv.status.unwrap();
        let got: Vec<_> = status
            .role_bindings
            .iter()
            .map(|e| {
                (
                    e.role_name.as_str(),
                    e.crn_pattern.as_str(),
                    e.id.as_deref(),
                    e.state,
                )
            })
            .collect();
        let want: Vec<_> = bound
            .iter()
            .filter(|(i, ..)| *i == person)
            .map(|(_, role, crn_pattern, id)| {
                (
                    *role,
                    crn_pattern.as_str(),
                    Some(id.as_str()),
                    RoleBindingState::Bound,
                )
            })
            .collect();
        assert_eq!(
            got, want,
            "{name}: the seeded bindings, Bound, in spec order"
        );
    }
    assert_eq!(
        env.remote().role_bindings().len(),
        7,
        "nothing created, nothing deleted"
    );
    assert_eq!(env.remote().role_binding_calls().create, 0);
}

/// What stops an export is named, and nothing is printed on stdout: no credentials; a role
/// binding list the key may not read (with the way out, `--no-role-bindings`, which then works).
/// Needs no control plane: the binary and the mock only.
#[tokio::test]
async fn an_export_that_cannot_list_says_what_failed_and_prints_no_manifest() {
    let mock = test_support::start_mock(API_KEY, API_SECRET, confluent_mock::MockConfig::default())
        .await
        .expect("mock starts");
    mock.state().seed_invitation("someone@example.com", None);
    let endpoint = mock.base_url();
    let (ok, stdout, stderr) = run_export(&endpoint, false, &[]).await;
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("error: no credentials"), "{stderr}");

    mock.state().inject(confluent_mock::Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/role-bindings".into(),
        count: 1,
        action: confluent_mock::FaultAction::Status { status: 403 },
    });
    let (ok, stdout, stderr) = run_export(&endpoint, true, &[]).await;
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("error: listing role bindings:")
            && stderr.contains("HTTP 403")
            && stderr.contains("--no-role-bindings exports without them"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = run_export(&endpoint, true, &["--no-role-bindings"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("someone@example.com"), "{stdout}");
}

/// `export --groups`: invitees sharing the same access come out as one InvitationGroup, which
/// applies as adoptions: not one invitation nor one role binding created.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn exported_groups_apply_as_adoptions_without_a_create() {
    use confluent_invitation_operator::invitation_group::resource::InvitationGroup;
    let env = env("export-groups").await;
    let remote = env.remote();
    let seeded: Vec<_> = (0..3)
        .map(|i| remote.seed_invitation(&format!("member.{i}@example.com"), None))
        .collect();
    let org = organization_of(seeded[0].resource_name().unwrap())
        .unwrap()
        .to_owned();
    let env_crn = format!("crn://confluent.cloud/organization={org}/environment=env-abc");
    // members 0 and 1 share EnvironmentAdmin; member 2 has it and more
    for (i, role, pattern) in [
        (0, "EnvironmentAdmin", env_crn.clone()),
        (1, "EnvironmentAdmin", env_crn.clone()),
        (2, "EnvironmentAdmin", env_crn.clone()),
        (
            2,
            "MetricsViewer",
            format!("crn://confluent.cloud/organization={org}"),
        ),
    ] {
        remote.seed_role_binding(&CreateRoleBinding {
            principal: format!("User:{}", seeded[i].user_id().unwrap()),
            role_name: role.into(),
            crn_pattern: pattern,
        });
    }
    let (yaml, progress) = export(&env, &["--groups"]).await;
    assert!(
        progress.contains("grouped into 1 InvitationGroups (2 members); 1 Invitations stay"),
        "{progress}"
    );
    let docs: Vec<&str> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    assert_eq!(docs.len(), 2, "{yaml}");
    let group: InvitationGroup = serde_saphyr::from_str(docs[0]).expect("a group manifest");
    let single: Invitation = serde_saphyr::from_str(docs[1]).expect("an Invitation manifest");
    assert_eq!(
        group.spec.members,
        vec!["member.0@example.com", "member.1@example.com"]
    );
    assert_eq!(group.spec.role_bindings.len(), 1);
    assert_eq!(single.spec.email, "member.2@example.com");
    let groups: kube::Api<InvitationGroup> = kube::Api::namespaced(env.kube.clone(), &env.ns);
    groups
        .create(&PostParams::default(), &group)
        .await
        .expect("the group applies");
    env.api
        .create(&PostParams::default(), &single)
        .await
        .expect("the Invitation applies");
    let name = group.metadata.name.clone().unwrap();
    eventually("the exported group Ready", WAIT, || {
        let groups = groups.clone();
        let name = name.clone();
        async move {
            let g = groups.get_opt(&name).await.ok().flatten()?;
            (g.status?.ready()?.status == "True").then_some(())
        }
    })
    .await;
    env.wait_phase(single.metadata.name.as_deref().unwrap(), "Sent", "True")
        .await;
    assert_eq!(env.remote().calls().create, 0, "not one invitation re-sent");
    assert_eq!(
        env.remote().role_binding_calls().create,
        0,
        "not one role binding created: each was adopted"
    );
}
