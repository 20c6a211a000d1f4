//! Identities in one place: how a channel identity (URN) becomes a contact id, and the
//! names that link identities of one person. Ingest derives contact ids with
//! [`contact_id`]; the engine derives the id of a linked identity's contact with the
//! same function, so both always agree.
//!
//! `contact_id = UUIDv5(CONTACT_NAMESPACE, tenant + "\0" + urn)`, hyphenated
//! lower-case. The tenant is part of the name, so two tenants never share a contact id.
//! The namespace is fixed forever: changing it would re-key every contact.
//!
//! Linking (see the README, "Identity linking"): a `custom` event
//! [`LINK_IDENTITY`] with a string field `urn` tells a contact that `urn` is also
//! theirs. The engine then sends [`ALIASED`] to the contact of that URN, which from
//! then on forwards every event it receives as [`FORWARDED`].

use uuid::Uuid;

/// The UUIDv5 namespace of contact ids: `UUIDv5(NAMESPACE_URL, "urn:sluice:contact")`.
pub const CONTACT_NAMESPACE: Uuid = Uuid::from_u128(0xabe5_b596_18e8_549e_a2f6_f934_e931_9b1a);

/// The `custom` event that links another identity (string field `urn`) to a contact.
pub const LINK_IDENTITY: &str = "contact.link_identity";

/// The `custom` event that makes a contact an alias of another (string field `primary`,
/// the primary's contact id).
pub const ALIASED: &str = "contact.aliased";

/// The `custom` event an alias sends its primary for each event it receives (string
/// field `event`, the original event's JSON; long field `hops`).
pub const FORWARDED: &str = "contact.forwarded";

/// The URN scheme of a Telegram forum topic.
pub const TELEGRAM_TOPIC: &str = "telegram-topic";

/// The contact id of `urn` within `tenant`.
pub fn contact_id(tenant: &str, urn: &str) -> String {
    let mut name = Vec::with_capacity(tenant.len() + 1 + urn.len());
    name.extend_from_slice(tenant.as_bytes());
    name.push(0);
    name.extend_from_slice(urn.as_bytes());
    Uuid::new_v5(&CONTACT_NAMESPACE, &name)
        .hyphenated()
        .to_string()
}

/// The URN of forum topic `thread_id` in supergroup `chat_id`:
/// `telegram-topic:<chat id>:<thread id>`.
pub fn telegram_topic_urn(chat_id: i64, thread_id: i64) -> String {
    format!("{TELEGRAM_TOPIC}:{chat_id}:{thread_id}")
}

/// The chat and thread of a `telegram-topic:<chat id>:<thread id>` URN.
pub fn parse_telegram_topic(urn: &str) -> Option<(i64, i64)> {
    let rest = urn.strip_prefix(TELEGRAM_TOPIC)?.strip_prefix(':')?;
    let (chat, thread) = rest.split_once(':')?;
    Some((chat.parse().ok()?, thread.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_derived_as_documented() {
        assert_eq!(
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:sluice:contact"),
            CONTACT_NAMESPACE
        );
    }

    #[test]
    fn contact_ids_are_deterministic_and_tenant_scoped() {
        let a = contact_id("acme", "telegram:1111111");
        assert_eq!(a, contact_id("acme", "telegram:1111111"));
        assert_ne!(a, contact_id("globex", "telegram:1111111"));
        assert_ne!(a, contact_id("acme", "telegram:1111112"));
        // The separator keeps ("ab", "c:1") and ("a", "bc:1") apart.
        assert_ne!(contact_id("ab", "c:1"), contact_id("a", "bc:1"));
        assert_eq!(a.len(), 36);
        // Pinned: changing this re-keys every contact in production.
        assert_eq!(
            contact_id("acme", "telegram:1111111"),
            Uuid::new_v5(&CONTACT_NAMESPACE, b"acme\0telegram:1111111").to_string()
        );
    }

    #[test]
    fn topic_urns_round_trip() {
        let urn = telegram_topic_urn(-1_001_234_567_890, 42);
        assert_eq!(urn, "telegram-topic:-1001234567890:42");
        assert_eq!(parse_telegram_topic(&urn), Some((-1_001_234_567_890, 42)));
        assert_eq!(parse_telegram_topic("telegram:42"), None);
        assert_eq!(parse_telegram_topic("telegram-topic:1"), None);
        assert_eq!(parse_telegram_topic("telegram-topic:a:1"), None);
    }
}
