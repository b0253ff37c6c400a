//! Whether the engine may still act. A sweep can outlive the right to sweep: the controller's
//! leader can lose its Lease between the plan and the last DELETE. The engine asks right before
//! every DELETE and every wipe, so two replicas never delete at once.

use std::fmt;
use std::sync::Arc;

/// The right to act, as its holder keeps it (the controller's leadership flag).
pub trait MayAct: Send + Sync + fmt::Debug {
    fn may_act(&self) -> bool;
}

/// `may_act` is read right before each DELETE or wipe. The front door that owns the right to act
/// (the controller's leader election) holds it; the one-shot CLI and the policy-file loop always
/// may.
#[derive(Debug, Clone, Default)]
pub struct Permit(Option<Arc<dyn MayAct>>);

impl Permit {
    /// No one else can act: the engine always may.
    pub fn always() -> Self {
        Permit(None)
    }

    /// The engine may act while `right` says so.
    pub fn new(right: impl MayAct + 'static) -> Self {
        Permit(Some(Arc::new(right)))
    }

    pub fn may_act(&self) -> bool {
        self.0.as_ref().is_none_or(|right| right.may_act())
    }
}

/// The error of a decision not attempted because the permit was withdrawn.
pub const NOT_ATTEMPTED: &str = "leadership lost: not attempted";

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Flag(Arc<AtomicBool>);

    impl MayAct for Flag {
        fn may_act(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn always_may_act() {
        assert!(Permit::always().may_act());
        assert!(Permit::default().may_act());
    }

    #[test]
    fn follows_its_holder_both_ways() {
        let flag = Arc::new(AtomicBool::new(true));
        let permit = Permit::new(Flag(flag.clone()));
        assert!(permit.may_act());
        flag.store(false, Ordering::SeqCst);
        assert!(!permit.may_act());
        assert!(!permit.clone().may_act(), "a clone asks the same holder");
        flag.store(true, Ordering::SeqCst);
        assert!(permit.may_act());
    }
}
