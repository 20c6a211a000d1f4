//! Local stand-ins for the providers `sluice actions` calls, on one HTTP server,
//! each under its own prefix, answering in the real API's shape: the Telegram Bot
//! API (`sendMessage` with or without `message_thread_id`, the media methods,
//! `createForumTopic` with a fresh `message_thread_id`, `editForumTopic` and the
//! other forum calls), the WhatsApp Cloud API, a Twilio-style SMS API, an
//! OpenAI-compatible chat completion, and the webhook, helpdesk and CRM endpoints.
//! Every request is recorded.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, Uri},
    routing::post,
};
use serde_json::{Value, json};

/// One request a provider received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Which provider (`telegram`, `whatsapp`, `sms`, `ai`, `webhook`, `helpdesk`, `crm`).
    pub(crate) provider: &'static str,
    /// The method or path called (`sendMessage`, `/v21.0/+4930123/messages`, …).
    pub(crate) call: String,
    /// The body as received (JSON or a form).
    pub(crate) body: String,
}

#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<Request>>>,
    ids: Arc<AtomicU64>,
}

impl Recorder {
    fn record(&self, provider: &'static str, call: impl Into<String>, body: &str) -> u64 {
        self.requests
            .lock()
            .expect("the request log")
            .push(Request {
                provider,
                call: call.into(),
                body: body.to_owned(),
            });
        self.ids.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The running fake providers.
pub(crate) struct Providers {
    /// Where they listen.
    pub(crate) addr: SocketAddr,
    recorder: Recorder,
}

impl Providers {
    /// Starts the server on a free port.
    pub(crate) async fn start() -> Providers {
        let recorder = Recorder::default();
        let app = Router::new()
            .route("/telegram/{bot}/{method}", post(telegram))
            .route("/whatsapp/{version}/{phone}/messages", post(whatsapp))
            .route("/sms/2010-04-01/Accounts/{sid}/Messages.json", post(sms))
            .route("/ai/v1/chat/completions", post(ai))
            .route("/webhook", post(hook))
            .route("/helpdesk", post(hook))
            .route("/crm", post(hook))
            .with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake providers");
        let addr = listener.local_addr().expect("their address");
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serving the fake providers");
        });
        Providers { addr, recorder }
    }

    /// The base URL of one provider (`telegram`, `whatsapp`, `sms`, `ai`, `webhook`, …).
    pub(crate) fn url(&self, provider: &str) -> String {
        format!("http://{}/{provider}", self.addr)
    }

    /// Every request so far.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.recorder
            .requests
            .lock()
            .expect("the request log")
            .clone()
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

async fn telegram(
    State(recorder): State<Recorder>,
    Path((_bot, method)): Path<(String, String)>,
    body: String,
) -> Json<Value> {
    let id = recorder.record("telegram", method.as_str(), &body);
    let request = parse(&body);
    let result = match method.as_str() {
        "createForumTopic" => json!({
            "message_thread_id": 1000 + id,
            "name": request.get("name").cloned().unwrap_or(Value::Null),
            "icon_color": 7_322_096,
        }),
        method if method.starts_with("send") => {
            let mut message = json!({
                "message_id": id,
                "date": 1_767_225_600,
                "chat": { "id": request.get("chat_id").cloned().unwrap_or(Value::Null) },
            });
            for key in ["message_thread_id", "text", "caption"] {
                if let Some(value) = request.get(key) {
                    message[key] = value.clone();
                }
            }
            message
        }
        // editForumTopic, closeForumTopic, reopenForumTopic, answerCallbackQuery, …
        _ => Value::Bool(true),
    };
    Json(json!({ "ok": true, "result": result }))
}

async fn whatsapp(State(recorder): State<Recorder>, uri: Uri, body: String) -> Json<Value> {
    let id = recorder.record("whatsapp", uri.path(), &body);
    let to = parse(&body).get("to").cloned().unwrap_or(Value::Null);
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": format!("wamid.fake{id}") }],
    }))
}

async fn sms(
    State(recorder): State<Recorder>,
    uri: Uri,
    body: String,
) -> (StatusCode, Json<Value>) {
    let id = recorder.record("sms", uri.path(), &body);
    (
        StatusCode::CREATED,
        Json(json!({ "sid": format!("SM{id:032}"), "status": "queued" })),
    )
}

async fn ai(State(recorder): State<Recorder>, body: String) -> Json<Value> {
    let id = recorder.record("ai", "chat/completions", &body);
    let model = parse(&body).get("model").cloned().unwrap_or(Value::Null);
    Json(json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "billing" },
            "finish_reason": "stop",
        }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11 },
    }))
}

async fn hook(State(recorder): State<Recorder>, uri: Uri, body: String) -> Json<Value> {
    let provider = match uri.path() {
        "/helpdesk" => "helpdesk",
        "/crm" => "crm",
        _ => "webhook",
    };
    let id = recorder.record(provider, uri.path(), &body);
    Json(json!({ "ok": true, "id": id.to_string() }))
}
