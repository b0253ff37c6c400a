//! How one decision ended, the word every step (delete, wipe, confirm) hands back to `act`.

use crate::plan::Decision;
use crate::report::{Failure, NotSent, Outcome};

/// How one decision ended: its outcome, its error, and why it was not sent if it was not.
#[derive(Debug, Clone)]
pub(crate) struct Acted {
    pub decision: Decision,
    pub outcome: Outcome,
    pub error: Option<Failure>,
    pub not_sent: Option<NotSent>,
}

/// Why a DELETE failed, and why it was not sent when it was not.
pub(super) type Unsent = (Failure, Option<NotSent>);

impl Acted {
    pub fn ended(
        decision: Decision,
        outcome: Outcome,
        error: Option<Failure>,
        not_sent: Option<NotSent>,
    ) -> Self {
        Acted {
            decision,
            outcome,
            error,
            not_sent,
        }
    }
}
