//! The wipe step: one `PUT /api/v1/admin/wipe` instead of a DELETE per group, once the replica is
//! healthy and the sweep may still act. The gateway queues one delete per group present at that
//! moment; the confirm step then re-reads as after DELETEs.

use std::time::Instant;

use super::remote::Remote;
use super::{Permit, NOT_ATTEMPTED};
use crate::report::{Failure, NotSent};

/// How the wipe went.
pub(super) struct Wiped {
    /// When the request went out; `None` when it was never sent.
    pub sent: Option<Instant>,
    /// Why it failed, and why it was not sent when it was not.
    pub error: Option<(Failure, Option<NotSent>)>,
}

impl Wiped {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Waits for the replica to be healthy, asks the permit, then wipes.
pub(super) async fn wipe<R: Remote>(remote: &R, permit: &Permit) -> Wiped {
    let not_sent = |error: Failure, why: NotSent| Wiped {
        sent: None,
        error: Some((error, Some(why))),
    };
    if let Err(e) = remote.wait_healthy().await {
        return not_sent(e, NotSent::Unhealthy);
    }
    if !permit.may_act() {
        return not_sent(NOT_ATTEMPTED.into(), NotSent::LeadershipLost);
    }
    let sent = Some(Instant::now());
    let error = match remote.wipe().await {
        Ok(()) => None,
        Err(e) => Some((Failure::of("admin wipe failed", &e), None)),
    };
    Wiped { sent, error }
}
