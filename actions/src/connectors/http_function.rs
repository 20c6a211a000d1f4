//! Custom function nodes (`http.call`): the node's own request — method, URL,
//! headers, body — with `Idempotency-Key: <action id>` added unless the node sets
//! one. The response comes back as a `function.result` event whose status is
//! `success` (2xx), `error` (any other status, or no response) or `timeout` (the
//! action's `timeout_ms` ran out, retries included).

use std::time::Duration;

use reqwest::Method;
use sluice_schemas::{HttpCall, ResultPayload};

use super::{Http, excerpt};

/// Runs custom function calls.
#[derive(Debug, Clone)]
pub(crate) struct HttpFunction {
    pub(crate) http: Http,
}

/// Response bodies kept in a result event, at most.
const MAX_BODY: usize = 64 * 1024;

impl HttpFunction {
    /// Makes the call; never fails, the result says how it went.
    pub(crate) async fn call(&self, action_id: &str, request: &HttpCall) -> ResultPayload {
        let result = |status: &str| ResultPayload {
            action_id: action_id.to_owned(),
            status: status.to_owned(),
            status_code: None,
            body: None,
            error: None,
        };
        let Ok(method) = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes()) else {
            return ResultPayload {
                error: Some(format!("http.call: invalid method {:?}", request.method)),
                ..result("error")
            };
        };
        if reqwest::Url::parse(&request.url).is_err() {
            return ResultPayload {
                error: Some(format!("http.call: invalid url {:?}", request.url)),
                ..result("error")
            };
        }
        let has_key = request
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("idempotency-key"));
        let deadline = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(1));
        let reply = self
            .http
            .call("function", "http.call", Some(deadline), || {
                let mut builder = self.http.client().request(method.clone(), &request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name, value);
                }
                if !has_key {
                    builder = builder.header("idempotency-key", action_id);
                }
                if let Some(body) = &request.body {
                    builder = builder.body(body.clone());
                }
                builder
            })
            .await;
        match reply {
            Ok(reply) => ResultPayload {
                status_code: Some(i32::from(reply.status)),
                body: Some(truncate(reply.body)),
                ..result("success")
            },
            Err(error) => ResultPayload {
                status_code: error.status.map(i32::from),
                body: error.body.map(truncate),
                error: Some(excerpt(&error.reason).to_owned()),
                ..result(if error.timed_out { "timeout" } else { "error" })
            },
        }
    }
}

fn truncate(mut body: String) -> String {
    if body.len() > MAX_BODY {
        let mut end = MAX_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    body
}
