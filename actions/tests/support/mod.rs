//! Test support: a local HTTP server standing in for every provider, recording
//! each request, and a worker on the in-memory bus wired to it.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use sluice_actions::{ActionsConfig, Stores};
use sluice_infra::{
    bus::{Delivered, EventBus, MemoryBus, Record, Subscription},
    telemetry::Telemetry,
};
use sluice_schemas::{Action, ActionPayload, ActionType, Event, SendMessage};

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Responder = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

#[derive(Clone)]
pub struct Provider {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

/// What a provider answers when nothing is scripted: a success in each API's shape.
pub fn default_answer(seen: &Seen) -> Answer {
    let path = seen.path.as_str();
    if path.contains("/createForumTopic") {
        Answer::json(
            200,
            serde_json::json!({"ok": true, "result": {"message_thread_id": 77, "name": "x", "icon_color": 0}}),
        )
    } else if path.starts_with("/bot") {
        Answer::json(
            200,
            serde_json::json!({"ok": true, "result": {"message_id": 501, "chat": {"id": 1}}}),
        )
    } else if path.ends_with("/messages") {
        Answer::json(
            200,
            serde_json::json!({"messaging_product": "whatsapp", "contacts": [{"input": "1", "wa_id": "1"}], "messages": [{"id": "wamid.HBgL"}]}),
        )
    } else if path.ends_with("/Messages.json") {
        Answer::json(201, serde_json::json!({"sid": "SM123", "status": "queued"}))
    } else if path == "/v1/chat/completions" {
        Answer::json(
            200,
            serde_json::json!({"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from AI"}, "finish_reason": "stop"}]}),
        )
    } else {
        Answer::json(200, serde_json::json!({"message_id": "web-1"}))
    }
}

impl Provider {
    pub async fn start() -> Self {
        Self::start_with(Arc::new(default_answer)).await
    }

    pub async fn start_with(default: Responder) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let (s, q) = (Arc::clone(&seen), Arc::clone(&script));
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, script, default) =
                    (Arc::clone(&s), Arc::clone(&q), Arc::clone(&default));
                async move {
                    let request = Seen {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                        at: Instant::now(),
                    };
                    let answer = script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or_else(|| default(&request));
                    seen.lock().unwrap().push(request);
                    if !answer.delay.is_zero() {
                        tokio::time::sleep(answer.delay).await;
                    }
                    let mut response: Response =
                        (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
                    for (k, v) in answer.headers {
                        response.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    response
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider { addr, seen, script }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answer: Answer) {
        self.script.lock().unwrap().push_back(answer);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A config with every provider pointed at `provider`, fast retries, no rate limits.
pub fn config(provider: &Provider) -> ActionsConfig {
    let url = provider.url();
    let mut config = ActionsConfig {
        worker_id: Some("test-worker".into()),
        poll_timeout_ms: 20,
        ..ActionsConfig::default()
    };
    config.retry.base_backoff_ms = 20;
    config.retry.max_backoff_ms = 200;
    config.retry.budget_ms = 5_000;
    config.rate_limits.clear();
    config.telegram.api_url = url.clone();
    config.telegram.token = Some(sluice_actions::Secret("123:ABC".into()));
    config.whatsapp.api_url = url.clone();
    config.whatsapp.token = Some(sluice_actions::Secret("wa-token".into()));
    config.sms.api_url = url.clone();
    config.sms.account_sid = "AC123".into();
    config.sms.auth_token = Some(sluice_actions::Secret("sms-token".into()));
    config.webhook = Some(sluice_actions::SignedEndpoint {
        url: format!("{url}/web/hook"),
        secret: Some(sluice_actions::Secret("hook-secret".into())),
    });
    config.ai.api_url = url.clone();
    config.ai.api_key = Some(sluice_actions::Secret("sk-test".into()));
    config
}

/// A worker on the in-memory bus, running until dropped.
pub struct Harness {
    pub bus: MemoryBus,
    pub stores: Stores,
    pub telemetry: Telemetry,
    events: Box<dyn Subscription>,
    dlq: Box<dyn Subscription>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub async fn start(config: ActionsConfig) -> Self {
        Self::start_with(config, Stores::memory()).await
    }

    pub async fn start_with(config: ActionsConfig, stores: Stores) -> Self {
        let bus = MemoryBus::new(4);
        let telemetry = Telemetry::new("actions").unwrap();
        let worker = config
            .build(Arc::new(bus.clone()), stores.clone(), &telemetry)
            .await
            .unwrap();
        worker.ensure_topics(4, 1).await.unwrap();
        let events = bus
            .subscribe("test-events", &["sluice.events"])
            .await
            .unwrap();
        let dlq = bus.subscribe("test-dlq", &["sluice.dlq"]).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            worker
                .run(
                    async {
                        let _ = stopped.await;
                    },
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
        });
        Harness {
            bus,
            stores,
            telemetry,
            events,
            dlq,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn publish(&self, actions: &[Action]) {
        let records = actions
            .iter()
            .map(|a| Record::new(a.key(), a.encode().unwrap()))
            .collect();
        self.bus.publish("sluice.actions", records).await.unwrap();
    }

    pub async fn publish_raw(&self, key: &str, payload: Vec<u8>) {
        self.bus
            .publish("sluice.actions", vec![Record::new(key, payload)])
            .await
            .unwrap();
    }

    /// Waits for `n` result events (10 s at most).
    pub async fn events(&mut self, n: usize) -> Vec<Event> {
        collect(&mut self.events, n)
            .await
            .iter()
            .map(|d| Event::decode(&d.payload).unwrap())
            .collect()
    }

    /// Waits for `n` dead letters (10 s at most).
    pub async fn dead_letters(&mut self, n: usize) -> Vec<Delivered> {
        collect(&mut self.dlq, n).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

async fn collect(subscription: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivered> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n && Instant::now() < deadline {
        out.extend(
            subscription
                .poll(n - out.len(), Duration::from_millis(50))
                .await
                .unwrap(),
        );
    }
    assert_eq!(out.len(), n, "expected {n} records, got {}", out.len());
    out
}

/// A `message.send` action.
pub fn send(id: &str, contact: &str, channel_type: &str, to: &str, text: &str) -> Action {
    action(
        id,
        contact,
        ActionType::MessageSend,
        ActionPayload::SendMessage(SendMessage {
            channel_type: channel_type.into(),
            channel_id: "ch-1".into(),
            to: to.into(),
            session_id: None,
            text: Some(text.into()),
            media: None,
            buttons: vec![],
        }),
    )
}

pub fn action(id: &str, contact: &str, action_type: ActionType, payload: ActionPayload) -> Action {
    Action {
        id: id.into(),
        tenant: "acme".into(),
        contact_id: contact.into(),
        run_id: "run-1".into(),
        flow_id: "flow-1".into(),
        flow_version: 1,
        node_id: "n1".into(),
        action_type,
        created_at: 1_767_225_600_000,
        not_before: None,
        chain_depth: 0,
        payload,
    }
}
