//! `/livez`, `/readyz` and `/metrics` for the long-running front doors (`controller`, `run`), and
//! `POST /-/reload` for `run`, as Prometheus has it.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Asks the owner of the configuration to reload it; the answer says whether it worked, and how.
pub type ReloadRequests = mpsc::Sender<oneshot::Sender<(bool, String)>>;
use crate::{Error, Result};

/// Readiness: ready once the first watch event (or, for `run`, the policies) arrived, and not
/// while shutting down.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    shutting_down: AtomicBool,
}

impl Health {
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    reload: Option<ReloadRequests>,
}

pub fn router(
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    reload: Option<ReloadRequests>,
) -> Router {
    let mut router = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler));
    if reload.is_some() {
        router = router.route("/-/reload", post(reload_handler));
    }
    router.with_state(AppState {
        health,
        metrics,
        reload,
    })
}

/// 200 with what was loaded, or 500 with every problem (the last good policies stay in force).
async fn reload_handler(State(state): State<AppState>) -> impl IntoResponse {
    let Some(requests) = state.reload else {
        return (StatusCode::NOT_FOUND, "no reload here".to_string());
    };
    let (tx, rx) = oneshot::channel();
    if requests.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_string());
    }
    match rx.await {
        Ok((true, text)) => (StatusCode::OK, text),
        Ok((false, text)) => (StatusCode::INTERNAL_SERVER_ERROR, text),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_string()),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ready")
    } else if state.health.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds `addr` (errors name it) and returns the bound address and the serving future, which
/// ends when `shutdown` completes.
pub async fn bind(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    reload: Option<ReloadRequests>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::startup(format!("listen on {addr}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::startup(format!("listen on {addr}"), e))?;
    let app = router(health, metrics, reload);
    Ok((
        local,
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .into_future(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get_text(addr: SocketAddr, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn readyz_follows_readiness_and_shutdown_livez_is_always_ok() {
        let health = Arc::new(Health::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, serve) = bind(
            "127.0.0.1:0".parse().unwrap(),
            health.clone(),
            Arc::new(Metrics::new()),
            None,
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
        let server = tokio::spawn(serve);
        assert_eq!(get_text(addr, "/livez").await.0, 200);
        assert_eq!(get_text(addr, "/readyz").await.0, 503);
        health.set_ready();
        assert_eq!(get_text(addr, "/readyz").await.0, 200);
        let (code, body) = get_text(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("pgw_janitor_build_info"));
        health.set_shutting_down();
        assert_eq!(
            get_text(addr, "/readyz").await,
            (503, "shutting down".to_string())
        );
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
