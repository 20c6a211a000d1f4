//! Identity without shared state: a channel identity (URN) maps to a contact id by a
//! pure function, so any ingest replica computes the same id and needs no store.
//!
//! `contact_id = UUIDv5(NAMESPACE, tenant + "\0" + urn)`, hyphenated lower-case
//! ([`sluice_schemas::identity`], which the engine uses too, re-exported here). The
//! tenant is part of the name, so two tenants never share a contact id. The namespace
//! is fixed forever: changing it would re-key every contact.
//!
//! URNs (`scheme:path`):
//!
//! | channel | URN |
//! |---|---|
//! | Telegram | `telegram:<user id>` |
//! | WhatsApp | `whatsapp:<E.164 digits, no +>` |
//! | Messenger | `messenger:<page-scoped id>` |
//! | Instagram | `instagram:<Instagram-scoped id>` |
//! | SMS | `tel:+<E.164 digits>` |
//! | Stripe | `stripe:<customer id>`, else `mailto:<email>` / `tel:+<digits>` |
//! | Telegram forum topic | `telegram-topic:<chat id>:<thread id>` (see the README) |

pub use sluice_schemas::identity::{CONTACT_NAMESPACE, contact_id, telegram_topic_urn};

/// The E.164 digits of a phone number (`+1 (415) 555-0100`, `whatsapp:+1415…`), or
/// `None` when it has fewer than 6 or more than 15 digits or other characters.
pub fn e164_digits(phone: &str) -> Option<String> {
    let phone = phone.trim();
    let phone = phone.strip_prefix("whatsapp:").unwrap_or(phone).trim();
    let mut digits = String::with_capacity(phone.len());
    for (i, c) in phone.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return None,
        }
    }
    (6..=15).contains(&digits.len()).then_some(digits)
}

/// `tel:+<digits>` for a phone number.
pub fn tel_urn(phone: &str) -> Option<String> {
    e164_digits(phone).map(|digits| format!("tel:+{digits}"))
}

/// `whatsapp:<digits>` for a WhatsApp id or phone number.
pub fn whatsapp_urn(phone: &str) -> Option<String> {
    e164_digits(phone).map(|digits| format!("whatsapp:{digits}"))
}

/// Whether `urn` looks like `scheme:path` with a lower-case scheme and a non-empty path.
pub fn is_urn(urn: &str) -> bool {
    match urn.split_once(':') {
        Some((scheme, path)) => {
            !scheme.is_empty()
                && !path.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !urn.chars().any(char::is_control)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_are_the_schemas_ones() {
        // Pinned: changing this re-keys every contact in production.
        assert_eq!(
            contact_id("acme", "telegram:1111111"),
            uuid::Uuid::new_v5(&CONTACT_NAMESPACE, b"acme\0telegram:1111111").to_string()
        );
    }

    #[test]
    fn phone_numbers_normalize_to_e164_digits() {
        assert_eq!(
            tel_urn("+1 (415) 555-0100").as_deref(),
            Some("tel:+14155550100")
        );
        assert_eq!(
            whatsapp_urn("16505551234").as_deref(),
            Some("whatsapp:16505551234")
        );
        assert_eq!(
            whatsapp_urn("whatsapp:+16505551234").as_deref(),
            Some("whatsapp:16505551234")
        );
        assert_eq!(tel_urn("12345"), None);
        assert_eq!(tel_urn("+1234567890123456"), None);
        assert_eq!(tel_urn("1-800-FLOWERS"), None);
        assert_eq!(tel_urn("1+2345678"), None);
    }

    #[test]
    fn urns_have_a_scheme_and_a_path() {
        assert!(is_urn("telegram:1"));
        assert!(is_urn("telegram-topic:-100:5"));
        assert!(!is_urn("telegram"));
        assert!(!is_urn(":1"));
        assert!(!is_urn("Tel:1"));
        assert!(!is_urn("tel:"));
    }
}
