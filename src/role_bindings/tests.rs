//! The decision tables: (desired, observed, ledger) → (reads, steps, next ledger), and what the
//! steps' ends make of the ledger. Every scenario of a forgotten grant is a row here.

use std::collections::BTreeSet;

use super::*;
use crate::invitation::resource::DeletionPolicy;
use crate::role_bindings::resource::{RoleBinding, RoleBindingState as S, RoleBindingStatus};
use confluent_client::role_bindings::organization_of;
use confluent_client::role_bindings::{RemoteRoleBinding, RoleBindingFilter};

const ORG: &str = "9bb441c4-edef-46ac-8a41-c49e44a3fd9a";
const USER: &str = "u-jane1";
const ME: &str = "User:u-jane1";
const OLD: &str = "User:u-old";
const ENV: &str = "/environment=env-abc";
const TOPIC: &str = "/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";

fn abs(rest: &str) -> String {
    format!("crn://confluent.cloud/organization={ORG}{rest}")
}

fn item(role: &str, crn: &str) -> RoleBinding {
    RoleBinding {
        role_name: role.into(),
        crn_pattern: crn.into(),
    }
}

fn remote(id: &str, principal: &str, role: &str, crn: &str) -> RemoteRoleBinding {
    RemoteRoleBinding {
        id: Some(id.into()),
        principal: Some(principal.into()),
        role_name: Some(role.into()),
        crn_pattern: Some(crn.into()),
        ..RemoteRoleBinding::default()
    }
}

fn mine(id: &str, role: &str, rest: &str) -> RemoteRoleBinding {
    remote(id, ME, role, &abs(rest))
}

/// A ledger entry of `principal`.
fn of(principal: &str, id: Option<&str>, role: &str, rest: &str, state: S) -> RoleBindingStatus {
    RoleBindingStatus {
        role_name: role.into(),
        crn_pattern: abs(rest),
        id: id.map(str::to_owned),
        state,
        message: None,
        principal: Some(principal.into()),
    }
}

fn entry(id: Option<&str>, role: &str, rest: &str, state: S) -> RoleBindingStatus {
    of(ME, id, role, rest, state)
}

fn key(principal: &str, role: &str, rest: &str) -> Key {
    Key {
        principal: principal.into(),
        role_name: role.into(),
        crn_pattern: abs(rest),
    }
}

/// EnvironmentAdmin on the environment (absolute), DeveloperRead on the topic (relative).
fn two() -> Vec<RoleBinding> {
    vec![
        item("EnvironmentAdmin", &abs(ENV)),
        item("DeveloperRead", &TOPIC[1..]),
    ]
}

fn desire(items: &[RoleBinding]) -> Vec<Desired> {
    desired(items, Some(ORG), USER, None)
}

/// What the lists of the invitee's scopes showed: (scope, its bindings or why it failed).
fn scoped(lists: &[(&str, Result<Vec<RemoteRoleBinding>, &str>)]) -> Observed {
    let mut o = Observed::default();
    for (rest, shown) in lists {
        o.list(
            ME,
            RoleBindingFilter::scope(abs(rest)),
            shown.clone().map_err(str::to_owned),
        );
    }
    o
}

/// Both scopes of [`two`] listed, showing `bindings`.
fn both_listed(bindings: &[RemoteRoleBinding]) -> Observed {
    let at = |rest: &str| {
        bindings
            .iter()
            .filter(|b| {
                b.crn_pattern
                    .as_deref()
                    .is_some_and(|c| confluent_client::role_bindings::same_crn(c, &abs(rest)))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    scoped(&[(ENV, Ok(at(ENV))), (TOPIC, Ok(at(TOPIC)))])
}

fn org_wide(bindings: &[RemoteRoleBinding]) -> Observed {
    let mut o = Observed::default();
    o.list(
        ME,
        RoleBindingFilter::nested(&abs("")),
        Ok(bindings.to_vec()),
    );
    o
}

const NONE: &BTreeSet<Key> = &BTreeSet::new();

fn live<'a>(desired: &'a [Desired], exclusive: bool) -> Live<'a> {
    Live {
        invitee: Some(USER),
        recorded_user: Some(USER),
        organization: Some(ORG),
        desired,
        exclusive,
        allowed_roles: None,
        on_disallowed: OnDisallowed::Keep,
        refused_recently: NONE,
    }
}

fn states(p: &Plan) -> Vec<(S, Option<&str>)> {
    p.ledger
        .iter()
        .map(|e| (e.state, e.id.as_deref()))
        .collect()
}

fn deletes(p: &Plan) -> Vec<(&str, DeleteCause)> {
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::Delete { id, cause, .. } => Some((id.as_str(), *cause)),
            _ => None,
        })
        .collect()
}

fn creates(p: &Plan) -> Vec<usize> {
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::Create { entry, .. } => Some(*entry),
            _ => None,
        })
        .collect()
}

fn ids(ledger: &[RoleBindingStatus]) -> BTreeSet<&str> {
    ledger.iter().filter_map(|e| e.id.as_deref()).collect()
}

// ---- desired ----

#[test]
fn relative_patterns_resolve_in_the_invitations_organization() {
    let cases: [(&str, Option<&str>, Result<String, &str>); 11] = [
        (&abs(ENV), Some(ORG), Ok(abs(ENV))),
        (&abs(ENV), None, Ok(abs(ENV))),
        ("environment=env-abc", Some(ORG), Ok(abs(ENV))),
        (&TOPIC[1..], Some(ORG), Ok(abs(TOPIC))),
        (&format!("organization={ORG}"), None, Ok(abs(""))),
        // the service's own escapes are decoded
        (
            &abs(ENV).replace("crn://", "crn%3A//"),
            Some(ORG),
            Ok(abs(ENV)),
        ),
        ("environment=env-abc", None, Err("OrganizationUnknown")),
        (
            "crn://confluent.cloud/organization=other/environment=e",
            Some(ORG),
            Err("OtherOrganization"),
        ),
        (
            "crn://confluent.cloud/environment=e",
            Some(ORG),
            Err("Malformed"),
        ),
        ("environment=env-abc//topic=x", Some(ORG), Err("Malformed")),
        ("cloud-cluster=lkc-1", Some(ORG), Err("Malformed")),
    ];
    for (pattern, org, want) in cases {
        let got = resolve(pattern, org).map_err(|e| match e {
            PatternError::OrganizationUnknown { .. } => "OrganizationUnknown",
            PatternError::OtherOrganization { .. } => "OtherOrganization",
            PatternError::Malformed { .. } => "Malformed",
        });
        assert_eq!(got, want, "{pattern} in {org:?}");
    }
    assert!(matches!(
        resolve("https://x/organization=o", Some(ORG)),
        Err(PatternError::Malformed { .. })
    ));
    let inv = format!("crn://confluent.cloud/organization={ORG}/invitation=i-abc12");
    assert_eq!(
        resolve("environment=env-abc", organization_of(&inv)),
        Ok(abs(ENV))
    );
}

#[test]
fn the_desired_set_is_for_the_user_principal_and_checked_against_allowed_roles() {
    let d = desire(&two());
    let b = d[1].binding.as_ref().unwrap();
    assert_eq!(
        (
            b.principal.as_str(),
            b.role_name.as_str(),
            b.crn_pattern.clone()
        ),
        (ME, "DeveloperRead", abs(TOPIC))
    );
    assert!(d.iter().all(|d| d.refusal.is_none()));
    let allowed = ["EnvironmentAdmin".to_owned()];
    let d = desired(&two(), Some(ORG), USER, Some(&allowed));
    assert_eq!(d[0].refusal, None);
    let why = d[1].refusal.as_deref().unwrap_or_default();
    assert!(why.contains("--allowed-roles: EnvironmentAdmin"), "{why}");
    assert!(role_allowed(None, "OrganizationAdmin"), "no flag: any role");
    assert!(
        !role_allowed(Some(&[]), "OrganizationAdmin"),
        "an empty list: none"
    );
    let unknown = desired(&[item("DeveloperRead", "environment=e")], None, USER, None);
    assert!(unknown[0].binding.is_err());
}

// ---- live: creating, adopting, holding ----

/// (observed, ledger) → (the next ledger's states and ids, creates, deletes).
#[test]
fn create_what_is_missing_adopt_what_exists_and_hold_what_is_bound() {
    let d = desire(&two());
    let bound = [
        entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound),
        entry(Some("rb-2"), "DeveloperRead", TOPIC, S::Bound),
    ];
    let both = [
        mine("rb-1", "EnvironmentAdmin", ENV),
        mine("rb-2", "DeveloperRead", TOPIC),
    ];
    type Row<'a> = (
        &'a str,
        Observed,
        &'a [RoleBindingStatus],
        Vec<(S, Option<&'a str>)>,
        Vec<usize>,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "nothing exists: both to create, recorded Creating",
            both_listed(&[]),
            &[],
            vec![(S::Creating, None), (S::Creating, None)],
            vec![0, 1],
        ),
        (
            "both exist, one unrecorded: adopted, nothing created",
            both_listed(&both),
            &bound[..1],
            vec![(S::Bound, Some("rb-1")), (S::Bound, Some("rb-2"))],
            vec![],
        ),
        (
            "steady state",
            both_listed(&both),
            &bound,
            vec![(S::Bound, Some("rb-1")), (S::Bound, Some("rb-2"))],
            vec![],
        ),
        (
            "removed out of band: created again, the old id kept until the create answers",
            both_listed(&both[..1]),
            &bound,
            vec![(S::Bound, Some("rb-1")), (S::Creating, Some("rb-2"))],
            vec![1],
        ),
        (
            "someone else's identical binding is not the invitee's",
            both_listed(&[remote("rb-9", "User:u-joe", "EnvironmentAdmin", &abs(ENV))]),
            &[],
            vec![(S::Creating, None), (S::Creating, None)],
            vec![0, 1],
        ),
        (
            "a percent-encoded CRN is the same binding",
            both_listed(&[
                remote(
                    "rb-1",
                    ME,
                    "EnvironmentAdmin",
                    &abs(ENV).replace("crn://", "crn%3A//"),
                ),
                mine("rb-2", "DeveloperRead", TOPIC),
            ]),
            &bound,
            vec![(S::Bound, Some("rb-1")), (S::Bound, Some("rb-2"))],
            vec![],
        ),
        (
            "a ledger id the list contradicts: the list's binding is the item's; the other id is never deleted",
            both_listed(&[mine("rb-7", "EnvironmentAdmin", ENV), both[1].clone()]),
            &bound,
            vec![(S::Bound, Some("rb-7")), (S::Bound, Some("rb-2"))],
            vec![],
        ),
    ];
    for (what, observed, ledger, want_states, want_creates) in rows {
        let p = plan(&live(&d, false), ledger, &observed);
        assert_eq!(states(&p), want_states, "{what}");
        assert_eq!(creates(&p), want_creates, "{what}");
        assert!(deletes(&p).is_empty(), "{what}: {:?}", p.steps);
        assert!(p.reads.is_empty(), "{what}");
        assert_eq!(
            p.creates(),
            !want_creates.is_empty(),
            "{what}: recorded before the creates"
        );
        assert!(
            p.ledger.iter().all(|e| e.principal.as_deref() == Some(ME)),
            "{what}"
        );
    }
    // adopting names the binding in an Event
    let p = plan(&live(&d, false), &bound[..1], &both_listed(&both));
    assert_eq!(
        p.steps,
        vec![Step::Adopt {
            entry: 1,
            id: "rb-2".into(),
            recovered: false
        }]
    );
}

#[test]
fn an_entry_of_a_legacy_ledger_without_a_principal_is_the_recorded_users() {
    let d = desire(&two()[..1]);
    let mut legacy = entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound);
    legacy.principal = None;
    let p = plan(
        &live(&d, false),
        &[legacy],
        &both_listed(&[mine("rb-1", "EnvironmentAdmin", ENV)]),
    );
    assert!(p.steps.is_empty());
    assert_eq!(
        p.ledger[0].principal.as_deref(),
        Some(ME),
        "written with it from now on"
    );
}

// ---- live: what must go ----

#[test]
fn removed_and_changed_items_delete_what_the_ledger_records_only() {
    let bound = [
        entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound),
        entry(Some("rb-2"), "DeveloperRead", TOPIC, S::Bound),
    ];
    let seen = [
        mine("rb-1", "EnvironmentAdmin", ENV),
        mine("rb-2", "DeveloperRead", TOPIC),
        mine("rb-3", "DataSteward", ENV), // made out of band, never recorded
    ];
    // the topic item removed: its binding goes (the held list shows whose it is); rb-3 stays
    let d = desire(&two()[..1]);
    let p = plan(&live(&d, false), &bound, &both_listed(&seen));
    assert_eq!(deletes(&p), [("rb-2", DeleteCause::RemovedFromSpec)]);
    assert_eq!(
        p.ledger[1].state,
        S::Deleting,
        "recorded until the delete is confirmed"
    );
    // no held list covers the removed item's scope: its id is read first, then deleted
    let env_only = scoped(&[(ENV, Ok(vec![seen[0].clone()]))]);
    let p = plan(&live(&d, false), &bound, &env_only);
    assert!(p.steps.is_empty());
    assert_eq!(p.reads, [Read::ById("rb-2".into())]);
    assert_eq!(states(&p)[1], (S::Deleting, Some("rb-2")));
    let mut read = env_only.clone();
    read.read(Read::ById("rb-2".into()), Ok(Some(seen[1].clone())));
    assert_eq!(
        deletes(&plan(&live(&d, false), &bound, &read)),
        [("rb-2", DeleteCause::RemovedFromSpec)]
    );
    // ... or dropped when Confluent says it is gone
    let mut gone = env_only.clone();
    gone.read(Read::ById("rb-2".into()), Ok(None));
    let p = plan(&live(&d, false), &bound, &gone);
    assert!(p.steps.is_empty());
    assert_eq!(ids(&p.ledger), BTreeSet::from(["rb-1"]));
    // a changed item (no update in the API): delete the old first, then create the new
    let changed = desire(&[
        item("EnvironmentAdmin", &abs(ENV)),
        item("DeveloperWrite", &abs(TOPIC)),
    ]);
    let p = plan(&live(&changed, false), &bound, &both_listed(&seen));
    assert!(
        matches!(&p.steps[..], [Step::Delete { id, cause: DeleteCause::RemovedFromSpec, .. }, Step::Create { entry: 1, .. }] if id == "rb-2"),
        "{:?}",
        p.steps
    );
    // an entry that never had a binding leaves with its item
    let pending = [entry(None, "DeveloperRead", TOPIC, S::Pending)];
    let p = plan(&live(&[], false), &pending, &Observed::default());
    assert!(p.steps.is_empty() && p.reads.is_empty() && p.ledger.is_empty());
}

/// Issue row: an item replaced while the first create of the reconcile answers 429. The
/// replaced binding stays recorded (`Deleting`) until a delete is confirmed.
#[test]
fn a_replaced_item_whose_writes_are_rate_limited_keeps_the_old_binding_recorded() {
    let bound = [entry(Some("rb-2"), "DeveloperRead", TOPIC, S::Bound)];
    let replaced = desire(&[item("DeveloperWrite", &abs(TOPIC))]);
    let observed = both_listed(&[mine("rb-2", "DeveloperRead", TOPIC)]);
    for (what, delete_done) in [
        (
            "the delete answered 429",
            Done::NotDeleted("rate limited".into()),
        ),
        (
            "the delete never ran",
            Done::NotDeleted("not sent yet: rate limited".into()),
        ),
    ] {
        let mut p = plan(&live(&replaced, false), &bound, &observed);
        let steps = p.steps.clone();
        for step in steps {
            match step {
                Step::Delete { entry, .. } => p.settle(entry, delete_done.clone()),
                Step::Create { entry, .. } => p.settle(entry, Done::NotSent("rate limited".into())),
                Step::Adopt { .. } => {}
            }
        }
        let next = p.into_ledger();
        let old = next.iter().find(|e| e.id.as_deref() == Some("rb-2"));
        assert_eq!(old.map(|e| e.state), Some(S::Deleting), "{what}: {next:?}");
        assert_eq!(next[0].state, S::Pending, "{what}: the new item waits");
        assert!(
            matches!(verdict(&next), Verdict::NotReady { reason, .. } if reason == crate::reason::ROLE_BINDING_REVOCATION_PENDING),
            "{what}"
        );
    }
}

/// Issue rows: a previous invitee's binding (the invitation was re-sent to a new user) goes,
/// also while the lists fail, and is never taken for the new user's.
#[test]
fn a_previous_invitees_bindings_go_whatever_the_lists_show() {
    let d = desire(&two()[..1]);
    let previous = [of(OLD, Some("rb-9"), "EnvironmentAdmin", ENV, S::Bound)];
    // the lists show the old binding: deleted, and the new user's is created
    let listed = both_listed(&[remote("rb-9", OLD, "EnvironmentAdmin", &abs(ENV))]);
    let mut o = listed.clone();
    o.list(
        OLD,
        RoleBindingFilter::scope(abs(ENV)),
        Ok(vec![remote("rb-9", OLD, "EnvironmentAdmin", &abs(ENV))]),
    );
    let p = plan(&live(&d, false), &previous, &o);
    assert_eq!(deletes(&p), [("rb-9", DeleteCause::PreviousUser)]);
    assert_eq!(creates(&p), [0]);
    // a ledger written before entries named their principal: status.userId says whose
    let mut legacy = previous.clone();
    legacy[0].principal = None;
    let mut old_user = live(&d, false);
    old_user.recorded_user = Some("u-old");
    let p = plan(&old_user, &legacy, &o);
    assert_eq!(deletes(&p), [("rb-9", DeleteCause::PreviousUser)]);
    // the lists fail: the previous user's stays Deleting with its id, the new user's waits;
    // Ready is not True
    let failing = scoped(&[(ENV, Err("403 forbidden"))]);
    let p = plan(&live(&d, false), &previous, &failing);
    assert_eq!(p.reads, [Read::ById("rb-9".into())]);
    let mut read_failed = failing.clone();
    read_failed.read(Read::ById("rb-9".into()), Err("503".into()));
    let p = plan(&live(&d, false), &previous, &read_failed);
    assert!(p.steps.is_empty() && p.reads.is_empty());
    assert_eq!(
        states(&p),
        [(S::Pending, None), (S::Deleting, Some("rb-9"))]
    );
    assert_eq!(p.ledger[1].principal.as_deref(), Some(OLD));
    assert!(
        matches!(verdict(&p.ledger), Verdict::NotReady { reason, .. } if reason == crate::reason::ROLE_BINDING_REVOCATION_PENDING)
    );
}

/// Issue row: an id written into status by hand (or restored from a backup) is deleted only
/// once Confluent shows it is the entry's binding.
#[test]
fn an_id_the_ledger_did_not_write_never_deletes_someone_elses_binding() {
    let forged = [entry(Some("rb-admin"), "OrganizationAdmin", "", S::Bound)];
    let admins = remote("rb-admin", "User:u-admin", "OrganizationAdmin", &abs(""));
    // not listed: its id is read first
    let p = plan(&live(&[], false), &forged, &Observed::default());
    assert!(p.steps.is_empty());
    assert_eq!(p.reads, [Read::ById("rb-admin".into())]);
    // the id is someone else's: never deleted; the entry's own binding is looked up by key
    let mut o = Observed::default();
    o.read(Read::ById("rb-admin".into()), Ok(Some(admins.clone())));
    let p = plan(&live(&[], false), &forged, &o);
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert_eq!(p.reads, [Read::ByKey(key(ME, "OrganizationAdmin", ""))]);
    // which does not exist: the entry goes, nothing was deleted
    o.read(Read::ByKey(key(ME, "OrganizationAdmin", "")), Ok(None));
    let p = plan(&live(&[], false), &forged, &o);
    assert!(p.steps.is_empty() && p.reads.is_empty() && p.ledger.is_empty());
    // the same in cleanup
    let c = cleanup_by(DeletionPolicy::Delete, false);
    let p = plan_cleanup(&c, &forged, &o);
    assert!(p.steps.is_empty() && !p.removals_outstanding());
    // a held list of any age showing the admin's binding under that id protects it as well
    let mut listed = Observed::default();
    listed.list(
        "User:u-admin",
        RoleBindingFilter::nested(&abs("")),
        Ok(vec![admins]),
    );
    let p = plan(&live(&[], false), &forged, &listed);
    assert!(deletes(&p).is_empty());
}

/// Issue row: a create whose answer was lost is `Creating`, looked up before anything else:
/// at the next reconcile, when its item is removed, and in cleanup.
#[test]
fn a_create_whose_answer_was_lost_is_looked_up_before_anything_else() {
    let d = desire(&two()[..1]);
    let mut p = plan(&live(&d, false), &[], &both_listed(&[]));
    p.settle(0, Done::Unanswered("connection reset".into()));
    let lost = p.into_ledger();
    assert_eq!(states_of(&lost), [(S::Creating, None)]);
    let k = key(ME, "EnvironmentAdmin", ENV);
    let made = mine("rb-5", "EnvironmentAdmin", ENV);
    // (whether it is wanted, what the exact look-up finds) → (state, id, deletes, creates)
    let rows: [LostRow<'_>; 6] = [
        (
            "wanted, not looked up yet (a held list predates it)",
            &d,
            None,
            vec![(S::Creating, None)],
            vec![],
            0,
        ),
        (
            "wanted, found",
            &d,
            Some(Ok(Some(made.clone()))),
            vec![(S::Bound, Some("rb-5"))],
            vec![],
            0,
        ),
        (
            "wanted, absent",
            &d,
            Some(Ok(None)),
            vec![(S::Creating, None)],
            vec![],
            1,
        ),
        (
            "wanted, look-up failed",
            &d,
            Some(Err("503".into())),
            vec![(S::Creating, None)],
            vec![],
            0,
        ),
        (
            "removed, found",
            &[],
            Some(Ok(Some(made.clone()))),
            vec![(S::Deleting, Some("rb-5"))],
            vec!["rb-5"],
            0,
        ),
        ("removed, absent", &[], Some(Ok(None)), vec![], vec![], 0),
    ];
    for (what, desired, answer, want, want_deletes, want_creates) in rows {
        let mut o = both_listed(&[]);
        if let Some(a) = answer {
            o.read(Read::ByKey(k.clone()), a);
        }
        let p = plan(&live(desired, false), &lost, &o);
        assert_eq!(states(&p), want, "{what}");
        assert_eq!(
            deletes(&p).iter().map(|d| d.0).collect::<Vec<_>>(),
            want_deletes,
            "{what}"
        );
        assert_eq!(creates(&p).len(), want_creates, "{what}");
        if o.has_read(&Read::ByKey(k.clone())) {
            assert!(p.reads.is_empty(), "{what}: never asked twice");
        } else {
            assert_eq!(p.reads, [Read::ByKey(k.clone())], "{what}");
        }
    }
    // removed before the look-up: it stays to be found and deleted (never forgotten)
    let p = plan(&live(&[], false), &lost, &both_listed(&[]));
    assert_eq!(p.reads, [Read::ByKey(k.clone())]);
    assert!(!p.ledger.is_empty());
    // the invitation deleted before the next resync: cleanup looks it up and deletes it
    let c = cleanup_by(DeletionPolicy::Delete, false);
    let p = plan_cleanup(&c, &lost, &Observed::default());
    assert_eq!(p.reads, [Read::ByKey(k.clone())]);
    assert!(p.removals_outstanding(), "cleanup is not done meanwhile");
    let mut o = Observed::default();
    o.read(Read::ByKey(k), Ok(Some(made)));
    let p = plan_cleanup(&c, &lost, &o);
    assert_eq!(deletes(&p), [("rb-5", DeleteCause::Cleanup)]);
}

/// (what, desired, the exact look-up's answer, next states and ids, deletes, creates).
type LostRow<'a> = (
    &'a str,
    &'a [Desired],
    Option<Result<Option<RemoteRoleBinding>, String>>,
    Vec<(S, Option<&'a str>)>,
    Vec<&'a str>,
    usize,
);

/// (policy, accepted, loser, successor) → the ids deleted.
type PolicyRow<'a> = (
    DeletionPolicy,
    bool,
    bool,
    Option<&'a [RoleBindingStatus]>,
    &'a [&'a str],
);

fn states_of(ledger: &[RoleBindingStatus]) -> Vec<(S, Option<&str>)> {
    ledger.iter().map(|e| (e.state, e.id.as_deref())).collect()
}

/// Issue rows: a list refused (403) or failing for one scope changes nothing recorded there,
/// and the other scope's drift is still repaired.
#[test]
fn a_failed_list_keeps_its_scopes_entries_and_only_them() {
    let d = desire(&two());
    let bound = [
        entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound),
        entry(Some("rb-2"), "DeveloperRead", TOPIC, S::Bound),
    ];
    // both lists refused: every id kept, nothing created blind
    let refused = scoped(&[(ENV, Err("403 forbidden")), (TOPIC, Err("403 forbidden"))]);
    let p = plan(&live(&d, false), &bound, &refused);
    assert!(p.steps.is_empty() && p.reads.is_empty());
    assert_eq!(
        states(&p),
        [(S::Bound, Some("rb-1")), (S::Bound, Some("rb-2"))]
    );
    // nothing recorded yet: each item says why it waits
    let p = plan(&live(&d, false), &[], &refused);
    assert!(p.steps.is_empty());
    assert!(p.ledger.iter().all(|e| {
        e.state == S::Pending
            && e.message
                .as_deref()
                .is_some_and(|m| m.contains("403 forbidden"))
    }));
    // one scope fails, the other shows its binding removed out of band: recreated
    let one = scoped(&[(ENV, Err("503")), (TOPIC, Ok(vec![]))]);
    let p = plan(&live(&d, false), &bound, &one);
    assert_eq!(
        states(&p),
        [(S::Bound, Some("rb-1")), (S::Creating, Some("rb-2"))]
    );
    assert_eq!(creates(&p), [1]);
    // and deleting the Invitation deletes both: what the held lists confirm at once, the rest
    // after reading its id
    let c = cleanup_by(DeletionPolicy::Delete, false);
    let mut o = Observed::default();
    o.list(
        ME,
        RoleBindingFilter::scope(abs(TOPIC)),
        Ok(vec![mine("rb-2", "DeveloperRead", TOPIC)]),
    );
    let p = plan_cleanup(&c, &bound, &o);
    assert_eq!(deletes(&p), [("rb-2", DeleteCause::Cleanup)]);
    assert_eq!(p.reads, [Read::ById("rb-1".into())]);
}

// ---- live: rules ----

/// Issue rows: `--allowed-roles` tightened after a grant (the binding stays recorded,
/// `Disallowed`, deleted with the Invitation), and loosened again (no stale refusal).
#[test]
fn a_binding_no_longer_allowed_keeps_its_id_and_goes_with_the_invitation() {
    let items = [item("OrganizationAdmin", &abs(""))];
    let allowed = ["EnvironmentAdmin".to_owned()];
    let tight = desired(&items, Some(ORG), USER, Some(&allowed));
    let bound = [entry(Some("rb-2"), "OrganizationAdmin", "", S::Bound)];
    let listed = org_wide(&[mine("rb-2", "OrganizationAdmin", "")]);
    let p = plan(&live(&tight, false), &bound, &listed);
    assert!(p.steps.is_empty());
    assert_eq!(states(&p), [(S::Disallowed, Some("rb-2"))]);
    let m = p.ledger[0].message.as_deref().unwrap_or_default();
    assert!(
        m.contains("--allowed-roles: EnvironmentAdmin") && m.contains("kept"),
        "{m}"
    );
    assert!(
        matches!(verdict(&p.ledger), Verdict::NotReady { reason, .. } if reason == crate::reason::ROLE_BINDING_DISALLOWED)
    );
    // its list failing changes nothing
    let p = plan(&live(&tight, false), &bound, &Observed::default());
    assert_eq!(states(&p), [(S::Disallowed, Some("rb-2"))]);
    // Revoke deletes it
    let mut revoke = live(&tight, false);
    revoke.on_disallowed = OnDisallowed::Revoke;
    let p = plan(&revoke, &bound, &listed);
    assert_eq!(deletes(&p), [("rb-2", DeleteCause::Disallowed)]);
    // nothing exists: refused, nothing sent
    let p = plan(&live(&tight, false), &[], &listed_empty());
    assert_eq!(states(&p), [(S::Refused, None)]);
    assert!(p.steps.is_empty());
    // the Invitation deleted with Delete: the Disallowed binding goes like any other
    let disallowed = plan(&live(&tight, false), &bound, &listed).into_ledger();
    let p = plan_cleanup(
        &cleanup_by(DeletionPolicy::Delete, false),
        &disallowed,
        &listed,
    );
    assert_eq!(deletes(&p), [("rb-2", DeleteCause::Cleanup)]);
    // the flag loosened (a restart): a refusal of the rules is decided again, never stale
    let refused = plan(&live(&tight, false), &[], &listed_empty()).into_ledger();
    let any = desired(&items, Some(ORG), USER, None);
    let p = plan(&live(&any, false), &refused, &listed_empty());
    assert_eq!(creates(&p), [0]);
}

fn listed_empty() -> Observed {
    org_wide(&[])
}

#[test]
fn a_confluent_refusal_waits_for_its_backoff_then_is_tried_again() {
    let d = desire(&two()[1..]);
    let mut refused = entry(None, "DeveloperRead", TOPIC, S::Refused);
    refused.message = Some("The role cannot be bound here [HTTP 400]".into());
    let held = BTreeSet::from([key(ME, "DeveloperRead", TOPIC)]);
    let mut l = live(&d, false);
    l.refused_recently = &held;
    let p = plan(&l, std::slice::from_ref(&refused), &both_listed(&[]));
    assert!(
        p.steps.is_empty(),
        "no POST per resync while the backoff runs"
    );
    assert_eq!(p.ledger[0], refused);
    let p = plan(
        &live(&d, false),
        std::slice::from_ref(&refused),
        &both_listed(&[]),
    );
    assert_eq!(creates(&p), [0], "tried again once the backoff passed");
    // a pending one is tried every time; a pattern that cannot resolve is refused unsent
    let pending = entry(None, "DeveloperRead", TOPIC, S::Pending);
    assert_eq!(creates(&plan(&l, &[pending], &both_listed(&[]))), [0]);
    let bad = desired(&[item("DeveloperRead", "environment=e")], None, USER, None);
    let p = plan(&live(&bad, false), &[], &Observed::default());
    assert!(p.steps.is_empty());
    assert_eq!(
        (p.ledger[0].state, p.ledger[0].crn_pattern.as_str()),
        (S::Refused, "environment=e")
    );
}

#[test]
fn exclusive_removes_every_other_binding_of_the_invitee_from_an_organization_wide_view_only() {
    let seen = [
        mine("rb-1", "EnvironmentAdmin", ENV),
        mine("rb-3", "DataSteward", ENV),
        mine("rb-4", "OrganizationAdmin", ""),
        remote("rb-5", "User:u-joe", "OrganizationAdmin", &abs("")),
    ];
    let bound = [entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound)];
    let d = desire(&two()[..1]);
    let p = plan(&live(&d, true), &bound, &org_wide(&seen));
    assert_eq!(
        deletes(&p),
        [
            ("rb-3", DeleteCause::Exclusive),
            ("rb-4", DeleteCause::Exclusive)
        ]
    );
    assert_eq!(
        states(&p)[1..],
        [(S::Deleting, Some("rb-3")), (S::Deleting, Some("rb-4"))],
        "recorded until their deletes are confirmed"
    );
    // without the flag, or from lists per scope, none is touched
    assert!(
        plan(&live(&d, false), &bound, &org_wide(&seen))
            .steps
            .is_empty()
    );
    assert!(
        plan(&live(&d, true), &bound, &both_listed(&seen))
            .steps
            .is_empty()
    );
    // a binding both removed from spec and unlisted is deleted once
    let two_recorded = [
        bound[0].clone(),
        entry(Some("rb-3"), "DataSteward", ENV, S::Bound),
    ];
    let p = plan(&live(&d, true), &two_recorded, &org_wide(&seen));
    assert_eq!(
        deletes(&p).iter().map(|d| d.0).collect::<Vec<_>>(),
        ["rb-3", "rb-4"]
    );
    // an exclusive resource listing nothing clears the invitee's bindings
    assert_eq!(plan(&live(&[], true), &[], &org_wide(&seen)).steps.len(), 3);
    // only roles the operator may manage
    let allowed = ["EnvironmentAdmin".to_owned(), "DataSteward".to_owned()];
    let mut l = live(&d, true);
    l.allowed_roles = Some(&allowed);
    let p = plan(&l, &bound, &org_wide(&seen));
    assert_eq!(
        deletes(&p),
        [("rb-3", DeleteCause::Exclusive)],
        "OrganizationAdmin is not the operator's to delete"
    );
}

#[test]
fn before_the_invitee_is_known_nothing_recorded_changes_and_items_wait() {
    let d = desire(&two());
    let previous = [of(OLD, Some("rb-9"), "EnvironmentAdmin", ENV, S::Bound)];
    let mut l = live(&d, false);
    l.invitee = None;
    let p = plan(&l, &previous, &Observed::default());
    assert!(p.steps.is_empty() && p.reads.is_empty());
    assert_eq!(
        states(&p),
        [
            (S::Pending, None),
            (S::Pending, None),
            (S::Bound, Some("rb-9"))
        ]
    );
}

// ---- settling and previewing ----

#[test]
fn settling_the_writes() {
    let d = desire(&two()[..1]);
    let fresh = || plan(&live(&d, false), &[], &both_listed(&[]));
    for (done, want) in [
        (Done::Created("rb-7".into()), (S::Bound, Some("rb-7"))),
        (Done::Refused("nope [HTTP 400]".into()), (S::Refused, None)),
        (Done::NotSent("rate limited".into()), (S::Pending, None)),
        (Done::Unanswered("reset".into()), (S::Creating, None)),
    ] {
        let mut p = fresh();
        p.settle(0, done.clone());
        let next = p.into_ledger();
        assert_eq!(states_of(&next), [want], "{done:?}");
    }
    // a delete: gone only when confirmed
    let bound = [entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound)];
    let observed = both_listed(&[mine("rb-1", "EnvironmentAdmin", ENV)]);
    let mut p = plan(&live(&[], false), &bound, &observed);
    p.settle(0, Done::NotDeleted("503".into()));
    assert!(p.removals_outstanding());
    let next = p.into_ledger();
    assert_eq!(states_of(&next), [(S::Deleting, Some("rb-1"))]);
    assert!(
        next[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("503"))
    );
    let mut p = plan(&live(&[], false), &bound, &observed);
    p.settle(0, Done::Deleted);
    assert!(!p.removals_outstanding());
    assert!(p.into_ledger().is_empty());
}

/// Issue row: a dry run keeps every id, a would-be-deleted one included.
#[test]
fn a_preview_keeps_the_ledger_as_recorded() {
    let bound = [
        entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound),
        entry(Some("rb-2"), "DeveloperRead", TOPIC, S::Bound),
    ];
    let changed = desire(&[
        item("EnvironmentAdmin", &abs(ENV)),
        item("DeveloperWrite", &abs(TOPIC)),
    ]);
    let observed = both_listed(&[
        mine("rb-1", "EnvironmentAdmin", ENV),
        mine("rb-2", "DeveloperRead", TOPIC),
    ]);
    let p = plan(&live(&changed, false), &bound, &observed);
    let previewed = p.previewed();
    assert_eq!(ids(&previewed), BTreeSet::from(["rb-1", "rb-2"]));
    assert!(
        previewed.iter().all(|e| e.state != S::Creating),
        "nothing was sent"
    );
    assert!(previewed.iter().any(|e| {
        e.message
            .as_deref()
            .is_some_and(|m| m.contains("would be deleted"))
    }));
}

// ---- cleanup ----

fn cleanup_by(policy: DeletionPolicy, accepted: bool) -> Cleanup<'static> {
    Cleanup {
        removal: policy.binding_removal(accepted, false, false),
        recorded_user: Some(USER),
        successor: None,
    }
}

#[test]
fn deletion_policies_and_the_email_conflict_loser() {
    let ledger = [
        entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound),
        entry(Some("rb-2"), "DeveloperRead", TOPIC, S::Bound),
        entry(None, "DataSteward", ENV, S::Refused),
        of(OLD, Some("rb-9"), "EnvironmentAdmin", ENV, S::Deleting),
    ];
    let mut observed = both_listed(&[
        mine("rb-1", "EnvironmentAdmin", ENV),
        mine("rb-2", "DeveloperRead", TOPIC),
    ]);
    observed.list(
        OLD,
        RoleBindingFilter::scope(abs(ENV)),
        Ok(vec![remote("rb-9", OLD, "EnvironmentAdmin", &abs(ENV))]),
    );
    // the successor's ledger records rb-1 (it adopted it); one that only lists the same
    // binding records nothing yet, and keeps nothing
    let successor = [entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound)];
    let listing_only = [entry(None, "EnvironmentAdmin", ENV, S::Pending)];
    // (policy, accepted, loser, successor) → deleted
    let rows: [PolicyRow<'_>; 12] = [
        (
            DeletionPolicy::Delete,
            false,
            false,
            None,
            &["rb-1", "rb-2", "rb-9"],
        ),
        // keep the member, remove the bindings
        (
            DeletionPolicy::Delete,
            true,
            false,
            None,
            &["rb-1", "rb-2", "rb-9"],
        ),
        // the invitation goes, the pending invitee's bindings would stay
        (
            DeletionPolicy::DeleteUser,
            false,
            false,
            None,
            &["rb-1", "rb-2", "rb-9"],
        ),
        // the user's deletion removes theirs; the previous user's are nobody's
        (DeletionPolicy::DeleteUser, true, false, None, &["rb-9"]),
        (DeletionPolicy::Orphan, false, false, None, &[]),
        (DeletionPolicy::Orphan, true, false, Some(&successor), &[]),
        (DeletionPolicy::Delete, false, true, None, &[]),
        (DeletionPolicy::DeleteUser, false, true, None, &[]),
        // a successor keeps what its ledger records; with it the user stays, so DeleteUser
        // deletes here
        (
            DeletionPolicy::Delete,
            true,
            false,
            Some(&successor),
            &["rb-2", "rb-9"],
        ),
        (
            DeletionPolicy::DeleteUser,
            true,
            false,
            Some(&successor),
            &["rb-2", "rb-9"],
        ),
        (
            DeletionPolicy::DeleteUser,
            true,
            false,
            Some(&[]),
            &["rb-1", "rb-2", "rb-9"],
        ),
        // listed by the successor but not recorded: deleted, as kept it would be nobody's once
        // the successor went before adopting it
        (
            DeletionPolicy::Delete,
            true,
            false,
            Some(&listing_only),
            &["rb-1", "rb-2", "rb-9"],
        ),
    ];
    for (policy, accepted, loser, successor, want) in rows {
        let c = Cleanup {
            removal: policy.binding_removal(accepted, loser, successor.is_some()),
            successor,
            ..cleanup_by(policy, accepted)
        };
        let p = plan_cleanup(&c, &ledger, &observed);
        let got: Vec<&str> = deletes(&p).iter().map(|d| d.0).collect();
        assert_eq!(
            got,
            want,
            "{policy:?} accepted={accepted} loser={loser} successor={}",
            successor.is_some()
        );
        assert!(p.reads.is_empty());
        assert_eq!(p.removals_outstanding(), !want.is_empty());
    }
}

/// Issue row: a cleanup that touches nothing remote (`Orphan`, nothing recorded) needs no
/// read and no write, so the controller never asks for credentials.
#[test]
fn a_cleanup_that_touches_nothing_needs_nothing() {
    let ledger = [entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound)];
    let p = plan_cleanup(
        &cleanup_by(DeletionPolicy::Orphan, false),
        &ledger,
        &Observed::default(),
    );
    assert!(p.reads.is_empty() && p.steps.is_empty() && !p.removals_outstanding());
    let p = plan_cleanup(
        &cleanup_by(DeletionPolicy::Delete, false),
        &[],
        &Observed::default(),
    );
    assert!(p.reads.is_empty() && p.steps.is_empty() && !p.removals_outstanding());
}

// ---- the verdict ----

#[test]
fn the_ready_verdict_worst_first() {
    let bound = entry(Some("rb-1"), "EnvironmentAdmin", ENV, S::Bound);
    let mut refused = entry(
        None,
        "DeveloperRead",
        "/environment=env-abc/cloud-cluster=lkc-1",
        S::Refused,
    );
    refused.message = Some("cannot be bound at the cluster scope [HTTP 400]".into());
    let pending = entry(None, "DataSteward", ENV, S::Pending);
    let creating = entry(None, "MetricsViewer", ENV, S::Creating);
    let deleting = of(OLD, Some("rb-9"), "EnvironmentAdmin", ENV, S::Deleting);
    let disallowed = entry(Some("rb-4"), "OrganizationAdmin", "", S::Disallowed);
    let reason_of = |entries: &[RoleBindingStatus]| match verdict(entries) {
        Verdict::Bound => "Bound",
        Verdict::NotReady { reason, .. } => reason,
    };
    let rows: [(&[RoleBindingStatus], &str); 7] = [
        (&[], "Bound"),
        (std::slice::from_ref(&bound), "Bound"),
        (
            &[bound.clone(), pending.clone()],
            crate::reason::ROLE_BINDING_PENDING,
        ),
        (
            &[bound.clone(), creating.clone()],
            crate::reason::ROLE_BINDING_PENDING,
        ),
        (
            &[bound.clone(), disallowed.clone(), pending.clone()],
            crate::reason::ROLE_BINDING_DISALLOWED,
        ),
        (
            &[disallowed.clone(), refused.clone()],
            crate::reason::ROLE_BINDING_REFUSED,
        ),
        (
            &[bound.clone(), refused.clone(), deleting.clone()],
            crate::reason::ROLE_BINDING_REVOCATION_PENDING,
        ),
    ];
    for (entries, want) in rows {
        assert_eq!(reason_of(entries), want, "{entries:?}");
    }
    match verdict(&[bound.clone(), refused.clone(), pending]) {
        Verdict::NotReady { message, .. } => {
            assert!(message.contains("DeveloperRead on crn://"), "{message}");
            assert!(
                message.contains("cannot be bound at the cluster scope"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match verdict(&[deleting]) {
        Verdict::NotReady { message, .. } => {
            assert!(
                message.contains("rb-9") && message.contains(OLD),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // a flood of refusals stays bounded
    let many: Vec<RoleBindingStatus> = (0..100)
        .map(|_| RoleBindingStatus {
            message: Some("é".repeat(100)),
            ..refused.clone()
        })
        .collect();
    match verdict(&many) {
        Verdict::NotReady { message, .. } => assert!(message.len() <= MAX_VERDICT_MESSAGE + 4),
        other => panic!("{other:?}"),
    }
}

// ---- observation ----

#[test]
fn observation_costs_one_list_per_distinct_scope_not_one_per_invitation() {
    let scopes: Vec<String> = (0..7)
        .map(|i| abs(&format!("/environment=env-{i}")))
        .collect();
    let demands: Vec<Demand> = (0..1000)
        .map(|n| Demand {
            credential: 1,
            organization: ORG.into(),
            crn_patterns: (0..3).map(|j| scopes[(n + j) % 7].clone()).collect(),
            exclusive: false,
        })
        .collect();
    let lists = observation_lists(&demands, 50);
    let filters = &lists[&(1, ORG.to_string())];
    assert_eq!(filters.len(), 7, "s lists, not N");
    let mut remote_bindings = Vec::new();
    for (n, d) in demands.iter().enumerate() {
        for (j, crn) in d.crn_patterns.iter().enumerate() {
            remote_bindings.push(remote(
                &format!("rb-{n}-{j}"),
                &format!("User:u-{n}"),
                "EnvironmentAdmin",
                crn,
            ));
        }
    }
    let pages: usize = filters
        .iter()
        .map(|f| {
            remote_bindings
                .iter()
                .filter(|b| covers(f, b))
                .count()
                .div_ceil(100)
                .max(1)
        })
        .sum();
    assert_eq!(pages, 7 * 5, "s lists of ⌈b_s/100⌉ pages");
    let by_user = by_principal(remote_bindings);
    assert_eq!(by_user.len(), 1000);
    // an exclusive resource turns its credential's lists into one organization-wide list
    let mut more = demands.clone();
    more[0].exclusive = true;
    more.push(Demand {
        credential: 2,
        organization: "other-org".into(),
        crn_patterns: vec!["crn://confluent.cloud/organization=other-org/environment=e".into()],
        exclusive: false,
    });
    let lists = observation_lists(&more, 50);
    assert_eq!(
        lists[&(1, ORG.to_string())],
        vec![RoleBindingFilter::nested(&abs(""))]
    );
    assert_eq!(lists[&(2, "other-org".to_string())].len(), 1);
    assert_eq!(
        observation_lists(&demands, 6)[&(1, ORG.to_string())].len(),
        1
    );
    let none = [Demand {
        credential: 3,
        organization: ORG.into(),
        crn_patterns: vec![],
        exclusive: false,
    }];
    assert!(observation_lists(&none, 50).is_empty());
    let twice: Vec<Demand> = [abs(ENV), abs(ENV).replace("crn://", "crn%3A//")]
        .into_iter()
        .map(|crn| Demand {
            credential: 4,
            organization: ORG.into(),
            crn_patterns: vec![crn],
            exclusive: false,
        })
        .collect();
    assert_eq!(
        observation_lists(&twice, 50)[&(4, ORG.to_string())].len(),
        1
    );
}

#[test]
fn what_a_list_covers_and_what_it_proves() {
    let b = mine("rb-1", "DeveloperRead", TOPIC);
    assert!(covers(&RoleBindingFilter::scope(abs(TOPIC)), &b));
    assert!(!covers(&RoleBindingFilter::scope(abs(ENV)), &b));
    assert!(covers(&RoleBindingFilter::nested(&abs(ENV)), &b));
    assert!(!covers(
        &RoleBindingFilter::nested(&abs("/environment=env-ab")),
        &b
    ));
    let mut f = RoleBindingFilter::nested(&abs(""));
    f.principal = Some("User:u-joe".into());
    assert!(!covers(&f, &b));
    // presence: shown, unlisted (enough to create), gone (an exact read), unknown
    let k = key(ME, "DeveloperRead", TOPIC);
    assert!(matches!(
        both_listed(std::slice::from_ref(&b)).presence(&k),
        Seen::Present(_)
    ));
    assert_eq!(both_listed(&[]).presence(&k), Seen::Unlisted);
    assert!(matches!(scoped(&[(TOPIC, Err("503"))]).presence(&k), Seen::Unknown(w) if w == "503"));
    assert!(matches!(Observed::default().presence(&k), Seen::Unknown(_)));
    let mut o = both_listed(std::slice::from_ref(&b));
    o.read(Read::ByKey(k.clone()), Ok(None));
    assert_eq!(
        o.presence(&k),
        Seen::Gone,
        "the exact read of now wins over a held list"
    );
    assert!(
        o.confirms(&k, "rb-1"),
        "ids are never reused: the list says whose it is"
    );
    assert!(!o.confirms(&key(ME, "DeveloperWrite", TOPIC), "rb-1"));
}

/// What a deletion that touches nothing says it leaves live: every entry whose binding may
/// exist (an id, or a create that may have gone through), none of those that cannot.
#[test]
fn left_live_names_every_binding_that_may_exist() {
    use super::ledger::left_live;
    assert_eq!(left_live(&[]), None);
    let never = [
        entry(None, "DeveloperRead", TOPIC, S::Refused),
        entry(None, "DeveloperRead", TOPIC, S::Pending),
    ];
    assert_eq!(left_live(&never), None, "nothing of these exists");
    let ledger = [
        entry(Some("rb-bound1"), "EnvironmentAdmin", ENV, S::Bound),
        entry(None, "DeveloperRead", TOPIC, S::Creating),
        entry(Some("rb-gone2"), "DeveloperRead", TOPIC, S::Deleting),
        entry(None, "DeveloperWrite", TOPIC, S::Refused),
    ];
    let said = left_live(&ledger).expect("some stay live");
    assert!(said.starts_with("3 role binding(s)"), "{said}");
    assert!(
        said.contains(&format!("rb-bound1 (EnvironmentAdmin on {})", abs(ENV))),
        "{said}"
    );
    assert!(said.contains("rb-gone2"), "{said}");
    assert!(said.contains("may have gone through"), "{said}");
    assert!(
        !said.contains("DeveloperWrite"),
        "a refused create made nothing: {said}"
    );
}
