//! Stripe webhooks: `POST /v1/{tenant}/stripe`, one
//! [Event](https://docs.stripe.com/api/events/object) per request, signed with
//! `Stripe-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256 of `t.body`; any of several `v1`
//! may match; `t` must be within the tolerance, 300 s by default, against replays).
//!
//! | Stripe event | becomes |
//! |---|---|
//! | `payment_intent.succeeded` | `payment.received`: `amount_received`, `currency` |
//! | `checkout.session.completed` with `payment_status: paid`, `checkout.session.async_payment_succeeded` | `payment.received`: `amount_total` |
//! | `invoice.paid` | `payment.received`: `amount_paid` |
//! | anything else | ignored, 200 |
//!
//! Stripe amounts are already in the currency's smallest unit, so they are the
//! `amount_minor` as is; the currency is upper-cased (`usd` → `USD`).
//!
//! **Who paid** — the first of: `metadata.sluice_urn` (set it when creating the payment
//! to attribute it to a channel identity, e.g. `telegram:1111111`), the Stripe customer
//! (`stripe:<cus_…>`), an e-mail (`mailto:<address>`, lower-cased: `receipt_email`,
//! `customer_details.email`, `customer_email`), a phone (`tel:+…`). A payment with none
//! of them cannot be attributed to a contact and is ignored (counted, 200).
//!
//! **Event id** — `stripe:<payment_intent id>` when the object has one, else
//! `stripe:<evt id>`: the `payment_intent.succeeded` and `checkout.session.completed`
//! of one payment share an id, so the engine records the payment once.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use sluice_schemas::{EventType, Payload, PaymentPayload};

use super::{Adapter, Channel, Normalized, header, parse_json, secs_to_ms, with_origin};
use crate::{Error, Result, config::StripeConfig, identity, signature};

const ADAPTER: Adapter = Adapter::Stripe;

/// Checks `Stripe-Signature` at `now_secs` with the given tolerance.
pub fn verify(
    config: &StripeConfig,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<()> {
    signature::verify_stripe_header(
        &config.signing_secret.0,
        body,
        header(headers, "stripe-signature"),
        now_secs,
        tolerance_secs,
    )
}

#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    account: Option<String>,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: Value,
}

fn text<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(object, |value, key| value.get(key))?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// An id that may be expanded into an object (`"cus_1"` or `{"id": "cus_1", …}`).
fn id_of<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    let value = object.get(key)?;
    value
        .as_str()
        .or_else(|| value.get("id")?.as_str())
        .filter(|s| !s.is_empty())
}

/// Who paid, by the rule in the module docs.
fn payer_urn(object: &Value) -> Option<String> {
    if let Some(urn) = text(object, &["metadata", "sluice_urn"]).filter(|u| identity::is_urn(u)) {
        return Some(urn.to_owned());
    }
    if let Some(customer) = id_of(object, "customer") {
        return Some(format!("stripe:{customer}"));
    }
    let email = text(object, &["receipt_email"])
        .or_else(|| text(object, &["customer_details", "email"]))
        .or_else(|| text(object, &["customer_email"]));
    if let Some(email) = email.filter(|e| e.contains('@')) {
        return Some(format!("mailto:{}", email.to_lowercase()));
    }
    text(object, &["customer_details", "phone"]).and_then(identity::tel_urn)
}

/// Normalizes one Stripe event for `tenant`.
pub fn normalize(tenant: &str, body: &[u8]) -> Result<Normalized> {
    let event: StripeEvent = parse_json(ADAPTER, body)?;
    let mut out = Normalized::default();
    let object = &event.data.object;
    let amount_field = match event.kind.as_str() {
        "payment_intent.succeeded" => "amount_received",
        "checkout.session.completed" if text(object, &["payment_status"]) == Some("paid") => {
            "amount_total"
        }
        "checkout.session.async_payment_succeeded" => "amount_total",
        "invoice.paid" => "amount_paid",
        _ => {
            out.ignore(ADAPTER, "event type");
            return Ok(out);
        }
    };
    let amount = object
        .get(amount_field)
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            Error::malformed(
                ADAPTER.as_str(),
                format!(
                    "{}: data.object.{amount_field} is not an integer",
                    event.kind
                ),
            )
        })?;
    let currency = text(object, &["currency"])
        .map(str::to_ascii_uppercase)
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| {
            Error::malformed(
                ADAPTER.as_str(),
                "data.object.currency is not an ISO 4217 code",
            )
        })?;
    let Some(urn) = payer_urn(object) else {
        tracing::warn!(
            adapter = ADAPTER.as_str(),
            tenant,
            stripe_event = %event.id,
            "payment without customer, e-mail, phone or metadata.sluice_urn; not attributed"
        );
        out.ignore(ADAPTER, "payment without a payer");
        return Ok(out);
    };
    let object_id = text(object, &["id"]).unwrap_or(&event.id);
    let payment_id = if object_id.starts_with("pi_") {
        object_id
    } else {
        id_of(object, "payment_intent").unwrap_or(object_id)
    };
    let id = if payment_id.starts_with("pi_") {
        format!("stripe:{payment_id}")
    } else {
        format!("stripe:{}", event.id)
    };
    let channel = Channel {
        tenant,
        channel_type: "stripe",
        channel_id: event.account.as_deref().unwrap_or("stripe"),
    };
    let payload = Payload::Payment(PaymentPayload {
        payment_id: payment_id.to_owned(),
        amount_minor: amount,
        currency,
        description: text(object, &["description"]).map(str::to_owned),
    });
    let at = secs_to_ms(ADAPTER, event.created)?;
    let normalized = channel.event(id, &urn, EventType::PaymentReceived, at, payload);
    out.events
        .push(with_origin(normalized, None, Some(event.id.clone())));
    Ok(out)
}
