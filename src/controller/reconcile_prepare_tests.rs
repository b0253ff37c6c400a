//! What a failed prepare step puts in a policy's status.

use super::*;
use crate::policy::{AuthPart, Door, Field, Remote};

fn reason(status: &PushgatewayRetentionStatus, type_: &str) -> String {
    let c = status.conditions.iter().find(|c| c.type_ == type_);
    c.map(|c| c.reason.clone()).unwrap_or_default()
}

#[test]
fn a_failed_prepare_says_whose_fault_it_is() {
    let now = Timestamp::now();
    let missing = Error::Secret {
        field: Field::Auth(Remote::Gateway, AuthPart::BearerToken),
        door: Door::Spec,
        message: "Secret \"tok\" not found in namespace \"ns\"".into(),
    };
    let s = prepare_failed(
        &PushgatewayRetentionStatus::default(),
        &missing,
        Some(1),
        now,
    );
    assert_eq!(reason(&s, READY), "SecretUnavailable");
    assert_eq!(reason(&s, DEGRADED), "SecretUnavailable");
    let message = &s
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .unwrap()
        .message;
    assert!(
        message.starts_with("spec.gatewayAuth.bearerToken: Secret"),
        "{message}"
    );
    let down = Error::Discovery("Service \"pgw\" has no endpoints".into());
    let s = prepare_failed(&PushgatewayRetentionStatus::default(), &down, Some(1), now);
    assert_eq!(reason(&s, READY), "DiscoveryFailed");
    assert_eq!(s.totals.failed_sweeps, 1);
}
