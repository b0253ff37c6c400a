//! One reconcile of one policy: check the spec, decide whether it is due, sweep through the
//! engine, then say what happened in status, events and metrics. The engine decides what to
//! delete; nothing here does.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::context::{Context, LastSwept, FIELD_MANAGER};
use super::events::{self, event};
use super::status::{self, DEGRADED, GUARD_TRIPPED, READY, SPEC_INVALID};
use super::undecodable::{self, Watched};
use crate::crd::{PushgatewayRetention, PushgatewayRetentionStatus};
use crate::discover::Discovered;
use crate::engine::Access;
use crate::error::Fault;
use crate::k8s::KubeSecrets;
use crate::metrics::PolicyLabels;
use crate::policy::{self, CheckedPolicy};
use crate::prepare::{self, Cluster, Timeouts};
use crate::schedule::{until, Due};
use crate::sweep;
use crate::{Error, Result};

#[path = "reconcile_decide.rs"]
mod decide;
use decide::{decide, Decision, Settle};

/// Never requeue sooner than this: a sweep longer than its interval must not spin.
const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// What a reconcile did, and when it wants to look again.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// Another replica leads: nothing touched.
    NotLeader { after: Duration },
    /// The spec was refused: waits for a change.
    SpecInvalid,
    /// `spec.suspend`: waits for a change.
    Suspended,
    /// Not due yet.
    NotDue { after: Duration },
    /// Swept; the next check is `after` from now.
    Swept { after: Duration },
    /// Due, but the last attempt failed and its backoff is not over: nothing touched.
    BackingOff { after: Duration },
    /// The object went away while reconciling: its metrics were forgotten.
    Gone,
}

impl Reconciled {
    pub fn action(&self) -> Action {
        match self {
            Reconciled::NotLeader { after }
            | Reconciled::NotDue { after }
            | Reconciled::Swept { after }
            | Reconciled::BackingOff { after } => Action::requeue(*after),
            Reconciled::SpecInvalid | Reconciled::Suspended | Reconciled::Gone => {
                Action::await_change()
            }
        }
    }
}

fn key(obj: &PushgatewayRetention) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn labels(obj: &PushgatewayRetention) -> PolicyLabels {
    PolicyLabels {
        namespace: obj.namespace().unwrap_or_default(),
        policy: obj.name_any(),
    }
}

fn unix_now() -> f64 {
    Timestamp::now().as_millisecond() as f64 / 1000.0
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Kube(kube::Error::Api(s)) if s.code == 404)
}

/// The reconciler `Controller::run` calls. A policy that cannot be decoded is reported on its
/// own; the others are reconciled.
pub async fn reconcile(watched: Arc<Watched>, ctx: Arc<Context>) -> Result<Action> {
    let obj = match &watched.0 {
        Ok(obj) => obj,
        Err(invalid) => {
            if !ctx.is_leader() {
                return Ok(Action::requeue(ctx.settings.not_leader_requeue));
            }
            return report_undecodable(&watched, invalid, &ctx)
                .await
                .map(|r| r.action());
        }
    };
    let done = reconcile_policy(obj, &ctx).await;
    match &done {
        // Set here, before the reconcile ends, so the watch event of the status it wrote
        // already finds the backoff.
        Err(e) => {
            let (failures, delay) = ctx.failed(&key(obj));
            tracing::info!(
                policy = %key(obj),
                failures,
                backoff_seconds = delay.as_secs_f64(),
                category = e.category(),
                "backing off"
            );
        }
        Ok(Reconciled::NotLeader { .. } | Reconciled::BackingOff { .. }) => {}
        Ok(_) => ctx.succeeded(&key(obj)),
    }
    done.map(|r| r.action())
}

/// A policy that cannot be decoded: its `SpecInvalid` condition and a Warning event say what, once
/// per change (the status written comes back as a watch event, which must find nothing new).
async fn report_undecodable(
    watched: &Watched,
    invalid: &InvalidObject,
    ctx: &Context,
) -> Result<Reconciled> {
    let (namespace, name) = undecodable::names(invalid);
    let message = format!("cannot be decoded: {}", invalid.error);
    tracing::warn!(policy = %format!("{namespace}/{name}"), error = %invalid.error, "policy cannot be decoded; not swept");
    ctx.metrics.record_spec_invalid(&PolicyLabels {
        namespace: namespace.to_string(),
        policy: name.to_string(),
    });
    let prev = undecodable::stored_status(ctx, invalid).await?;
    let generation = invalid.metadata.generation;
    let new = status::spec_invalid(&prev, &message, generation, Timestamp::now());
    if condition_changed(&prev, &new, SPEC_INVALID) {
        let ev = event(EventType::Warning, "Undecodable", "Decode", message);
        undecodable::write_status(ctx, watched, invalid, &new, ev).await?;
    }
    Ok(Reconciled::SpecInvalid)
}

/// Transient failures (the API, discovery, credentials) retry with an exponential backoff.
pub fn error_policy(watched: Arc<Watched>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.record_reconcile_error(error.category());
    let meta = watched.meta();
    let key = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );
    let delay = ctx.retry_in(&key).unwrap_or(ctx.settings.min_backoff);
    tracing::warn!(policy = %key, error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// One reconcile, saying what it did.
#[tracing::instrument(skip_all, fields(policy = %key(obj)))]
pub async fn reconcile_policy(obj: &PushgatewayRetention, ctx: &Context) -> Result<Reconciled> {
    if !ctx.is_leader() {
        return Ok(Reconciled::NotLeader {
            after: ctx.settings.not_leader_requeue,
        });
    }
    match reconcile_as_leader(obj, ctx).await {
        Err(e) if is_not_found(&e) => {
            ctx.metrics.forget(&labels(obj));
            ctx.forget(&key(obj));
            Ok(Reconciled::Gone)
        }
        other => other,
    }
}

async fn reconcile_as_leader(obj: &PushgatewayRetention, ctx: &Context) -> Result<Reconciled> {
    let generation = obj.metadata.generation;
    let mut prev = obj.status.clone().unwrap_or_default();
    let checked = policy::check(&obj.spec, ctx.settings.floor, &ctx.settings.tuning);
    if let Err(e) = &checked {
        tracing::warn!(error = %e, "spec refused");
    }
    // A sweep this process ran whose status the API server did not take (it was away): its
    // status is written now, and it counts as the last sweep, so no due time is swept twice.
    let remembered = ctx.last_swept(&key(obj), generation);
    let unsaved = remembered.as_ref().and_then(|r| r.unsaved.clone());
    if let (Ok(checked), Some(unsaved)) = (&checked, unsaved) {
        if !checked.suspend {
            tracing::info!("writing the status of a sweep the API server did not take");
            apply_status(ctx, obj, &unsaved).await?;
            ctx.status_saved(&key(obj));
            prev = unsaved;
        }
    }
    let now = Timestamp::now();
    let decided = decide(
        obj,
        checked,
        &prev,
        remembered.as_ref(),
        ctx.retry_in(&key(obj)),
        now,
    )?;
    match decided {
        Decision::Settle(settle) => {
            let Settle {
                status,
                event,
                outcome,
            } = *settle;
            if outcome == Reconciled::SpecInvalid {
                ctx.metrics.record_spec_invalid(&labels(obj));
            }
            if status != prev {
                apply_status(ctx, obj, &status).await?;
            }
            if let Some(ev) = event {
                publish(ctx, obj, ev).await;
            }
            Ok(outcome)
        }
        Decision::Sweep { mut checked, due } => {
            checked.sweep.name = key(obj);
            // Leadership can be lost during the sweep: the engine asks before every DELETE.
            checked.sweep.permit = ctx.permit();
            sweep_now(obj, &checked, &prev, due, now, ctx).await
        }
    }
}

/// A due policy: its replicas found, swept through the engine, and what happened said in
/// status, events and metrics.
async fn sweep_now(
    obj: &PushgatewayRetention,
    checked: &CheckedPolicy,
    prev: &PushgatewayRetentionStatus,
    due: Due,
    now: Timestamp,
    ctx: &Context,
) -> Result<Reconciled> {
    let generation = obj.metadata.generation;
    let (found, gateway_http) = match prepare(obj, checked, ctx).await {
        Ok(ready) => ready,
        Err(e) => {
            // The full text, a remote's words included, is for the admin's log only.
            tracing::warn!(error = %e, "cannot find the replicas");
            // The same accounting as `run`: a missing Secret is the user's, a failed discovery
            // the remote's. Both retry with the backoff, since the Secret may yet be created.
            if e.fault() == Fault::Input {
                ctx.metrics.record_spec_invalid(&labels(obj));
            } else {
                ctx.metrics.record_sweep(
                    &labels(obj),
                    &checked.sweep.failed_discovery(&e),
                    unix_now(),
                );
            }
            let new = prepare_failed(prev, &e, generation, now);
            apply_status(ctx, obj, &new).await?;
            if condition_changed(prev, &new, DEGRADED) {
                let reason = e.condition_reason();
                publish(
                    ctx,
                    obj,
                    event(EventType::Warning, reason, "Discover", e.public()),
                )
                .await;
            }
            return Err(e);
        }
    };
    tracing::debug!(
        replicas = found.replicas.len(),
        refused = found.refused.len(),
        "sweeping"
    );
    let mut report = sweep::run(&ctx.engine, &checked.sweep, &gateway_http, found).await;
    ctx.observe_start_times(&key(obj), &mut report);
    let s = &report.summary;
    if report.actions.is_empty() && s.replicas_failed == 0 && s.guard.is_none() {
        // An idle policy every interval: not worth an info line (the delete log has the deletes).
        tracing::debug!(
            replicas = s.replicas,
            groups = s.groups_seen,
            "swept: nothing to do"
        );
    } else {
        tracing::info!(
            replicas = s.replicas,
            failed = s.replicas_failed,
            groups = s.groups_seen,
            deleted = status::deleted(&report),
            deletes_sent = report.delete_requests(),
            would_delete = s.would_delete,
            guard = s.guard.is_some(),
            "swept"
        );
    }
    ctx.metrics.record_sweep(&labels(obj), &report, unix_now());
    let new = status::swept(prev, &report, generation, due.next_tick, now);
    ctx.swept(
        &key(obj),
        LastSwept {
            generation,
            started: now,
            unsaved: Some(new.clone()),
        },
    );
    apply_status(ctx, obj, &new).await?;
    ctx.status_saved(&key(obj));
    for ev in events::for_sweep(&report) {
        publish(ctx, obj, ev).await;
    }
    Ok(Reconciled::Swept {
        after: until(Timestamp::now(), due.next_check).max(MIN_REQUEUE),
    })
}

/// The replicas and a gateway client with the policy's credentials: the one prepare step, with
/// Secrets from the API and Services from this policy's namespace.
async fn prepare(
    obj: &PushgatewayRetention,
    checked: &CheckedPolicy,
    ctx: &Context,
) -> Result<(Discovered, Access)> {
    let cluster = Cluster {
        client: ctx.client.clone(),
        namespace: obj.namespace().unwrap_or_default(),
    };
    let secrets = KubeSecrets {
        client: cluster.client.clone(),
        namespace: cluster.namespace.clone(),
    };
    let timeouts = Timeouts::new(
        ctx.settings.tuning.request_timeout,
        ctx.settings.prometheus_timeout,
    );
    let ready = prepare::prepare(&ctx.engine, checked, &secrets, timeouts, Some(&cluster)).await?;
    Ok((ready.found, ready.gateway))
}

/// The status after a failed prepare: `discovery_failed`, with the reason saying whose fault
/// it is (a missing Secret is not a gateway's failure).
fn prepare_failed(
    prev: &PushgatewayRetentionStatus,
    e: &Error,
    generation: Option<i64>,
    now: Timestamp,
) -> PushgatewayRetentionStatus {
    let mut new = status::discovery_failed(prev, &e.public(), generation, now);
    for c in new.conditions.iter_mut() {
        if c.type_ == DEGRADED || c.type_ == READY {
            c.reason = e.condition_reason().to_string();
        }
    }
    new
}

/// Whether a condition's status, reason or message changed: an event is worth sending once per
/// change, not once per reconcile.
fn condition_changed(
    prev: &PushgatewayRetentionStatus,
    new: &PushgatewayRetentionStatus,
    type_: &str,
) -> bool {
    let find = |s: &PushgatewayRetentionStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    find(prev) != find(new)
}

/// The condition types this controller sets. Conditions merge as a map keyed by `type`, so
/// another field manager may add its own; those are left out of our applies, or we would become
/// a co-owner and keep them after their owner removed them.
const OWN_CONDITIONS: [&str; 4] = [READY, DEGRADED, SPEC_INVALID, GUARD_TRIPPED];

/// Server-side apply of the whole status (our conditions only), by the one field manager.
async fn apply_status(
    ctx: &Context,
    obj: &PushgatewayRetention,
    status: &PushgatewayRetentionStatus,
) -> Result<()> {
    let api: Api<PushgatewayRetention> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let mut status = status.clone();
    status
        .conditions
        .retain(|c| OWN_CONDITIONS.contains(&c.type_.as_str()));
    let patch = serde_json::json!({
        "apiVersion": PushgatewayRetention::api_version(&()),
        "kind": PushgatewayRetention::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

/// Events are best effort: a refused event must not fail or repeat a sweep.
async fn publish(ctx: &Context, obj: &PushgatewayRetention, ev: Event) {
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason = %ev.reason, "cannot publish event");
    }
}

#[cfg(test)]
#[path = "reconcile_prepare_tests.rs"]
mod prepare_tests;
