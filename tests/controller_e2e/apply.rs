//! Point 4: server-side apply on the real server. The status belongs to field manager
//! `pgw-janitor` (managedFields say so); a user's own apply of the spec does not conflict with
//! it; conditions merge as a list keyed by `type`, so another manager's condition lives next to
//! the controller's and goes when its owner removes it.

use kube::api::{Patch, PatchParams};
use serde_json::{json, Value};

use super::setup::*;
use crate::common::{sleep_past, GatewayOpts};
use pushgateway_janitor::crd::PushgatewayRetention;

fn manager(p: &PushgatewayRetention, name: &str, subresource: Option<&str>) -> Option<Value> {
    p.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .find(|m| m.manager.as_deref() == Some(name) && m.subresource.as_deref() == subresource)
        .map(|m| serde_json::to_value(m).expect("managedFields entry as JSON"))
}

fn condition_types(p: &PushgatewayRetention) -> Vec<String> {
    let mut types: Vec<String> = p
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().map(|c| c.type_.clone()))
        .collect();
    types.sort();
    types
}

fn applied(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "pgw-janitor.dev/v1alpha1",
        "kind": "PushgatewayRetention",
        "metadata": {"name": name},
        "spec": spec,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_owned_by_pgw_janitor_and_conditions_merge_by_type() {
    let _serial = SERIAL.lock().await;
    let s = Setup::start("ssa", GatewayOpts::default()).await;
    s.gw.push(STALE_1, "x 1\n").await;
    sleep_past(TTL_SECS).await;

    // The user's tool applies the policy (no force: a conflict would be an error).
    let user = PatchParams::apply("user-tool");
    s.api
        .patch(
            "owned",
            &user,
            &Patch::Apply(applied("owned", spec_for(&s.gw, json!({})))),
        )
        .await
        .expect("the user's apply");
    s.wait_gone(&[STALE_1]).await;
    let p = s
        .wait_status("owned", "Ready=True", |p| condition_is(p, "Ready", "True"))
        .await;
    let ours = manager(&p, "pgw-janitor", Some("status")).unwrap_or_else(|| {
        panic!(
            "no pgw-janitor status entry: {:#?}",
            p.metadata.managed_fields
        )
    });
    assert_eq!(ours["operation"], "Apply", "{ours:#}");
    let fields = &ours["fieldsV1"]["f:status"];
    for key in ["f:lastSweep", "f:totals", "f:observedGeneration"] {
        assert!(
            fields.get(key).is_some(),
            "pgw-janitor does not own status.{key}: {ours:#}"
        );
    }
    assert!(
        fields["f:conditions"]
            .get(r#"k:{"type":"Ready"}"#)
            .is_some(),
        "conditions are not a map keyed by type: {ours:#}"
    );
    let theirs = manager(&p, "user-tool", None).expect("the user's entry");
    assert!(
        theirs["fieldsV1"]["f:spec"].get("f:ttl").is_some(),
        "{theirs:#}"
    );
    assert!(theirs["fieldsV1"].get("f:status").is_none(), "{theirs:#}");

    // The user changes the spec with the same tool, again without force: no conflict.
    let changed = s
        .api
        .patch(
            "owned",
            &user,
            &Patch::Apply(applied("owned", spec_for(&s.gw, json!({"ttl": "5s"})))),
        )
        .await
        .expect("the user's second apply does not conflict");
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.spec.ttl.as_deref(), Some("5s"));

    // Another manager adds a condition of its own through the status subresource.
    let external = json!({
        "apiVersion": "pgw-janitor.dev/v1alpha1", "kind": "PushgatewayRetention",
        "metadata": {"name": "owned"},
        "status": {"conditions": [{
            "type": "ExternalAudit", "status": "True", "reason": "Reviewed",
            "message": "checked by another tool", "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]},
    });
    let other = PatchParams::apply("audit-tool");
    s.api
        .patch_status("owned", &other, &Patch::Apply(&external))
        .await
        .expect("another manager's status apply does not conflict");
    let p = s.get("owned").await;
    let after_theirs = totals_sweeps(&p);
    let p = s.wait_sweeps("owned", after_theirs, 2).await;
    assert_eq!(
        condition_types(&p),
        [
            "Degraded",
            "ExternalAudit",
            "GuardTripped",
            "Ready",
            "SpecInvalid"
        ],
        "{:#?}",
        p.status
    );
    assert!(
        observed_current(&p),
        "generation 2 observed: {:#?}",
        p.status
    );
    let ours = manager(&p, "pgw-janitor", Some("status")).unwrap();
    assert!(
        ours["fieldsV1"]["f:status"]["f:conditions"]
            .get(r#"k:{"type":"ExternalAudit"}"#)
            .is_none(),
        "the controller took co-ownership of another manager's condition: {ours:#}"
    );

    // Its owner removes it: it is gone, the controller's stay.
    let mut removed = external.clone();
    removed["status"]["conditions"] = json!([]);
    s.api
        .patch_status("owned", &other, &Patch::Apply(&removed))
        .await
        .expect("remove the other manager's condition");
    let p = s.get("owned").await;
    let p = s.wait_sweeps("owned", totals_sweeps(&p), 1).await;
    assert_eq!(
        condition_types(&p),
        ["Degraded", "GuardTripped", "Ready", "SpecInvalid"],
        "{:#?}",
        p.status
    );
}
