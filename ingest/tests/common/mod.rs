//! Shared by the integration tests: a configuration with every channel, fixtures, and
//! signed requests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, Response},
};
use http_body_util::BodyExt;
use sluice_infra::{bus::EventBus, telemetry::Telemetry};
use sluice_ingest::{Ingest, IngestConfig, IngestSettings, signature};
use tower::ServiceExt;

pub const TG_SECRET: &str = "tg-secret-token";
pub const META_SECRET: &str = "meta-app-secret";
pub const TWILIO_TOKEN: &str = "twilio-auth-token";
pub const STRIPE_SECRET: &str = "whsec_stripe_test";
pub const EVENTS_SECRET: &str = "events-secret";
pub const HELPDESK_SECRET: &str = "helpdesk-secret";
pub const PUBLIC_URL: &str = "https://hooks.example.com";

pub fn config() -> IngestConfig {
    IngestConfig::from_yaml(&format!(
        "tenants:
  acme:
    telegram:
      bots:
        support_bot: {{secret_token: {TG_SECRET}, managers_chat_id: -1001234567890}}
    whatsapp: {{app_secret: {META_SECRET}, verify_token: meta-verify}}
    messenger: {{app_secret: [old-secret, {META_SECRET}]}}
    twilio: {{auth_token: {TWILIO_TOKEN}}}
    stripe: {{signing_secret: {STRIPE_SECRET}}}
    helpdesk: {{secret: {HELPDESK_SECRET}}}
    events: {{secret: {EVENTS_SECRET}}}
  globex:
    events: {{secret: globex-secret}}
"
    ))
    .expect("test config")
}

pub fn settings() -> IngestSettings {
    IngestSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        body_limit: 64 * 1024,
        public_url: Some(PUBLIC_URL.into()),
        ..IngestSettings::default()
    }
}

pub fn app(bus: Arc<dyn EventBus>, settings: IngestSettings) -> (Ingest, Telemetry) {
    let telemetry = Telemetry::new("ingest").unwrap();
    let ingest = Ingest::new(config(), settings, bus, &telemetry).unwrap();
    (ingest, telemetry)
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed request for `adapter` (`telegram`, `whatsapp`, `messenger`, `stripe`,
/// `helpdesk`, `events`) of tenant acme.
pub fn signed(adapter: &str, body: Vec<u8>) -> Request<Body> {
    let builder = Request::post(match adapter {
        "telegram" => "/v1/acme/telegram/support_bot".to_owned(),
        other => format!("/v1/acme/{other}"),
    })
    .header("content-type", "application/json");
    let builder = match adapter {
        "telegram" => builder.header("x-telegram-bot-api-secret-token", TG_SECRET),
        "whatsapp" | "messenger" => builder.header(
            "x-hub-signature-256",
            signature::sign_sha256_header(META_SECRET, &body),
        ),
        "stripe" => builder.header(
            "stripe-signature",
            signature::sign_stripe_header(STRIPE_SECRET, now_secs(), &body),
        ),
        "helpdesk" => builder.header(
            "x-sluice-signature",
            signature::sign_sha256_header(HELPDESK_SECRET, &body),
        ),
        "events" => builder.header(
            "x-sluice-signature",
            signature::sign_sha256_header(EVENTS_SECRET, &body),
        ),
        other => panic!("no signer for {other}"),
    };
    builder.body(Body::from(body)).unwrap()
}

/// A signed Twilio form POST of `params`.
pub fn twilio_request(params: &[(String, String)]) -> Request<Body> {
    let path = "/v1/acme/twilio";
    let sig = signature::sign_twilio(TWILIO_TOKEN, &format!("{PUBLIC_URL}{path}"), params);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Body::from(body))
        .unwrap()
}

pub fn form(path: &str) -> Vec<(String, String)> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&fixture(path)).unwrap();
    map.into_iter().collect()
}

pub async fn send(
    router: &Router,
    request: Request<Body>,
) -> (u16, serde_json::Value, Response<()>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (parts.status.as_u16(), json, Response::from_parts(parts, ()))
}
