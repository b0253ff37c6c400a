use proptest::prelude::*;

use super::*;

fn key(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().copied().collect()
}

const ABSENT: &[(&str, &str)] = &[("job", "a")];
const EMPTY: &[(&str, &str)] = &[("job", "a"), ("instance", "")];
const SET: &[(&str, &str)] = &[("job", "a"), ("instance", "x")];

#[test]
fn an_unsure_key_is_either_twin_and_exact_keys_stay_apart() {
    let (absent, empty, set) = (key(ABSENT), key(EMPTY), key(SET));
    // A light read of a replica holding either twin.
    let light = [(&absent, true, 5.0)];
    let index = KeyIndex::new(light);
    // Planned exactly: the light read shows "it, or its twin".
    assert_eq!(index.find(&absent, false), Some((0, Presence::Unsure(5.0))));
    assert_eq!(index.find(&empty, false), Some((0, Presence::Unsure(5.0))));
    // Planned from a light read too: the same group.
    assert_eq!(index.find(&absent, true), Some((0, Presence::Same(5.0))));
    assert_eq!(index.find(&set, false), None);

    // An exact read: an unsure key is whichever twin is there; exact keys match only exactly.
    let exact = [(&absent, false, 1.0), (&set, false, 3.0)];
    let index = KeyIndex::new(exact);
    assert_eq!(index.find(&absent, true), Some((0, Presence::Same(1.0))));
    assert_eq!(index.find(&absent, false), Some((0, Presence::Same(1.0))));
    assert_eq!(index.find(&empty, false), None, "exact twins are two keys");
    assert_eq!(index.find(&set, false), Some((1, Presence::Same(3.0))));
    assert_eq!(index.find(&key(&[("job", "b")]), true), None);

    // A poisoned replica read exactly holds both twins: an unsure key is still there.
    let poisoned = [(&absent, false, 9.0), (&empty, false, 0.0)];
    let index = KeyIndex::new(poisoned);
    assert_eq!(index.find(&absent, true), Some((0, Presence::Same(9.0))));
    assert_eq!(index.find(&empty, false), Some((1, Presence::Same(0.0))));
}

#[test]
fn forms_of_one_loose_key() {
    assert_eq!(Form::of(&key(ABSENT), false), Form::Absent);
    assert_eq!(Form::of(&key(EMPTY), false), Form::Empty);
    assert_eq!(Form::of(&key(ABSENT), true), Form::Unsure);
    assert_eq!(Form::of(&key(SET), false), Form::Set);
    assert!(Form::Unsure.may_be_same(Form::Empty) && Form::Absent.may_be_same(Form::Unsure));
    assert!(!Form::Absent.may_be_same(Form::Empty));
    assert!(Loose(&key(ABSENT)) == Loose(&key(EMPTY)));
    assert!(Loose(&key(ABSENT)) != Loose(&key(SET)));
}

/// A key as a test draws it: a job, an instance (absent, empty, or a value), one more label.
fn arb_key() -> impl Strategy<Value = Labels> {
    (
        prop_oneof![Just("a"), Just("b")],
        prop_oneof![Just(None), Just(Some("")), Just(Some("x"))],
        prop_oneof![Just(None), Just(Some("")), Just(Some("v"))],
    )
        .prop_map(|(job, instance, zone)| {
            let mut pairs = vec![("job", job)];
            pairs.extend(instance.map(|i| ("instance", i)));
            pairs.extend(zone.map(|z| ("zone", z)));
            pairs.into_iter().collect()
        })
}

/// What a light read shows of an exact key: an empty instance dropped, and unsure.
fn as_light(k: &Labels) -> (Labels, bool) {
    match k.get("instance") {
        Some(v) if !v.is_empty() => (k.clone(), false),
        _ => (k.iter().filter(|(n, _)| *n != "instance").collect(), true),
    }
}

proptest! {
    /// Against the truth (exact keys on a healthy replica, where no two are twins), `find`
    /// never says "gone" for a key that is there, never says "same" for one that is not, and
    /// says "unsure" only for an exact key against a light read.
    #[test]
    fn find_never_confuses_a_present_key_with_a_gone_one(
        present in prop::collection::btree_set(arb_key(), 0..6),
        planned in arb_key(),
        light_read in any::<bool>(),
        light_plan in any::<bool>(),
    ) {
        // A healthy replica holds at most one of two twins.
        let mut healthy: Vec<Labels> = Vec::new();
        for k in present {
            if !healthy.iter().any(|h| Loose(h) == Loose(&k)) {
                healthy.push(k);
            }
        }
        let read: Vec<(Labels, bool)> = healthy
            .iter()
            .map(|k| if light_read { as_light(k) } else { (k.clone(), false) })
            .collect();
        let index = KeyIndex::new(read.iter().map(|(k, u)| (k, *u, 1.0)));
        let (plan_key, plan_unsure) =
            if light_plan { as_light(&planned) } else { (planned.clone(), false) };
        let there_exactly = healthy.contains(&planned);
        let twin_there = healthy.iter().any(|h| Loose(h) == Loose(&planned));
        match index.find(&plan_key, plan_unsure) {
            None => prop_assert!(!there_exactly),
            Some((_, Presence::Same(_))) => {
                // The same group, or (a light plan being either twin) its twin.
                prop_assert!(there_exactly || (plan_unsure && twin_there));
            }
            Some((_, Presence::Unsure(_))) => {
                prop_assert!(light_read && !plan_unsure && twin_there);
            }
        }
    }
}
