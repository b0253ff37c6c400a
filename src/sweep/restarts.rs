//! The memory a long-running front door keeps between sweeps of one policy: each replica's last
//! `start_time` (from `/api/v1/status`). A replica restarted with its persistence file may bring
//! back groups an earlier sweep deleted; the sweep deletes them again anyway (it decides from what
//! it reads), and this says why they were back. A one-shot sweep has no memory: its report gives
//! `start_time` only.

use std::collections::HashMap;

use crate::report::SweepReport;

/// Last `start_time` seen per replica URL (as the report spells it, credentials redacted).
#[derive(Debug, Default, Clone)]
pub struct StartTimes {
    last: HashMap<String, String>,
}

impl StartTimes {
    /// Marks each replica of `report` whose start time differs from the one seen on the previous
    /// sweep `restarted: true` (`false` when unchanged; left unset the first time, or when the
    /// status could not be read), logs each restart, and remembers the new start times.
    pub fn observe(&mut self, report: &mut SweepReport) {
        for replica in &mut report.replicas {
            let Some(now) = &replica.start_time else {
                continue;
            };
            if let Some(before) = self.last.get(&replica.url) {
                let restarted = before != now;
                replica.restarted = Some(restarted);
                if restarted {
                    tracing::warn!(
                        gateway = %replica.url,
                        previous_start_time = %before,
                        start_time = %now,
                        "replica restarted since the last sweep: groups deleted before may be back from its persistence file"
                    );
                }
            }
            self.last.insert(replica.url.clone(), now.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ReplicaReport, ReplicaState, Summary};

    fn report(replicas: &[(&str, Option<&str>)]) -> SweepReport {
        SweepReport {
            started_at: String::new(),
            duration_seconds: 0.0,
            dry_run: false,
            action: "delete",
            replicas: replicas
                .iter()
                .map(|(url, start)| ReplicaReport {
                    start_time: start.map(str::to_string),
                    ..ReplicaReport::for_test(url, ReplicaState::Ok, 0)
                })
                .collect(),
            actions: vec![],
            notes: vec![],
            refused: vec![],
            summary: Summary::default(),
        }
    }

    fn restarted(r: &SweepReport) -> Vec<Option<bool>> {
        r.replicas.iter().map(|r| r.restarted).collect()
    }

    #[test]
    fn a_changed_start_time_is_a_restart_and_the_first_sight_is_neither() {
        let mut memory = StartTimes::default();
        let mut first = report(&[("http://a/", Some("t1")), ("http://b/", Some("t1"))]);
        memory.observe(&mut first);
        assert_eq!(restarted(&first), vec![None, None]);

        let mut second = report(&[("http://a/", Some("t2")), ("http://b/", Some("t1"))]);
        memory.observe(&mut second);
        assert_eq!(restarted(&second), vec![Some(true), Some(false)]);

        // The new start time is the one compared against next.
        let mut third = report(&[("http://a/", Some("t2"))]);
        memory.observe(&mut third);
        assert_eq!(restarted(&third), vec![Some(false)]);
    }

    #[test]
    fn an_unreadable_status_neither_marks_nor_forgets() {
        let mut memory = StartTimes::default();
        memory.observe(&mut report(&[("http://a/", Some("t1"))]));
        let mut down = report(&[("http://a/", None)]);
        memory.observe(&mut down);
        assert_eq!(restarted(&down), vec![None]);
        let mut back = report(&[("http://a/", Some("t9"))]);
        memory.observe(&mut back);
        assert_eq!(restarted(&back), vec![Some(true)]);
    }
}
