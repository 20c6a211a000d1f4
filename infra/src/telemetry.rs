//! The operations endpoint every service exposes: `/metrics` (Prometheus text),
//! `/healthz` (the process is alive) and `/readyz` (it is ready for traffic —
//! connected, assigned, caught up — as the service itself declares).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get,
};
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::net::TcpListener;

use crate::{Error, Result};

/// A service's metrics registry and readiness flag.
#[derive(Clone)]
pub struct Telemetry {
    registry: Registry,
    ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// A registry for `service` (`ingest`, `engine`, `actions`, `dev`), holding
    /// `sluice_build_info{service, version}`. Not ready until [`Telemetry::set_ready`].
    pub fn new(service: &str) -> Result<Self> {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "sluice_build_info",
                "Always 1; labels say which build is running.",
            ),
            &["service", "version"],
        )?;
        build_info
            .with_label_values(&[service, env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        Ok(Telemetry {
            registry,
            ready: Arc::default(),
        })
    }

    /// The registry the service registers its metrics in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Declares the service ready (or not) for traffic.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether the service declared itself ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The current metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a malformed metric is a bug we
        // would rather serve partially than hide behind an error page.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// The `/metrics`, `/healthz` and `/readyz` routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }

    /// Binds `addr` and serves [`Telemetry::router`] until `shutdown` resolves.
    /// Returns the bound address (useful with port 0) and the server task.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        self.serve_with(addr, Router::new(), shutdown).await
    }

    /// [`serve`](Self::serve), with `extra` routes next to the telemetry ones (a
    /// service's own endpoints, such as the engine's test-only `/debug/clock`).
    pub async fn serve_with(
        &self,
        addr: SocketAddr,
        extra: Router,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Serve { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| Error::Serve { addr, source })?;
        let app = self.router().merge(extra);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, addr = %bound, "telemetry endpoint stopped");
            }
        });
        tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
        Ok((bound, task))
    }
}

async fn metrics(State(telemetry): State<Telemetry>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry.render(),
    )
}

async fn readyz(State(telemetry): State<Telemetry>) -> impl IntoResponse {
    if telemetry.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
