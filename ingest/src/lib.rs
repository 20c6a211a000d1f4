//! Ingest: the front door for channel webhooks (Telegram, WhatsApp, Messenger,
//! SMS, payments, helpdesk) and a generic JSON endpoint. It verifies each
//! provider's signature, normalizes payloads into `sluice_schemas::Event`s with
//! deterministic contact and event ids, and publishes them to `sluice.events`,
//! acknowledging a webhook only once Kafka has. Stateless: any replica serves any
//! request. Built by issue #6; today the crate holds no code yet.
