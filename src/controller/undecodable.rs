//! A policy the API server holds but the janitor cannot decode (kube's `DeserializeGuard`): one
//! stored under a looser CRD (an older release, a CRD applied by hand), whose fields the served
//! schema would now refuse. It is reported on its own, in a log line, a Warning event and its
//! `SpecInvalid` condition, and never swept; the watch of every other policy goes on. Here is
//! how such an object is read and written; `reconcile` decides what to say.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::error_boundary::InvalidObject;
use kube::core::{ApiResource, DeserializeGuard};
use kube::runtime::events::Event;
use kube::Resource;

use super::context::Context;
use crate::crd::{PushgatewayRetention, PushgatewayRetentionStatus};
use crate::{Error, Result};

/// What the watch hands the reconciler: a policy, or one that could not be decoded.
pub type Watched = DeserializeGuard<PushgatewayRetention>;

/// The same object, undecoded: its status is read (and written) without its spec.
pub fn raw_api(ctx: &Context, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &ApiResource::erase::<PushgatewayRetention>(&()),
    )
}

/// Its status as stored, if that part decodes (the last sweep and totals stay), else empty.
pub async fn stored_status(
    ctx: &Context,
    invalid: &InvalidObject,
) -> Result<PushgatewayRetentionStatus> {
    let (namespace, name) = names(invalid);
    let raw = raw_api(ctx, namespace)
        .get(name)
        .await
        .map_err(Error::Kube)?;
    Ok(raw
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default())
}

/// Writes `new`'s conditions and publishes `ev` about the object.
pub async fn write_status(
    ctx: &Context,
    watched: &Watched,
    invalid: &InvalidObject,
    new: &PushgatewayRetentionStatus,
    ev: Event,
) -> Result<()> {
    let (namespace, name) = names(invalid);
    // Not server-side apply: the API server cannot type the live object either ("failed to
    // create typed live object"). A merge patch of the conditions, all of them as read, so those
    // of other writers stay.
    let patch = serde_json::json!({"status": {
        "conditions": new.conditions,
        "observedGeneration": new.observed_generation,
    }});
    raw_api(ctx, namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Kube)?;
    if let Err(e) = ctx.recorder.publish(&ev, &watched.object_ref(&())).await {
        tracing::warn!(error = %e, reason = %ev.reason, "cannot publish event");
    }
    Ok(())
}

/// Its namespace and name.
pub fn names(invalid: &InvalidObject) -> (&str, &str) {
    let meta = &invalid.metadata;
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_field_of_the_wrong_type_is_caught_with_its_name_and_metadata() {
        let watched: Watched = serde_json::from_value(json!({
            "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
            "metadata": {"name": "bad", "namespace": "ns", "generation": 3},
            "spec": {"static": {"urls": ["http://127.0.0.1:9091"]}, "ttl": "1h", "suspend": 1},
        }))
        .expect("the guard always decodes");
        let invalid = watched.0.expect_err("suspend is not a boolean");
        assert_eq!(invalid.metadata.name.as_deref(), Some("bad"));
        assert_eq!(invalid.metadata.generation, Some(3));
        assert!(invalid.error.contains("bool"), "{}", invalid.error);
    }

    #[test]
    fn a_good_policy_passes_the_guard() {
        let watched: Watched = serde_json::from_value(json!({
            "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
            "metadata": {"name": "good", "namespace": "ns"},
            "spec": {"static": {"urls": ["http://127.0.0.1:9091"]}, "ttl": "1h"},
        }))
        .unwrap();
        assert_eq!(watched.0.expect("decodes").spec.ttl.as_deref(), Some("1h"));
    }
}
