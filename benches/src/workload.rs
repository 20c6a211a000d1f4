//! The events the load generator sends: Telegram text messages from `contacts`
//! users of one bot, normalized by ingest's own Telegram adapter
//! ([`sluice_ingest::adapters::telegram::normalize`]) and Avro-encoded with
//! [`Event::encode`], keyed `tenant/contact_id` — byte for byte what `sluice ingest`
//! publishes for such a webhook.
//!
//! Every event has a sequence number `seq`: its Telegram `update_id` is
//! [`UPDATE_BASE`]` + seq`, so its event id is `telegram:<bot>:<update_id>`, and
//! it is sent by user `seq % contacts`. A flow that answers with the event id (the
//! benchmark flow's `{{ event.id }}`) lets the tracker find the event of each action.

use anyhow::Context as _;
use rdkafka::message::{Header, OwnedHeaders};
use sluice_ingest::{adapters::telegram, config::TelegramBot};
use sluice_schemas::Event;

/// The first Telegram `update_id`; the load generator's users are
/// `USER_BASE + contact`.
pub const UPDATE_BASE: i64 = 1_000_000_000;
const USER_BASE: i64 = 7_000_000;

/// The Kafka header carrying an event's sequence number (decimal), which a
/// passthrough copies to its output.
pub const SEQ_HEADER: &str = "bench.seq";

/// One encoded event, ready to produce.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Kafka key: `tenant/contact_id`.
    pub key: String,
    /// Avro single-object encoding of the event.
    pub payload: Vec<u8>,
}

/// The Kafka headers of event `seq`.
pub fn seq_headers(seq: u64) -> OwnedHeaders {
    let value = seq.to_string();
    OwnedHeaders::new_with_capacity(1).insert(Header {
        key: SEQ_HEADER,
        value: Some(value.as_bytes()),
    })
}

/// Reads [`SEQ_HEADER`].
pub fn seq_of_header(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Who sends what.
#[derive(Debug, Clone)]
pub struct Workload {
    tenant: String,
    bot_name: String,
    bot: TelegramBot,
    contacts: u64,
}

impl Workload {
    /// `contacts` Telegram users writing to bot `bot_name` of `tenant`.
    pub fn new(tenant: &str, bot_name: &str, contacts: u64) -> anyhow::Result<Self> {
        let bot: TelegramBot =
            serde_json::from_value(serde_json::json!({ "secret_token": "bench" }))
                .context("building the bot's configuration")?;
        Ok(Workload {
            tenant: tenant.to_owned(),
            bot_name: bot_name.to_owned(),
            bot,
            contacts: contacts.max(1),
        })
    }

    /// The tenant the events belong to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Events `seqs`, as ingest would publish them at `now_ms`.
    pub fn prepare(
        &self,
        seqs: std::ops::Range<u64>,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Prepared>> {
        seqs.map(|seq| self.event(seq, now_ms)).collect()
    }

    fn event(&self, seq: u64, now_ms: i64) -> anyhow::Result<Prepared> {
        let user = USER_BASE + i64::try_from(seq % self.contacts)?;
        let update_id = UPDATE_BASE + i64::try_from(seq)?;
        let update = serde_json::json!({
            "update_id": update_id,
            "message": {
                "message_id": seq,
                "from": { "id": user, "is_bot": false, "first_name": "Bench", "username": format!("bench_{user}") },
                "chat": { "id": user, "type": "private", "first_name": "Bench" },
                "date": now_ms / 1000,
                "text": format!("hello from the load generator, message {seq}"),
            }
        });
        let body = serde_json::to_vec(&update)?;
        let normalized =
            telegram::normalize(&self.tenant, &self.bot_name, &self.bot, &body, now_ms)
                .with_context(|| format!("normalizing update {update_id}"))?;
        let [event]: [Event; 1] = normalized.events.try_into().map_err(|events: Vec<Event>| {
            anyhow::anyhow!("update {update_id} became {} events", events.len())
        })?;
        Ok(Prepared {
            key: event.key(),
            payload: event.encode()?,
        })
    }

    /// The sequence number of the event with id `event_id`, if it is one of ours.
    pub fn seq_of_event_id(&self, event_id: &str) -> Option<u64> {
        let update_id = event_id
            .strip_prefix("telegram:")?
            .strip_prefix(self.bot_name.as_str())?
            .strip_prefix(':')?;
        let update_id: i64 = update_id.parse().ok()?;
        u64::try_from(update_id - UPDATE_BASE).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_ingest_events_keyed_by_contact_and_carry_their_seq() {
        let workload = Workload::new("bench", "bench_bot", 3).unwrap();
        let prepared = workload.prepare(4..6, 1_767_225_600_000).unwrap();
        let event = Event::decode(&prepared[0].payload).unwrap();
        event.validate().unwrap();
        assert_eq!(prepared[0].key, format!("bench/{}", event.contact_id));
        assert_eq!(event.event_type.as_str(), "message.received");
        assert_eq!(workload.seq_of_event_id(&event.id), Some(4));
        // seq 4 and seq 1 are the same user (4 % 3): same key, another event.
        let first = workload.prepare(1..2, 1_767_225_600_000).unwrap();
        assert_eq!(first[0].key, prepared[0].key);
        assert_ne!(Event::decode(&first[0].payload).unwrap().id, event.id);
        assert_ne!(prepared[1].key, prepared[0].key);
        assert_eq!(
            workload.seq_of_event_id("telegram:other_bot:1000000004"),
            None
        );
        assert_eq!(seq_of_header(b"42"), Some(42));
    }
}
