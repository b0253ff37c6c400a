//! Whether the engine may still act. A sweep can outlive the right to sweep: the controller's
//! leader can lose its Lease between the plan and the last DELETE. The engine asks right before
//! every DELETE and every wipe, so two replicas never delete at once.

use tokio::sync::watch;

/// `may_act` is read right before each DELETE or wipe. The front door that owns the right to act
/// (the controller's leader election) holds the sender; the one-shot CLI and the policy-file
/// loop always may.
#[derive(Debug, Clone, Default)]
pub struct Permit(Option<watch::Receiver<bool>>);

impl Permit {
    /// No one else can act: the engine always may.
    pub fn always() -> Self {
        Permit(None)
    }

    /// The engine may act while `flag` says `true`.
    pub fn from_flag(flag: watch::Receiver<bool>) -> Self {
        Permit(Some(flag))
    }

    pub fn may_act(&self) -> bool {
        self.0.as_ref().is_none_or(|flag| *flag.borrow())
    }
}

/// The error of a decision not attempted because the permit was withdrawn.
pub const NOT_ATTEMPTED: &str = "leadership lost: not attempted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_may_act() {
        assert!(Permit::always().may_act());
        assert!(Permit::default().may_act());
    }

    #[test]
    fn follows_its_flag_both_ways() {
        let (tx, rx) = watch::channel(true);
        let permit = Permit::from_flag(rx);
        assert!(permit.may_act());
        tx.send_replace(false);
        assert!(!permit.may_act());
        tx.send_replace(true);
        assert!(permit.may_act());
    }

    #[test]
    fn a_flag_whose_sender_is_gone_keeps_its_last_word() {
        let (tx, rx) = watch::channel(false);
        drop(tx);
        assert!(!Permit::from_flag(rx).may_act());
    }
}
