//! Logging (text or JSON lines through `tracing`, filtered by `log.filter` or `RUST_LOG`) and
//! metrics (the `metrics` facade, rendered as Prometheus text on `GET /metrics`).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::{LogConfig, LogFormat};

/// Installs the global subscriber (once per process).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    drop(installed);
}

/// The OpenAPI document of `/metrics`, which chatd serves beside the chat API.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(metrics))]
pub struct MetricsDoc;

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the Prometheus recorder as the process's metrics recorder (once; later calls, and an
/// embedding that installed its own recorder first, leave it be).
pub fn install_metrics() {
    METRICS.get_or_init(|| {
        const SECONDS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("chatd_http_request_duration_seconds".into()), SECONDS);
        let Ok(builder) = builder else { return None };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        // Histograms keep their samples until upkeep folds them in; without a scraper calling
        // render, only this keeps them from growing without bound.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_PERIOD);
                    upkeep.run_upkeep();
                }
            })
            .ok()?;
        Some(handle)
    });
}

/// Every metric, in the Prometheus text format.
///
/// Request counts and latencies by route and status, realtime connections by door, events published
/// and delivered, slow-consumer drops, Redis errors, profile cache hits (docs/operations.md). No
/// authentication: keep it on a private network.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics() -> HttpResponse {
    let body = METRICS.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}
