use super::*;
use crate::invitation::resource::DeletionPolicy;
use crate::role_bindings::resource::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

const RESYNC: Duration = Duration::from_secs(300);

fn now() -> jiff::Timestamp {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn binding(role: &str, pattern: &str) -> RoleBinding {
    serde_json::from_value(serde_json::json!({"roleName": role, "crnPattern": pattern})).unwrap()
}

fn spec(members: &[&str], bindings: usize) -> InvitationGroupSpec {
    InvitationGroupSpec {
        members: members.iter().map(|m| m.to_string()).collect(),
        role_bindings: (0..bindings)
            .map(|i| binding("DeveloperRead", &format!("environment=env-{i}")))
            .collect(),
        exclusive_role_bindings: false,
        auth_type: None,
        credentials_secret_ref: None,
        reinvite_on_expiry: false,
        member_removal_policy: DeletionPolicy::Delete,
        max_removals_per_sync: 5,
    }
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn group<'a>(spec: &'a InvitationGroupSpec, window: Option<&'a RemovalWindow>) -> Group<'a> {
    Group {
        name: "payments",
        spec,
        allows_empty: false,
        window,
        labels: &NO_LABELS,
    }
}

fn child_as(group: &InvitationGroupSpec, email: &str, ready: Option<(&str, &str, &str)>) -> Child {
    let status = ready.map(|(status, reason, phase)| InvitationStatus {
        phase: Some(phase.into()),
        user_id: Some(format!("u-{}", &email[..1])),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            observed_generation: None,
            last_transition_time: Time(now()),
        }],
        ..InvitationStatus::default()
    });
    Child {
        name: child_name("payments", email),
        spec: child_spec(group, email),
        labels: child_labels("payments", &BTreeMap::new()),
        status,
        deleting: false,
    }
}

const NO_BUDGET: Budget = Budget {
    used: None,
    limit: 900,
};

#[test]
fn names_carry_no_email_and_one_member_is_one_name_in_any_case() {
    let a = child_name("payments", "Ana@Example.com");
    assert_eq!(a, child_name("payments", "ana@example.com"));
    assert!(
        a.starts_with("payments-") && a.len() == "payments-".len() + 12,
        "{a}"
    );
    assert!(!a.contains("example"));
    assert_ne!(a, child_name("payments", "bo@example.com"));
    assert_ne!(a, child_name("billing", "ana@example.com"));
    let long = "g".repeat(253);
    assert!(child_name(&long, "a@b.c").len() <= 253);
    assert_eq!(label_value("payments"), "payments");
    let value = label_value(&"x".repeat(64));
    assert!(value.starts_with("g-") && value.len() <= 63, "{value}");
}

#[test]
fn a_child_carries_the_groups_fields_and_its_removal_policy() {
    let mut s = spec(&["ana@example.com"], 2);
    s.member_removal_policy = DeletionPolicy::DeleteUser;
    s.reinvite_on_expiry = true;
    let child = child_spec(&s, "ana@example.com");
    assert_eq!(child.email, "ana@example.com");
    assert_eq!(child.deletion_policy, DeletionPolicy::DeleteUser);
    assert!(child.reinvite_on_expiry);
    assert_eq!(child.role_bindings, s.role_bindings);
}

#[test]
fn members_in_are_created_members_out_deleted_hand_edits_put_back() {
    let s = spec(&["ana@example.com", "bo@example.com", "cy@example.com"], 2);
    let mut edited = child_as(&s, "bo@example.com", None);
    edited.spec.role_bindings.clear(); // edited by hand
    let gone = child_as(&spec(&["dee@example.com"], 2), "dee@example.com", None);
    let mut going = child_as(&spec(&["eve@example.com"], 2), "eve@example.com", None);
    going.deleting = true;
    let children = vec![child_as(&s, "ana@example.com", None), edited, gone, going];
    let plan = plan(group(&s, None), &children, NO_BUDGET, now(), RESYNC);
    let created: Vec<&str> = plan.create.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(created, vec![child_name("payments", "cy@example.com")]);
    let put_back: Vec<&str> = plan.put_back.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(put_back, vec![child_name("payments", "bo@example.com")]);
    assert_eq!(plan.delete, vec![child_name("payments", "dee@example.com")]);
    assert!(plan.throttled.is_empty() && plan.refusal.is_none());
    assert_eq!(
        plan.window,
        Some(RemovalWindow {
            started: now().to_string(),
            removed: 1
        })
    );
}

#[test]
fn removals_are_throttled_per_resync_window() {
    let all: Vec<String> = (0..20).map(|i| format!("m{i:02}@example.com")).collect();
    let full = spec(&all.iter().map(String::as_str).collect::<Vec<_>>(), 1);
    let children: Vec<Child> = all.iter().map(|m| child_as(&full, m, None)).collect();
    let emptied = spec(&["keep@example.com"], 1);
    // (window before, minutes since it started, deleted now, throttled, next window in)
    let started = |minutes_ago: i64| RemovalWindow {
        started: (now() - jiff::SignedDuration::from_mins(minutes_ago)).to_string(),
        removed: 5,
    };
    let table = [
        (None, 5usize, 15usize, Some(RESYNC)),
        (Some(started(1)), 0, 20, Some(Duration::from_secs(240))),
        (Some(started(6)), 5, 15, Some(RESYNC)),
    ];
    for (window, deleted, throttled, next) in table {
        let plan = plan(
            group(&emptied, window.as_ref()),
            &children,
            NO_BUDGET,
            now(),
            RESYNC,
        );
        assert_eq!(plan.delete.len(), deleted, "{window:?}");
        assert_eq!(plan.throttled.len(), throttled, "{window:?}");
        assert_eq!(plan.next_window, next, "{window:?}");
        // the first by email go first
        if deleted > 0 {
            assert_eq!(plan.delete[0], child_name("payments", "m00@example.com"));
        }
    }
    // 20 removals at 5 a window take 4 windows
    let mut left = children;
    let mut window = None;
    let mut passes = 0;
    let mut at = now();
    while !left.is_empty() {
        let p = plan(
            group(&emptied, window.as_ref()),
            &left,
            NO_BUDGET,
            at,
            RESYNC,
        );
        left.retain(|c| !p.delete.contains(&c.name));
        window = p.window;
        passes += 1;
        at += jiff::SignedDuration::from_secs(300);
        assert!(passes <= 4, "more than 4 windows");
    }
    assert_eq!(passes, 4);
}

#[test]
fn an_empty_or_repeated_member_list_is_refused_and_nothing_done() {
    let before = spec(&["ana@example.com"], 1);
    let children = vec![child_as(&before, "ana@example.com", None)];
    let empty = spec(&[], 1);
    let p = plan(group(&empty, None), &children, NO_BUDGET, now(), RESYNC);
    assert_eq!(
        p.refusal.as_ref().map(|r| r.reason),
        Some(reason::EMPTY_MEMBERS)
    );
    assert!(p.delete.is_empty() && p.create.is_empty() && p.put_back.is_empty());
    let mut allowed = group(&empty, None);
    allowed.allows_empty = true;
    let p = plan(allowed, &children, NO_BUDGET, now(), RESYNC);
    assert!(p.refusal.is_none());
    assert_eq!(p.delete.len(), 1);
    let twice = spec(&["ana@example.com", "Ana@Example.com"], 1);
    let p = plan(group(&twice, None), &children, NO_BUDGET, now(), RESYNC);
    let refusal = p.refusal.expect("refused");
    assert_eq!(refusal.reason, reason::DUPLICATE_MEMBERS);
    assert!(
        refusal.message.contains("Ana@Example.com"),
        "{}",
        refusal.message
    );
    assert!(p.create.is_empty() && p.delete.is_empty());
}

#[test]
fn growth_past_the_budget_adds_nothing_and_says_by_how_much() {
    let s = spec(&["a@example.com", "b@example.com", "c@example.com"], 2);
    let children = vec![child_as(
        &spec(&["a@example.com"], 2),
        "a@example.com",
        None,
    )];
    // (used by every Invitation, this group's child (2) included; limit; refused by): the
    // group would hold 6, 4 more than now
    for (used, limit, over) in [
        (898, 900, Some(2)),
        (897, 900, Some(1)),
        (896, 900, None), // exactly the budget
        (100, 900, None),
    ] {
        let p = plan(
            group(&s, None),
            &children,
            Budget {
                used: Some(used),
                limit,
            },
            now(),
            RESYNC,
        );
        match over {
            Some(by) => {
                let r = p.refusal.expect("refused");
                assert_eq!(r.reason, reason::ROLE_BINDING_BUDGET);
                assert!(r.message.contains(&format!("by {by}")), "{}", r.message);
                assert!(p.create.is_empty(), "nothing created");
            }
            None => {
                assert!(p.refusal.is_none());
                assert_eq!(p.create.len(), 2);
            }
        }
    }
    // shrinking is never refused, even over the budget
    let smaller = spec(&["a@example.com"], 1);
    let p = plan(
        group(&smaller, None),
        &children,
        Budget {
            used: Some(5000),
            limit: 900,
        },
        now(),
        RESYNC,
    );
    assert!(p.refusal.is_none());
    assert_eq!(p.put_back.len(), 1);
}

#[test]
fn status_sorts_members_counts_them_and_is_ready_only_when_all_are() {
    let s = spec(&["cy@example.com", "Ana@example.com", "bo@example.com"], 1);
    let children = vec![
        child_as(
            &s,
            "Ana@example.com",
            Some(("True", "Accepted", "Accepted")),
        ),
        child_as(
            &s,
            "bo@example.com",
            Some(("False", "EmailConflict", "Pending")),
        ),
        child_as(&s, "cy@example.com", Some(("True", "Sent", "Sent"))),
    ];
    let p = plan(group(&s, None), &children, NO_BUDGET, now(), RESYNC);
    let (members, summary, (ready, reason, message)) = status(&s, "payments", &children, &p);
    let emails: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(
        emails,
        vec!["Ana@example.com", "bo@example.com", "cy@example.com"]
    );
    assert_eq!(
        summary,
        Summary {
            members: 3,
            ready: 2,
            pending: 2,
            accepted: 1,
            conflicts: 1
        }
    );
    assert_eq!((ready, reason), ("False", reason::MEMBERS_NOT_READY));
    assert!(
        message.contains("2 of 3") && message.contains("bo@example.com (EmailConflict)"),
        "{message}"
    );
    assert_eq!(members[1].message.as_deref(), Some("EmailConflict message"));
    assert_eq!(members[0].message, None, "a Ready member has no message");

    let all_ready: Vec<Child> = ["Ana@example.com", "bo@example.com", "cy@example.com"]
        .iter()
        .map(|m| child_as(&s, m, Some(("True", "Sent", "Sent"))))
        .collect();
    let p = plan(group(&s, None), &all_ready, NO_BUDGET, now(), RESYNC);
    let (_, _, (ready, reason, _)) = status(&s, "payments", &all_ready, &p);
    assert_eq!((ready, reason), ("True", reason::MEMBERS_READY));

    // a member not created yet, and a removed one still going
    let mut going = child_as(&spec(&["zed@example.com"], 1), "zed@example.com", None);
    going.deleting = true;
    let partial = vec![all_ready[0].clone(), going];
    let p = plan(group(&s, None), &partial, NO_BUDGET, now(), RESYNC);
    let (members, summary, (ready, _, message)) = status(&s, "payments", &partial, &p);
    assert_eq!(ready, "False");
    assert_eq!(members.len(), 4);
    assert_eq!(members[1].reason.as_deref(), Some(reason::CREATING));
    assert_eq!(members[3].reason.as_deref(), Some(reason::REMOVING));
    assert_eq!(summary.members, 3);
    assert!(
        message.contains("1 removed members are being deleted"),
        "{message}"
    );
}

#[test]
fn the_later_record_of_a_window_counts() {
    let w = |started: &str, removed| RemovalWindow {
        started: started.into(),
        removed,
    };
    let old = w("2026-01-01T12:00:00Z", 5);
    let new = w("2026-01-01T12:05:00Z", 5);
    let more = w("2026-01-01T12:05:00Z", 7);
    assert_eq!(latest(Some(&old), Some(&new)), Some(&new), "a stale cache");
    assert_eq!(latest(Some(&new), Some(&old)), Some(&new));
    assert_eq!(latest(Some(&new), Some(&more)), Some(&more));
    assert_eq!(
        latest(None, Some(&old)),
        Some(&old),
        "after a write the cache lacks"
    );
    assert_eq!(latest(Some(&old), None), Some(&old), "after a restart");
    assert_eq!(latest(None, None), None);
}

#[test]
fn children_carry_the_groups_labels_and_get_them_back() {
    let s = spec(&["ana@example.com", "bo@example.com"], 1);
    let shard = BTreeMap::from([("shard".to_owned(), "a".to_owned())]);
    let labelled = child_labels("payments", &shard);
    assert_eq!(labelled.get("shard").map(String::as_str), Some("a"));
    assert_eq!(
        labelled
            .get(crate::invitation_group::resource::GROUP_LABEL)
            .map(String::as_str),
        Some("payments")
    );
    let mut ana = child_as(&s, "ana@example.com", None);
    ana.labels = labelled.clone();
    // bo was made before the group was labelled: its labels are put back, its spec is the same
    let bo = child_as(&s, "bo@example.com", None);
    let g = Group {
        labels: &shard,
        ..group(&s, None)
    };
    let p = plan(g, &[ana, bo], NO_BUDGET, now(), RESYNC);
    let back: Vec<&str> = p.put_back.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(back, vec![child_name("payments", "bo@example.com")]);
}
