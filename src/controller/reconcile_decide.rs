//! What a reconcile decides before it touches a gateway: from what was read, no IO.

use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::events::{Event, EventType};

use super::{condition_changed, Reconciled, MIN_REQUEUE};
use crate::controller::context::LastSwept;
use crate::controller::events::event;
use crate::controller::status::{self, SPEC_INVALID};
use crate::crd::{PushgatewayRetention, PushgatewayRetentionStatus};
use crate::policy::CheckedPolicy;
use crate::schedule::{until, Due};
use crate::Result;

/// What a reconcile decided before it touches a gateway.
pub(super) enum Decision {
    /// Not swept.
    Settle(Box<Settle>),
    /// Due: sweep now.
    Sweep {
        checked: Box<CheckedPolicy>,
        due: Due,
    },
}

/// Write `status` where it differs from the one read, publish `event`, answer `outcome`.
pub(super) struct Settle {
    pub status: PushgatewayRetentionStatus,
    pub event: Option<Event>,
    pub outcome: Reconciled,
}

/// The spec, suspension, schedule and backoff, decided from what was read: the policy and its
/// status, this process's memory of its last sweep, its backoff (`retry_in`) and the clock. No IO.
pub(super) fn decide(
    obj: &PushgatewayRetention,
    checked: Result<CheckedPolicy>,
    prev: &PushgatewayRetentionStatus,
    remembered: Option<&LastSwept>,
    retry_in: Option<Duration>,
    now: Timestamp,
) -> Result<Decision> {
    let generation = obj.metadata.generation;
    let settle = |status, event, outcome| {
        Decision::Settle(Box::new(Settle {
            status,
            event,
            outcome,
        }))
    };
    let checked = match checked {
        Ok(checked) => checked,
        Err(e) => {
            let new = status::spec_invalid(prev, &e.public(), generation, now);
            let ev = condition_changed(prev, &new, SPEC_INVALID)
                .then(|| event(EventType::Warning, "InvalidSpec", "Check", e.public()));
            return Ok(settle(new, ev, Reconciled::SpecInvalid));
        }
    };
    if checked.suspend {
        let new = status::suspended(prev, generation, now);
        return Ok(settle(new, None, Reconciled::Suspended));
    }
    let last_sweep = prev
        .last_sweep
        .as_ref()
        .and_then(|l| l.start_time.parse::<Timestamp>().ok())
        .max(remembered.map(|r| r.started));
    let anchor = obj
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    // A changed spec sweeps at once; the status (or this process's memory) says which
    // generation it last acted on.
    let force = prev.observed_generation != generation && remembered.is_none();
    let due = checked.cadence.due(last_sweep, anchor, now, force)?;
    if !due.sweep_now {
        let new = status::waiting(prev, generation, due.next_check, due.next_tick, now);
        let after = until(now, due.next_check).max(MIN_REQUEUE);
        return Ok(settle(new, None, Reconciled::NotDue { after }));
    }
    match retry_in.filter(|_| !force) {
        Some(after) => Ok(settle(prev.clone(), None, Reconciled::BackingOff { after })),
        None => Ok(Decision::Sweep {
            checked: Box::new(checked),
            due,
        }),
    }
}

#[cfg(test)]
#[path = "reconcile_decide_tests.rs"]
mod tests;
