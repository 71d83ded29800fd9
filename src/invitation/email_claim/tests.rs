use super::*;

fn claimant(uid: &str, key: &str, installation: &str, created: Option<&str>) -> Claimant {
    Claimant {
        uid: uid.into(),
        key: key.into(),
        installation: installation.into(),
        created: created.map(|c| c.parse().unwrap()),
    }
}

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-02T00:00:00Z";
const T3: &str = "2026-01-03T00:00:00Z";

fn held_by(uid: &str, key: &str, installation: &str, successor: Option<Claimant>) -> Claim {
    Claim {
        holder: uid.into(),
        holder_key: key.into(),
        installation: installation.into(),
        successor,
    }
}

#[test]
fn names_hash_the_organization_and_the_lower_cased_email() {
    let org = Scope::Organization("o1".into());
    let a = claim_name(&org, "Shared@Example.com").unwrap();
    assert_eq!(Some(a.clone()), claim_name(&org, "shared@example.com"));
    assert!(a.starts_with("inv-") && a.len() == 4 + 64, "{a}");
    assert!(!a.contains("example"), "no email in the name");
    assert_ne!(
        Some(a.clone()),
        claim_name(&Scope::Organization("o2".into()), "shared@example.com")
    );
    assert_ne!(
        Some(a),
        claim_name(&Scope::Credential("o1".into()), "shared@example.com"),
        "a credential's identity never passes for an organization id"
    );
    assert_eq!(claim_name(&Scope::Unknown, "a@b.c"), None);
    // sha256("o1\nshared@example.com"), computed by sha256sum
    assert_eq!(
        claim_name(&org, "shared@example.com").unwrap(),
        "inv-a635f06af669b90930ead4e59e3d358d6e3d6b5ec132a95ef7266859fc84b956"
    );
    let h = heartbeat_name("team-a/operator");
    assert!(h.starts_with("installation-") && h.len() <= 253, "{h}");
}

#[test]
fn a_successor_annotation_reads_back_and_refuses_what_is_not_one() {
    let me = claimant("u-1", "b/y", "b/op", Some(T1));
    assert_eq!(
        Claimant::from_annotation(&me.to_annotation()),
        Some(me.clone())
    );
    let undated = claimant("u-1", "b/y", "b/op", None);
    assert_eq!(
        Claimant::from_annotation(&undated.to_annotation()),
        Some(undated)
    );
    for bad in [
        "",
        "u-1",
        "u-1 noslash b/op",
        "u-1 b/y",
        "u-1 b/y b/op yesterday",
    ] {
        assert_eq!(Claimant::from_annotation(bad), None, "{bad:?}");
    }
}

/// (claim, holder, successor's liveness, takeover-after, decision)
type Row = (Option<Claim>, Liveness, Liveness, Option<Duration>, Hold);

#[test]
fn the_claim_decides_and_never_moves_while_its_holder_lives() {
    let me = claimant("u-me", "b/y", "b/op", Some(T1));
    let older = claimant("u-old", "c/z", "c/op", Some("2025-01-01T00:00:00Z"));
    let younger = claimant("u-young", "c/z", "c/op", Some(T3));
    let stale_for = |s: u64| Liveness::Stale(Some(Duration::from_secs(s)));
    let taken = |stale, record| Hold::Taken {
        holder: "a/x".into(),
        installation: "a/op".into(),
        stale,
        record,
    };
    let ten_min = Some(Duration::from_secs(600));
    let table: Vec<Row> = vec![
        // nobody holds it
        (None, Liveness::Live, Liveness::Live, None, Hold::Create),
        // mine, annotated as it is
        (
            Some(held_by("u-me", "b/y", "b/op", None)),
            Liveness::Live,
            Liveness::Live,
            None,
            Hold::Mine { annotate: false },
        ),
        // mine, from another installation id (a restart under another id, a shard flip)
        (
            Some(held_by("u-me", "b/y", "old/op", None)),
            Liveness::Live,
            Liveness::Live,
            None,
            Hold::Mine { annotate: true },
        ),
        // another's, alive: even a younger holder keeps it; I record myself
        (
            Some(held_by("u-a", "a/x", "a/op", None)),
            Liveness::Live,
            Liveness::Live,
            None,
            taken(None, true),
        ),
        // already recorded as I am: nothing to write
        (
            Some(held_by("u-a", "a/x", "a/op", Some(me.clone()))),
            Liveness::Live,
            Liveness::Live,
            None,
            taken(None, false),
        ),
        // an older live successor waits already: it stays
        (
            Some(held_by("u-a", "a/x", "a/op", Some(older.clone()))),
            Liveness::Live,
            Liveness::Live,
            None,
            taken(None, false),
        ),
        // a younger one is replaced by me
        (
            Some(held_by("u-a", "a/x", "a/op", Some(younger.clone()))),
            Liveness::Live,
            Liveness::Live,
            None,
            taken(None, true),
        ),
        // an older successor whose installation is stale is replaced
        (
            Some(held_by("u-a", "a/x", "a/op", Some(older))),
            Liveness::Live,
            stale_for(5),
            None,
            taken(None, true),
        ),
        // the holder's installation is stale: said, never stolen without takeover-after
        (
            Some(held_by("u-a", "a/x", "a/op", None)),
            stale_for(3600),
            Liveness::Live,
            None,
            taken(Some(Some(Duration::from_secs(3600))), true),
        ),
        // ... nor before takeover-after has passed
        (
            Some(held_by("u-a", "a/x", "a/op", None)),
            stale_for(60),
            Liveness::Live,
            ten_min,
            taken(Some(Some(Duration::from_secs(60))), true),
        ),
        // ... taken over once it has
        (
            Some(held_by("u-a", "a/x", "a/op", None)),
            stale_for(600),
            Liveness::Live,
            ten_min,
            Hold::TakeOver,
        ),
        // an installation never seen renewing is as stale as can be
        (
            Some(held_by("u-a", "a/x", "a/op", None)),
            Liveness::Stale(None),
            Liveness::Live,
            ten_min,
            Hold::TakeOver,
        ),
        (
            Some(held_by("u-a", "a/x", "a/op", None)),
            Liveness::Stale(None),
            Liveness::Live,
            None,
            taken(Some(None), true),
        ),
        // the holder's own installation found its Invitation gone: released to me
        (
            Some(held_by("u-a", "a/x", "a/op", Some(younger))),
            Liveness::Gone,
            Liveness::Live,
            None,
            Hold::TakeOver,
        ),
    ];
    for (claim, holder, successor, after, want) in table {
        let got = hold(&me, claim.as_ref(), holder, successor, after);
        assert_eq!(
            got, want,
            "{claim:?} holder {holder:?} successor {successor:?}"
        );
    }
}

#[test]
fn only_a_live_recorded_successor_keeps_the_invitation_at_release() {
    let next = claimant("u-b", "b/y", "b/op", Some(T2));
    let claim = held_by("u-a", "a/x", "a/op", Some(next.clone()));
    assert_eq!(successor(&claim, Liveness::Live), Some(&next));
    assert_eq!(successor(&claim, Liveness::Stale(None)), None);
    assert_eq!(successor(&claim, Liveness::Gone), None);
    assert_eq!(
        successor(&held_by("u-a", "a/x", "a/op", None), Liveness::Live),
        None
    );
}

#[test]
fn a_heartbeat_is_stale_only_past_its_lifetime() {
    let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
    let at = |t: &str| Some(t.parse::<jiff::Timestamp>().unwrap());
    let minute = Duration::from_secs(60);
    for (renewed, want) in [
        (None, Liveness::Stale(None)),
        (at("2026-01-01T00:09:30Z"), Liveness::Live),
        (at("2026-01-01T00:09:00Z"), Liveness::Live),
        (
            at("2026-01-01T00:08:00Z"),
            Liveness::Stale(Some(Duration::from_secs(60))),
        ),
        // a renewer whose clock is ahead
        (at("2026-01-01T00:10:05Z"), Liveness::Live),
    ] {
        assert_eq!(heartbeat(renewed, minute, now), want, "{renewed:?}");
    }
}

#[test]
fn a_conflict_names_the_holder_and_says_when_it_looks_stale() {
    let live = taken_message("team-a/x", None);
    assert!(live.contains("team-a/x holds the claim"), "{live}");
    assert!(!live.contains("stale"), "{live}");
    let stale = taken_message(
        "team-a/x",
        Some(("team-a/op", Some(Duration::from_secs(90)))),
    );
    assert!(
        stale.contains(
            "looks stale: its installation team-a/op has not renewed its heartbeat for 90s"
        ),
        "{stale}"
    );
    assert!(
        stale.contains("deleting the claim's Lease hands it over"),
        "{stale}"
    );
    let never = taken_message("team-a/x", Some(("team-a/op", None)));
    assert!(never.contains("has no heartbeat"), "{never}");
}
