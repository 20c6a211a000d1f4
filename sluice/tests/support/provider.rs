//! A fake message provider: the signed-webhook endpoint the action workers call
//! (`sluice actions --webhook-url`). It records every request — its
//! `Idempotency-Key` (the action id), contact and text — and answers as a provider
//! would, so a test can tell what was executed, and how often.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use axum::{Json, Router, http::HeaderMap, routing::post};
use serde_json::Value;

/// What one action id made the provider do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// The contact the message went to.
    pub contact: String,
    /// The message's text.
    pub text: String,
    /// Requests with this id (1 = executed once).
    pub requests: usize,
}

/// A running fake provider, serving until the test's runtime ends.
pub struct Provider {
    url: String,
    calls: Arc<Mutex<HashMap<String, Executed>>>,
}

impl Provider {
    /// Binds a free local port and serves `POST /hook`.
    pub async fn start() -> Provider {
        let calls: Arc<Mutex<HashMap<String, Executed>>> = Arc::default();
        let recorder = Arc::clone(&calls);
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let recorder = Arc::clone(&recorder);
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
                    recorder
                        .lock()
                        .expect("the provider's record")
                        .entry(key.clone())
                        .or_insert_with(|| Executed {
                            contact: field("contact_id"),
                            text: field("text"),
                            requests: 0,
                        })
                        .requests += 1;
                    Json(serde_json::json!({ "message_id": format!("p-{key}") }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the provider");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("its address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Provider { url, calls }
    }

    /// The URL to give `sluice actions --webhook-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything executed so far, by action id.
    pub fn executed(&self) -> HashMap<String, Executed> {
        self.calls.lock().expect("the provider's record").clone()
    }

    /// Action ids requested more than once, with their request counts.
    pub fn repeated(&self) -> BTreeMap<String, usize> {
        self.calls
            .lock()
            .expect("the provider's record")
            .iter()
            .filter(|(_, e)| e.requests > 1)
            .map(|(id, e)| (id.clone(), e.requests))
            .collect()
    }

    /// Distinct action ids executed per (contact, text).
    pub fn ids_per_message(&self) -> HashMap<(String, String), usize> {
        let mut counts = HashMap::new();
        for executed in self.calls.lock().expect("the provider's record").values() {
            *counts
                .entry((executed.contact.clone(), executed.text.clone()))
                .or_default() += 1;
        }
        counts
    }
}
