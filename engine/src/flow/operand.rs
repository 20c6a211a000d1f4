//! What conditions and windowed patterns read: operand paths such as `contact.fields.city`
//! or `event.payment.amount`, parsed once into an enum so nothing is looked up by string at
//! run time.

use std::fmt;

/// A value a condition can read about the contact, the event, the session, the run or the
/// clock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    /// `contact.id`
    ContactId,
    /// `contact.fields.<name>`: a profile field.
    ContactField(String),
    /// `contact.tags`: the contact's tags (a set).
    ContactTags,
    /// `contact.channels`: the channel types of the contact's identities (`telegram`, …).
    ContactChannels,
    /// `contact.urns`: the contact's identities (`telegram:123`, …).
    ContactUrns,
    /// `contact.username`
    ContactUsername,
    /// `contact.language`
    ContactLanguage,
    /// `contact.timezone`
    ContactTimezone,
    /// `event.type`
    EventType,
    /// `event.name`: a custom event's name.
    EventName,
    /// `event.occurred_at`
    EventOccurredAt,
    /// `event.message.text`
    MessageText,
    /// `event.message.kind`: text, image, button, …
    MessageKind,
    /// `event.message.reply_payload`: the id of the button or list item chosen.
    MessageReplyPayload,
    /// `event.reaction.emoji`
    ReactionEmoji,
    /// `event.payment.amount`: money, with its currency.
    PaymentAmount,
    /// `event.payment.currency`
    PaymentCurrency,
    /// `event.profile.field`
    ProfileField,
    /// `event.profile.old`
    ProfileOld,
    /// `event.profile.new`
    ProfileNew,
    /// `event.flow.id`: the flow a `flow.*` event is about.
    FlowId,
    /// `event.flow.outcome`
    FlowOutcome,
    /// `event.result.status`: success, error or timeout of a function or AI result.
    ResultStatus,
    /// `event.fields.<name>`: a field of a custom event.
    EventField(String),
    /// `session.type`
    SessionType,
    /// `session.status`
    SessionStatus,
    /// `session.channel_type`
    SessionChannelType,
    /// `session.channel_id`
    SessionChannelId,
    /// `session.assignee`
    SessionAssignee,
    /// `session.closing_message`
    SessionClosingMessage,
    /// `vars.<name>`: a run variable.
    Var(String),
    /// `now`: the current instant, seen in the contact's zone.
    Now,
}

/// The static type of an operand, used to refuse mismatched comparisons at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Text, compared case-insensitively.
    Text,
    /// Money: an amount with a currency.
    Money,
    /// An instant.
    Time,
    /// A set of strings (tags, channels, URNs).
    TextSet,
    /// Known only at run time: profile fields, custom event fields, variables.
    Dynamic,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Text => "text",
            ValueType::Money => "money",
            ValueType::Time => "a time",
            ValueType::TextSet => "a set of strings",
            ValueType::Dynamic => "a dynamic value",
        })
    }
}

const FIXED: &[(&str, Operand)] = &[
    ("contact.id", Operand::ContactId),
    ("contact.tags", Operand::ContactTags),
    ("contact.channels", Operand::ContactChannels),
    ("contact.urns", Operand::ContactUrns),
    ("contact.username", Operand::ContactUsername),
    ("contact.language", Operand::ContactLanguage),
    ("contact.timezone", Operand::ContactTimezone),
    ("event.type", Operand::EventType),
    ("event.name", Operand::EventName),
    ("event.occurred_at", Operand::EventOccurredAt),
    ("event.message.text", Operand::MessageText),
    ("event.message.kind", Operand::MessageKind),
    ("event.message.reply_payload", Operand::MessageReplyPayload),
    ("event.reaction.emoji", Operand::ReactionEmoji),
    ("event.payment.amount", Operand::PaymentAmount),
    ("event.payment.currency", Operand::PaymentCurrency),
    ("event.profile.field", Operand::ProfileField),
    ("event.profile.old", Operand::ProfileOld),
    ("event.profile.new", Operand::ProfileNew),
    ("event.flow.id", Operand::FlowId),
    ("event.flow.outcome", Operand::FlowOutcome),
    ("event.result.status", Operand::ResultStatus),
    ("session.type", Operand::SessionType),
    ("session.status", Operand::SessionStatus),
    ("session.channel_type", Operand::SessionChannelType),
    ("session.channel_id", Operand::SessionChannelId),
    ("session.assignee", Operand::SessionAssignee),
    ("session.closing_message", Operand::SessionClosingMessage),
    ("now", Operand::Now),
];

/// True for names usable as a variable or field: ASCII letters, digits and `_`, not
/// starting with a digit (so templates can say `vars.name`).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

impl Operand {
    /// Parses an operand path; the error lists what is possible.
    pub fn parse(path: &str) -> Result<Operand, String> {
        if let Some((_, op)) = FIXED.iter().find(|(name, _)| *name == path) {
            return Ok(op.clone());
        }
        type Make = fn(String) -> Operand;
        let dynamic: [(&str, Make); 3] = [
            ("contact.fields.", Operand::ContactField),
            ("event.fields.", Operand::EventField),
            ("vars.", Operand::Var),
        ];
        for (prefix, make) in dynamic {
            if let Some(name) = path.strip_prefix(prefix) {
                return if is_identifier(name) {
                    Ok(make(name.to_owned()))
                } else {
                    Err(format!(
                        "invalid name {name:?} in {path:?}: use letters, digits and _"
                    ))
                };
            }
        }
        Err(format!(
            "unknown operand {path:?}; use contact.fields.<name>, event.fields.<name>, vars.<name>, or one of: {}",
            FIXED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))
    }

    /// The operand's static type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Operand::ContactTags | Operand::ContactChannels | Operand::ContactUrns => {
                ValueType::TextSet
            }
            Operand::PaymentAmount => ValueType::Money,
            Operand::EventOccurredAt | Operand::Now => ValueType::Time,
            Operand::ContactField(_) | Operand::EventField(_) | Operand::Var(_) => {
                ValueType::Dynamic
            }
            _ => ValueType::Text,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::ContactField(n) => write!(f, "contact.fields.{n}"),
            Operand::EventField(n) => write!(f, "event.fields.{n}"),
            Operand::Var(n) => write!(f, "vars.{n}"),
            fixed => {
                let name = FIXED
                    .iter()
                    .find(|(_, op)| op == fixed)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_operand_round_trips() {
        for (name, op) in FIXED {
            assert_eq!(Operand::parse(name).as_ref(), Ok(op));
            assert_eq!(op.to_string(), *name);
        }
        assert_eq!(
            Operand::parse("vars.ticket_id"),
            Ok(Operand::Var("ticket_id".into()))
        );
        assert_eq!(
            Operand::parse("contact.fields.city").unwrap().to_string(),
            "contact.fields.city"
        );
        assert!(Operand::parse("vars.").is_err());
        assert!(Operand::parse("vars.a.b").is_err());
        assert!(
            Operand::parse("contact.name")
                .unwrap_err()
                .contains("unknown operand")
        );
        assert_eq!(Operand::PaymentAmount.value_type(), ValueType::Money);
        assert_eq!(Operand::ContactTags.value_type(), ValueType::TextSet);
    }
}
