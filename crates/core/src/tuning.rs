//! How hard the janitor may press on the gateways: the tuning flags every front door takes
//! (`--read-concurrency`, `--delete-rate`, ...), never part of a policy's spec.

use std::time::Duration;

use crate::field::Field;
use crate::Error;

/// How hard the janitor may press on the gateways.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Replicas read at once.
    pub read_concurrency: usize,
    /// Bound on every single call to a replica, a whole streamed read included.
    pub request_timeout: Duration,
    /// DELETEs in flight at once on one replica.
    pub delete_concurrency: usize,
    /// DELETEs per second on one replica.
    pub delete_rate: f64,
    /// A plan older than this when deletes start is re-made from a fresh read of that replica.
    pub replan_after: Duration,
    /// How long to keep re-reading a replica to confirm its deletes.
    pub confirm_timeout: Duration,
    /// How long to wait, backing off, while a replica's `/-/healthy` answers 500 (write queue full).
    pub unhealthy_wait: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            read_concurrency: 8,
            request_timeout: Duration::from_secs(60),
            delete_concurrency: 16,
            delete_rate: 50_000.0,
            replan_after: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(30),
            unhealthy_wait: Duration::from_secs(60),
        }
    }
}

impl Tuning {
    /// Errors carry the field, named by the front door that gave the tuning (`Error::at`): the
    /// engine never names a flag, since its messages may end up in a resource's status.
    pub fn validate(&self) -> crate::Result<()> {
        let positive = |field: Field, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::invalid(field, "must be greater than zero"))
            }
        };
        positive(Field::ReadConcurrency, self.read_concurrency > 0)?;
        positive(Field::DeleteConcurrency, self.delete_concurrency > 0)?;
        positive(Field::RequestTimeout, !self.request_timeout.is_zero())?;
        positive(
            Field::DeleteRate,
            self.delete_rate.is_finite() && self.delete_rate > 0.0,
        )?;
        Ok(())
    }
}
