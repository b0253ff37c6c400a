//! The wipe step against a fake replica: sent once when healthy and permitted, never otherwise,
//! and each way it ends says whether it was sent.

use tokio::sync::watch;

use super::fake::{pushed, Fake};
use super::wipe::wipe;
use super::{Permit, NOT_ATTEMPTED};
use crate::report::NotSent;

fn admin_fake() -> Fake {
    let fake = Fake::new("http://a:9091/", vec![pushed(&[("job", "a")], 7200.0)]);
    fake.store().status.as_mut().unwrap().admin_api = true;
    fake
}

#[tokio::test]
async fn a_healthy_permitted_replica_is_wiped_once() {
    let fake = admin_fake();
    let wiped = wipe(&fake, &Permit::always()).await;
    assert!(wiped.ok());
    assert!(wiped.sent.is_some());
    assert_eq!(fake.store().wipes, 1);
    assert!(fake.keys().is_empty());
}

#[tokio::test]
async fn a_full_write_queue_is_not_wiped() {
    let fake = admin_fake();
    fake.store().queue_full = true;
    let wiped = wipe(&fake, &Permit::always()).await;
    let (error, why) = wiped.error.expect("not wiped");
    assert_eq!(why, Some(NotSent::Unhealthy));
    assert_eq!(error.detail(), "write queue still full after 1s");
    assert!(wiped.sent.is_none());
    assert_eq!(fake.store().wipes, 0);
    assert_eq!(fake.keys().len(), 1);
}

#[tokio::test]
async fn leadership_lost_before_the_wipe_sends_nothing() {
    let fake = admin_fake();
    let (_tx, rx) = watch::channel(false);
    let wiped = wipe(&fake, &super::fake::permit(rx)).await;
    let (error, why) = wiped.error.expect("not wiped");
    assert_eq!(why, Some(NotSent::LeadershipLost));
    assert_eq!(error.detail(), NOT_ATTEMPTED);
    assert!(wiped.sent.is_none());
    assert_eq!(fake.store().wipes, 0);
}

/// A replica without the admin API refuses it: sent, and failed.
#[tokio::test]
async fn a_refused_wipe_was_sent_and_failed() {
    let fake = admin_fake();
    fake.store().status.as_mut().unwrap().admin_api = false;
    let wiped = wipe(&fake, &Permit::always()).await;
    let (error, why) = wiped.error.expect("refused");
    assert_eq!(why, None, "it was sent");
    assert!(error.detail().starts_with("admin wipe failed: "), "{error}");
    assert!(wiped.sent.is_some());
    assert_eq!(fake.store().wipes, 1);
    assert_eq!(fake.keys().len(), 1);
}
