//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Context;

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ctx): State<Arc<Context>>) -> (StatusCode, &'static str) {
    if ctx.ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches are not synced yet")
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.encode(),
    )
}

/// Serves health on one address and metrics on another (the same router when they are equal).
pub async fn serve(ctx: Arc<Context>) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx.clone());
    let mut addresses = vec![ctx.settings.health_address];
    if ctx.settings.metrics_address != ctx.settings.health_address {
        addresses.push(ctx.settings.metrics_address);
    }
    let mut handles = Vec::new();
    for address in addresses {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {address} for health and metrics: {e} (choose another with --health-addr / --metrics-addr)"))?;
        let router = router.clone();
        handles.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "health and metrics server stopped");
            }
        }));
    }
    Ok(handles)
}
