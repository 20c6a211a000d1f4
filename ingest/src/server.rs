//! The HTTP front door: one route per adapter and tenant, body limits, and the mapping
//! from outcomes to HTTP statuses.
//!
//! | outcome | status |
//! |---|---|
//! | published (acknowledged by Kafka), or deliberately ignored | 200 `{"published":n,"duplicates":d,"ignored":i}` |
//! | malformed payload | 400 `{"error": reason}` |
//! | bad or missing signature | 401 |
//! | handshake refused, event of another tenant | 403 |
//! | unknown tenant, channel or bot | 404 |
//! | body over the limit | 413 |
//! | too many publishes in flight | 429, `Retry-After: 1` |
//! | Kafka down, slow or failing | 503, `Retry-After: 5` |

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use sluice_infra::{
    bus::{EventBus, TopicSpec, topics},
    telemetry::Telemetry,
};
use tokio::net::TcpListener;

use crate::{
    adapters::{Adapter, Normalized, generic, helpdesk, meta, stripe, telegram, twilio, whatsapp},
    config::{IngestConfig, IngestSettings, channel},
    error::{Error, Result},
    metrics::Metrics,
    publish::Publisher,
    signature,
};

/// The running ingest service: configuration, publisher and metrics behind the router.
#[derive(Debug, Clone)]
pub struct Ingest {
    state: Arc<AppState>,
}

#[derive(Debug)]
struct AppState {
    config: IngestConfig,
    settings: IngestSettings,
    publisher: Arc<Publisher>,
    metrics: Metrics,
}

impl Ingest {
    /// Wires the service: registers its metrics in `telemetry` and publishes to `bus`.
    pub fn new(
        config: IngestConfig,
        settings: IngestSettings,
        bus: Arc<dyn EventBus>,
        telemetry: &Telemetry,
    ) -> Result<Self> {
        let metrics = Metrics::register(telemetry.registry())?;
        let publisher = Arc::new(
            Publisher::new(
                bus,
                settings.publish_timeout,
                settings.max_in_flight,
                settings.dedupe_capacity,
                metrics.clone(),
                telemetry.clone(),
            )
            .with_topic(settings.events_topic.clone()),
        );
        Ok(Ingest {
            state: Arc::new(AppState {
                config,
                settings,
                publisher,
                metrics,
            }),
        })
    }

    /// The webhook routes, with the body limit applied.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/{tenant}/telegram/{bot}", post(telegram_hook))
            .route(
                "/v1/{tenant}/whatsapp",
                get(whatsapp_handshake).post(whatsapp_hook),
            )
            .route(
                "/v1/{tenant}/messenger",
                get(messenger_handshake).post(messenger_hook),
            )
            .route("/v1/{tenant}/twilio", post(twilio_hook))
            .route("/v1/{tenant}/stripe", post(stripe_hook))
            .route("/v1/{tenant}/helpdesk", post(helpdesk_hook))
            .route("/v1/{tenant}/events", post(events_hook))
            .layer(DefaultBodyLimit::max(self.state.settings.body_limit))
            .with_state(Arc::clone(&self.state))
    }

    /// Probes the bus once (readiness), starts the background probe, binds the listener
    /// and serves until `shutdown` resolves. Returns the bound address and the task.
    pub async fn serve(
        &self,
        events_topic: TopicSpec,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let addr = self.state.settings.listen;
        let publisher = Arc::clone(&self.state.publisher);
        if !publisher.probe(&events_topic).await {
            tracing::warn!(
                topic = topics::EVENTS,
                "bus not reachable yet; serving, not ready"
            );
        }
        let probe = tokio::spawn(
            Arc::clone(&publisher).probe_loop(events_topic, self.state.settings.probe_interval),
        );
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Serve { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| Error::Serve { addr, source })?;
        let app = self.router();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, addr = %bound, "webhook server stopped");
            }
            probe.abort();
        });
        tracing::info!(addr = %bound, "serving webhooks");
        Ok((bound, task))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The part of a reason that is safe to log: serde quotes offending values with `"`, so
/// everything from the first quote on is left out (payloads are never logged).
fn loggable(reason: &str) -> &str {
    reason.split('"').next().unwrap_or_default()
}

impl AppState {
    /// Runs `normalize` (which verifies first), publishes, and answers.
    async fn handle(
        &self,
        adapter: Adapter,
        tenant: &str,
        normalize: impl FnOnce(&AppState, i64) -> Result<Normalized>,
    ) -> Response {
        let outcome = match normalize(self, now_ms()) {
            Ok(normalized) => {
                if normalized.ignored > 0 {
                    self.metrics
                        .ignored
                        .with_label_values(&[adapter.as_str()])
                        .inc_by(normalized.ignored as u64);
                }
                let ignored = normalized.ignored;
                self.publisher
                    .publish(normalized.events)
                    .await
                    .map(|published| (published, ignored))
            }
            Err(error) => Err(error),
        };
        let response = match outcome {
            Ok((published, ignored)) => (
                StatusCode::OK,
                Json(json!({
                    "published": published.published,
                    "duplicates": published.duplicates,
                    "ignored": ignored,
                })),
            )
                .into_response(),
            Err(error) => self.failure(adapter, tenant, &error),
        };
        self.metrics
            .requests
            .with_label_values(&[adapter.as_str(), response.status().as_str()])
            .inc();
        response
    }

    fn failure(&self, adapter: Adapter, tenant: &str, error: &Error) -> Response {
        let status = error.status();
        let name = adapter.as_str();
        match error {
            Error::Unauthorized { reason, .. } => {
                self.metrics
                    .signature_failures
                    .with_label_values(&[name])
                    .inc();
                tracing::warn!(adapter = name, tenant, reason, "signature rejected");
            }
            Error::Malformed { reason, .. } => {
                self.metrics.malformed.with_label_values(&[name]).inc();
                tracing::info!(
                    adapter = name,
                    tenant,
                    reason = loggable(reason),
                    "malformed payload"
                );
            }
            _ if error.is_retryable() => {
                tracing::warn!(adapter = name, tenant, %error, "not published; provider will retry");
            }
            _ if status.is_server_error() => {
                tracing::error!(adapter = name, tenant, %error, "request failed");
            }
            _ => tracing::info!(
                adapter = name,
                tenant,
                error = loggable(&error.to_string()),
                "request refused"
            ),
        }
        let mut response = (status, Json(json!({ "error": error.to_string() }))).into_response();
        let retry_after = match error {
            Error::Busy { .. } => Some("1"),
            _ if error.is_retryable() => Some("5"),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(seconds),
            );
        }
        response
    }
}

type AppRef = State<Arc<AppState>>;

async fn telegram_hook(
    State(app): AppRef,
    Path((tenant, bot)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Telegram, &tenant, |app, now| {
        let tenant_config = app.config.tenant(&tenant)?;
        let bots = channel(&tenant, "telegram", tenant_config.telegram.as_ref())?;
        let config = bots
            .bots
            .get(&bot)
            .ok_or_else(|| Error::NotFound(format!("telegram bot {bot:?} of tenant {tenant:?}")))?;
        telegram::verify(config, &headers)?;
        telegram::normalize(&tenant, &bot, config, &body, now)
    })
    .await
}

async fn whatsapp_hook(
    State(app): AppRef,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Whatsapp, &tenant, |app, _| {
        let tenant_config = app.config.tenant(&tenant)?;
        let config = channel(&tenant, "whatsapp", tenant_config.whatsapp.as_ref())?;
        whatsapp::verify(config, &headers, &body)?;
        whatsapp::normalize(&tenant, &body)
    })
    .await
}

async fn messenger_hook(
    State(app): AppRef,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Messenger, &tenant, |app, now| {
        let tenant_config = app.config.tenant(&tenant)?;
        let config = channel(&tenant, "messenger", tenant_config.messenger.as_ref())?;
        meta::verify(config, &headers, &body)?;
        meta::normalize(&tenant, &body, now)
    })
    .await
}

async fn handshake(
    app: &AppState,
    adapter: Adapter,
    tenant: &str,
    query: &HashMap<String, String>,
) -> Response {
    let result = app.config.tenant(tenant).and_then(|tenant_config| {
        let config = match adapter {
            Adapter::Whatsapp => tenant_config.whatsapp.as_ref(),
            _ => tenant_config.messenger.as_ref(),
        };
        let config = channel(tenant, adapter.as_str(), config)?;
        whatsapp::handshake(
            adapter,
            config,
            query.get("hub.mode").map(String::as_str),
            query.get("hub.verify_token").map(String::as_str),
            query.get("hub.challenge").map(String::as_str),
        )
    });
    let response = match result {
        Ok(challenge) => (StatusCode::OK, challenge).into_response(),
        Err(error) => app.failure(adapter, tenant, &error),
    };
    app.metrics
        .requests
        .with_label_values(&[adapter.as_str(), response.status().as_str()])
        .inc();
    response
}

async fn whatsapp_handshake(
    State(app): AppRef,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    handshake(&app, Adapter::Whatsapp, &tenant, &query).await
}

async fn messenger_handshake(
    State(app): AppRef,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    handshake(&app, Adapter::Messenger, &tenant, &query).await
}

/// The URL Twilio called: the configured public base URL, or one rebuilt from
/// `X-Forwarded-Proto` and `Host`, followed by the path and query.
fn public_url(settings: &IngestSettings, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    match &settings.public_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => {
            let proto = crate::adapters::header(headers, "x-forwarded-proto").unwrap_or("http");
            let host = crate::adapters::header(headers, "host").unwrap_or("localhost");
            format!("{proto}://{host}{path}")
        }
    }
}

async fn twilio_hook(
    State(app): AppRef,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Twilio, &tenant, |app, now| {
        let tenant_config = app.config.tenant(&tenant)?;
        let config = channel(&tenant, "twilio", tenant_config.twilio.as_ref())?;
        let params = twilio::parse_form(&body);
        twilio::verify(
            config,
            &headers,
            &public_url(&app.settings, &headers, &uri),
            &params,
        )?;
        twilio::normalize(&tenant, &params, now)
    })
    .await
}

async fn stripe_hook(
    State(app): AppRef,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Stripe, &tenant, |app, now| {
        let tenant_config = app.config.tenant(&tenant)?;
        let config = channel(&tenant, "stripe", tenant_config.stripe.as_ref())?;
        let tolerance = i64::try_from(app.settings.stripe_tolerance.as_secs()).unwrap_or(i64::MAX);
        stripe::verify(config, &headers, &body, now / 1000, tolerance)?;
        stripe::normalize(&tenant, &body)
    })
    .await
}

async fn helpdesk_hook(
    State(app): AppRef,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Helpdesk, &tenant, |app, _| {
        let tenant_config = app.config.tenant(&tenant)?;
        let config = channel(&tenant, "helpdesk", tenant_config.helpdesk.as_ref())?;
        signature::verify_sha256_header(
            Adapter::Helpdesk.as_str(),
            &config.secret.0,
            &body,
            crate::adapters::header(&headers, "x-sluice-signature"),
        )?;
        helpdesk::normalize(&tenant, &body)
    })
    .await
}

async fn events_hook(
    State(app): AppRef,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.handle(Adapter::Events, &tenant, |app, _| {
        let tenant_config = app.config.tenant(&tenant)?;
        let config = channel(&tenant, "events", tenant_config.events.as_ref())?;
        signature::verify_sha256_header(
            Adapter::Events.as_str(),
            &config.secret.0,
            &body,
            crate::adapters::header(&headers, "x-sluice-signature"),
        )?;
        generic::normalize(&tenant, &body)
    })
    .await
}
