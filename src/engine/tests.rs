//! The engine's bookkeeping without IO: one entry per replica URL, one client per credentials,
//! and delete claims.

use std::time::{Duration, Instant};

use super::*;
use crate::http::{Credentials, HttpAuth};
use crate::model::Labels;

fn engine() -> Engine {
    Engine::new(Settings::from_tuning(&crate::tuning::Tuning::default()))
}

fn gateway(url: &str, http: reqwest::Client) -> Gateway {
    Gateway::new(url.parse().unwrap(), http, Duration::from_secs(5))
}

fn labels(job: &str) -> Labels {
    Labels::from_iter([("job".to_string(), job.to_string())])
}

const FRESH: Duration = Duration::from_secs(30);

#[test]
fn one_entry_and_one_budget_per_replica_url_whatever_the_client() {
    let e = engine();
    let a = e.replica(&gateway("http://10.0.0.1:9091", reqwest::Client::new()));
    let b = e.replica(&gateway("http://10.0.0.1:9091/", reqwest::Client::new()));
    let other = e.replica(&gateway("http://10.0.0.2:9091/", reqwest::Client::new()));
    assert!(Arc::ptr_eq(&a, &b), "two policies' clients, one replica");
    assert!(!Arc::ptr_eq(&a, &other));
    assert_eq!(e.known_replicas(), 2);
}

#[test]
fn equal_credentials_share_a_client_identity_and_different_ones_do_not() {
    let e = engine();
    let bearer = |t: &str| HttpAuth {
        credentials: Credentials::Bearer(t.into()),
        ..Default::default()
    };
    let t = Duration::from_secs(5);
    let a = e.access("gateway", &bearer("one"), t).unwrap();
    let b = e.access("gateway", &bearer("one"), t).unwrap();
    let c = e.access("gateway", &bearer("two"), t).unwrap();
    let none = e.access("gateway", &HttpAuth::default(), t).unwrap();
    assert_eq!(a.key, b.key);
    assert_ne!(
        a.key, c.key,
        "a read made with one token is never handed to another"
    );
    assert_ne!(a.key, none.key);
    let p1 = e.private_access(reqwest::Client::new());
    let p2 = e.private_access(reqwest::Client::new());
    assert_ne!(p1.key, p2.key);
    assert_ne!(p1.key, none.key);
}

#[test]
fn a_delete_claimed_and_not_yet_confirmed_is_not_sent_twice() {
    let e = engine();
    let r = e.replica(&gateway("http://10.0.0.1:9091/", reqwest::Client::new()));
    let read = Instant::now();
    assert!(r.claim_delete(&labels("a"), 100.0, read, FRESH));
    assert!(
        !r.claim_delete(&labels("a"), 100.0, read, FRESH),
        "same copy"
    );
    assert!(
        r.claim_delete(&labels("a"), 150.0, read, FRESH),
        "a newer copy is another delete"
    );
    assert!(r.claim_delete(&labels("b"), 100.0, read, FRESH));
}

#[test]
fn after_confirmation_only_a_plan_read_later_deletes_the_same_copy_again() {
    let e = engine();
    let r = e.replica(&gateway("http://10.0.0.1:9091/", reqwest::Client::new()));
    let early_read = Instant::now();
    assert!(r.claim_delete(&labels("a"), 100.0, early_read, FRESH));
    std::thread::sleep(Duration::from_millis(5));
    r.release_deletes([&labels("a")]);
    std::thread::sleep(Duration::from_millis(5));
    assert!(
        !r.claim_delete(&labels("a"), 100.0, early_read, FRESH),
        "a plan from before the delete would only repeat it"
    );
    let later_read = Instant::now();
    assert!(
        r.claim_delete(&labels("a"), 100.0, later_read, FRESH),
        "a read after the delete that still shows the copy (a restored replica) deletes it"
    );
}

#[test]
fn an_old_claim_does_not_hold_back_a_delete() {
    let e = engine();
    let r = e.replica(&gateway("http://10.0.0.1:9091/", reqwest::Client::new()));
    let read = Instant::now();
    assert!(r.claim_delete(&labels("a"), 100.0, read, Duration::ZERO));
    assert!(r.claim_delete(&labels("a"), 100.0, read, Duration::ZERO));
}
