use super::*;
use crate::invitation::resource::AuthType;
use confluent_client::model::{ObjectMeta, ObjectReference};

fn spec(email: &str) -> InvitationSpec {
    InvitationSpec::of_email(email)
}

/// The planner's view of `spec` and `status`, every email domain allowed.
fn view<'a>(spec: &'a InvitationSpec, status: Option<&'a InvitationStatus>) -> Resource<'a> {
    Resource {
        spec,
        status,
        allowed_email_domains: &[],
    }
}

/// The field an immutable-field refusal names, if `step` is one.
fn immutable_field(step: &Step<Apply>) -> Option<&'static str> {
    match step {
        Step::Do(Apply::Refuse(SpecRefusal::ImmutableFieldChanged { field, .. })) => Some(field),
        _ => None,
    }
}

fn inv(id: &str, email: &str, status: InviteStatus) -> RemoteInvitation {
    RemoteInvitation {
        id: Some(id.into()),
        email: Some(email.into()),
        status: Some(status),
        auth_type: Some("AUTH_TYPE_SSO".into()),
        user: Some(ObjectReference {
            id: Some(format!("u-{id}")),
            ..Default::default()
        }),
        metadata: Some(ObjectMeta {
            created_at: Some(format!("2026-01-01T00:00:0{}Z", id.len() % 10)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status(id: &str, email: &str) -> InvitationStatus {
    InvitationStatus {
        invitation_id: Some(id.into()),
        email: Some(email.into()),
        auth_type: Some("AUTH_TYPE_SSO".into()),
        ..Default::default()
    }
}

const E: &str = "jane@example.com";

fn found(i: RemoteInvitation) -> Remote {
    read_by_id(ById::Found(i))
}

fn read_by_id(by_id: ById) -> Remote {
    Remote {
        by_id: Some(by_id),
        by_email: None,
    }
}

/// The invitation in status is no more: removed, or deactivated out of band.
fn gone_or_deactivated() -> [ById; 2] {
    [
        ById::Gone,
        ById::Found(inv("i-1", E, InviteStatus::Deactivated)),
    ]
}

fn listed(items: Vec<RemoteInvitation>) -> Remote {
    Remote {
        by_id: None,
        by_email: Some(items),
    }
}

fn create(email: &str) -> CreateInvitation {
    CreateInvitation {
        email: email.into(),
        auth_type: None,
    }
}

#[test]
fn a_new_resource_looks_up_then_creates() {
    let s = spec(E);
    let r = view(&s, None);
    assert_eq!(plan(r, &Remote::default()), Step::Read(Read::LookUp));
    assert_eq!(
        plan(r, &listed(vec![])),
        Step::Do(Apply::Create(create(E), CreateCause::New))
    );
}

#[test]
fn a_new_resource_adopts_a_live_invitation_for_its_email() {
    let s = spec(E);
    let r = view(&s, None);
    let sent = inv("i-1", "JANE@example.com", InviteStatus::Sent);
    assert_eq!(
        plan(r, &listed(vec![sent.clone()])),
        Step::Do(Apply::Adopt(sent.clone()))
    );
    // history is not adopted
    let old = vec![
        inv("i-2", E, InviteStatus::Expired),
        inv("i-3", E, InviteStatus::Deactivated),
    ];
    assert_eq!(
        plan(r, &listed(old)),
        Step::Do(Apply::Create(create(E), CreateCause::New))
    );
    // an accepted invitation wins over a pending one, and other emails never match
    let acc = inv("i-4", E, InviteStatus::Accepted);
    let other = inv("i-5", "john@example.com", InviteStatus::Sent);
    assert_eq!(
        plan(r, &listed(vec![sent, acc.clone(), other])),
        Step::Do(Apply::Adopt(acc))
    );
    // a status this version does not know is kept, not duplicated
    let unknown = inv("i-6", E, InviteStatus::Other("INVITE_STATUS_NEW".into()));
    assert_eq!(
        plan(r, &listed(vec![unknown.clone()])),
        Step::Do(Apply::Adopt(unknown))
    );
}

#[test]
fn adopting_with_another_auth_type_is_refused() {
    let mut s = spec(E);
    s.auth_type = Some(AuthType::Local);
    let r = view(&s, None);
    let a = plan(r, &listed(vec![inv("i-1", E, InviteStatus::Sent)]));
    assert!(
        matches!(&a, Step::Do(Apply::Refuse(SpecRefusal::AuthTypeConflict(m))) if m.contains("AUTH_TYPE_SSO")),
        "{a:?}"
    );
}

#[test]
fn a_known_id_is_read_and_observed_in_every_state() {
    let s = spec(E);
    let st = status("i-1", E);
    let r = view(&s, Some(&st));
    assert_eq!(
        plan(r, &Remote::default()),
        Step::Read(Read::Get("i-1".into()))
    );
    for state in [
        InviteStatus::Sent,
        InviteStatus::Staged,
        InviteStatus::Accepted,
        InviteStatus::Expired,
        InviteStatus::Other("INVITE_STATUS_NEW".into()),
    ] {
        let i = inv("i-1", E, state);
        assert_eq!(plan(r, &found(i.clone())), Step::Do(Apply::Observe(i)));
    }
}

#[test]
fn removed_or_deactivated_out_of_band_is_recreated_after_a_look_up() {
    let s = spec(E);
    let st = status("i-1", E);
    let r = view(&s, Some(&st));
    for by_id in gone_or_deactivated() {
        let mut remote = read_by_id(by_id);
        assert_eq!(plan(r, &remote), Step::Read(Read::LookUp));
        remote.by_email = Some(vec![]);
        assert_eq!(
            plan(r, &remote),
            Step::Do(Apply::Create(create(E), CreateCause::Recreate))
        );
        // a create whose response was lost shows up in the look-up: adopted
        let mine = inv("i-9", E, InviteStatus::Sent);
        remote.by_email = Some(vec![mine.clone()]);
        assert_eq!(plan(r, &remote), Step::Do(Apply::Adopt(mine)));
    }
}

#[test]
fn expiry_reinvites_only_when_asked_and_never_twice() {
    let mut s = spec(E);
    let st = status("i-1", E);
    let expired = inv("i-1", E, InviteStatus::Expired);
    let r = view(&s, Some(&st));
    assert_eq!(
        plan(r, &found(expired.clone())),
        Step::Do(Apply::Observe(expired.clone()))
    );
    s.reinvite_on_expiry = true;
    let r = view(&s, Some(&st));
    let mut remote = found(expired.clone());
    assert_eq!(plan(r, &remote), Step::Read(Read::LookUp));
    remote.by_email = Some(vec![expired.clone()]);
    assert_eq!(
        plan(r, &remote),
        Step::Do(Apply::Reinvite {
            expired_id: "i-1".into(),
            request: create(E)
        })
    );
    // the new invitation of an earlier reinvite whose response was lost: adopted
    let fresh = inv("i-2", E, InviteStatus::Sent);
    remote.by_email = Some(vec![expired, fresh.clone()]);
    assert_eq!(plan(r, &remote), Step::Do(Apply::Adopt(fresh)));
}

#[test]
fn immutable_fields_are_guarded_by_the_controller_itself() {
    let mut s = spec("john@example.com");
    let st = status("i-1", E);
    let r = view(&s, Some(&st));
    assert_eq!(immutable_field(&plan(r, &Remote::default())), Some("email"));
    s.email = E.to_uppercase(); // case alone is no change
    s.auth_type = Some(AuthType::Local);
    let r = view(&s, Some(&st));
    assert_eq!(
        immutable_field(&plan(r, &Remote::default())),
        Some("authType")
    );
    s.auth_type = Some(AuthType::Sso);
    let r = view(&s, Some(&st));
    assert_eq!(
        plan(r, &Remote::default()),
        Step::Read(Read::Get("i-1".into()))
    );
    // the remote's own email is checked too (status written by an older version)
    let st = InvitationStatus {
        invitation_id: Some("i-1".into()),
        ..Default::default()
    };
    let s = spec(E);
    let r = view(&s, Some(&st));
    let a = plan(
        r,
        &found(inv("i-1", "john@example.com", InviteStatus::Sent)),
    );
    assert!(matches!(
        a,
        Step::Do(Apply::Refuse(SpecRefusal::ImmutableFieldChanged { .. }))
    ));
}

#[test]
fn an_invalid_email_is_never_sent() {
    let s = spec("not-an-address");
    let r = view(&s, None);
    assert!(matches!(
        plan(r, &Remote::default()),
        Step::Do(Apply::Refuse(SpecRefusal::InvalidSpec(_)))
    ));
}

#[test]
fn an_email_outside_the_allowed_domains_is_refused_before_any_read() {
    let allowed = ["example.com".to_owned()];
    let s = spec(E);
    let st = status("i-1", E);
    for status in [None, Some(&st)] {
        let r = Resource {
            spec: &s,
            status,
            allowed_email_domains: &allowed,
        };
        assert!(matches!(plan(r, &Remote::default()), Step::Read(_)));
    }
    let s = spec("jane@elsewhere.org");
    let r = Resource {
        spec: &s,
        status: None,
        allowed_email_domains: &allowed,
    };
    let step = plan(r, &Remote::default());
    assert!(
        matches!(
            &step,
            Step::Do(Apply::Refuse(refusal @ SpecRefusal::EmailDomainNotAllowed(m)))
                if m.contains("elsewhere.org") && refusal.reason() == "EmailDomainNotAllowed"
        ),
        "{step:?}"
    );
    // the domain policy speaks first, even for an address that is not one
    let s = spec("not-an-address");
    let r = Resource {
        spec: &s,
        status: None,
        allowed_email_domains: &allowed,
    };
    assert!(matches!(
        plan(r, &Remote::default()),
        Step::Do(Apply::Refuse(SpecRefusal::EmailDomainNotAllowed(_)))
    ));
}

#[test]
fn cleanup_follows_the_deletion_policy() {
    let st = status("i-1", E);
    let sent = inv("i-1", E, InviteStatus::Sent);
    let accepted = inv("i-1", E, InviteStatus::Accepted);
    let mut s = spec(E);
    let r = |s: &InvitationSpec, remote: &Remote| plan_cleanup(view(s, Some(&st)), remote);
    // Delete
    assert_eq!(
        r(&s, &Remote::default()),
        Step::Read(Read::Get("i-1".into()))
    );
    assert_eq!(
        r(&s, &found(sent.clone())),
        Step::Do(Cleanup::DeleteInvitation("i-1".into()))
    );
    assert_eq!(
        r(&s, &found(inv("i-1", E, InviteStatus::Expired))),
        Step::Do(Cleanup::DeleteInvitation("i-1".into()))
    );
    assert_eq!(
        r(&s, &found(accepted.clone())),
        Step::Do(Cleanup::KeepAcceptedMember("u-i-1".into()))
    );
    // gone or deactivated: look for a replacement whose id never reached status
    for by_id in gone_or_deactivated() {
        let mut remote = read_by_id(by_id);
        assert_eq!(r(&s, &remote), Step::Read(Read::LookUp));
        remote.by_email = Some(vec![inv("i-1", E, InviteStatus::Deactivated)]);
        assert_eq!(r(&s, &remote), Step::Do(Cleanup::Release));
        remote.by_email = Some(vec![inv("i-2", E, InviteStatus::Sent)]);
        assert_eq!(
            r(&s, &remote),
            Step::Do(Cleanup::DeleteInvitation("i-2".into()))
        );
    }
    // DeleteUser
    s.deletion_policy = DeletionPolicy::DeleteUser;
    assert_eq!(
        r(&s, &found(accepted.clone())),
        Step::Do(Cleanup::DeleteUser("u-i-1".into()))
    );
    assert_eq!(
        r(&s, &found(sent.clone())),
        Step::Do(Cleanup::DeleteInvitation("i-1".into()))
    );
    // Orphan touches nothing, not even a read
    s.deletion_policy = DeletionPolicy::Orphan;
    assert_eq!(r(&s, &Remote::default()), Step::Do(Cleanup::Release));
}

#[test]
fn cleanup_never_touches_an_invitation_for_another_email() {
    // status.invitationId names another resource's invitation (restored or patched status)
    let st = status("i-9", E);
    for policy in [DeletionPolicy::Delete, DeletionPolicy::DeleteUser] {
        let mut s = spec(E);
        s.deletion_policy = policy;
        let r = view(&s, Some(&st));
        for theirs in [
            inv("i-9", "b@example.com", InviteStatus::Sent),
            inv("i-9", "b@example.com", InviteStatus::Accepted),
        ] {
            let mut remote = found(theirs);
            assert_eq!(
                plan_cleanup(r, &remote),
                Step::Read(Read::LookUp),
                "{policy:?}"
            );
            // its own, found by email, is the one it deletes
            remote.by_email = Some(vec![inv("i-1", &E.to_uppercase(), InviteStatus::Sent)]);
            assert_eq!(
                plan_cleanup(r, &remote),
                Step::Do(Cleanup::DeleteInvitation("i-1".into()))
            );
            remote.by_email = Some(vec![]);
            assert_eq!(plan_cleanup(r, &remote), Step::Do(Cleanup::Release));
        }
    }
}

#[test]
fn cleanup_without_an_id_finds_the_invitation_by_email() {
    let s = spec(E);
    let r = view(&s, None);
    assert_eq!(
        plan_cleanup(r, &Remote::default()),
        Step::Read(Read::LookUp)
    );
    assert_eq!(
        plan_cleanup(r, &listed(vec![inv("i-7", E, InviteStatus::Sent)])),
        Step::Do(Cleanup::DeleteInvitation("i-7".into()))
    );
    assert_eq!(plan_cleanup(r, &listed(vec![])), Step::Do(Cleanup::Release));
}

#[test]
fn a_found_invitation_sent_after_the_resource_is_not_called_adopted() {
    let created = |at: &str| RemoteInvitation {
        metadata: Some(ObjectMeta {
            created_at: Some(at.into()),
            ..Default::default()
        }),
        ..inv("i-1", E, InviteStatus::Sent)
    };
    let resource: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    for own in [false, true] {
        let at = |t: &str| how_found(&created(t), Some(resource), own);
        assert_eq!(at("2026-03-01T11:59:59Z"), Found::Adopted);
        assert_eq!(at("2026-03-01T12:00:01Z"), Found::Recovered);
        assert_eq!(
            how_found(&created("2026-03-01T12:00:05Z"), None, own),
            Found::Adopted
        );
        assert_eq!(
            how_found(&inv("i-1", E, InviteStatus::Sent), Some(resource), own),
            Found::Adopted
        );
    }
    // within the resource's second: ours only if our own create may have made it
    let same_second = created("2026-03-01T12:00:00.700Z");
    assert_eq!(
        how_found(&same_second, Some(resource), false),
        Found::Adopted
    );
    assert_eq!(
        how_found(&same_second, Some(resource), true),
        Found::Recovered
    );
}
