//! The canonical event and action type names (DESIGN.md, "Canonical names").
//!
//! On the wire the `type` fields are plain Avro strings holding these names; in Rust they are
//! closed enums, so a typo is a compile error and an unknown name is a decode error that says
//! which name it was. Extend the lists, never rename an entry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::error::Error;

/// Declares a closed set of canonical names: the enum, `ALL`, `as_str`, `FromStr`, `Display`
/// and serde as the canonical string.
macro_rules! canonical_names {
    (
        $(#[$meta:meta])*
        $name:ident, unknown = $unknown:ident, expecting = $expecting:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every name, in the order of DESIGN.md's table.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The canonical name, as it appears on the wire, in flows and in metric labels.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(Error::$unknown(s.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct NameVisitor;

                impl de::Visitor<'_> for NameVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }

                deserializer.deserialize_str(NameVisitor)
            }
        }
    };
}

canonical_names! {
    /// What happened to a contact: the `type` of an [`Event`](crate::Event).
    EventType, unknown = UnknownEventType, expecting = "a canonical event type such as \"message.received\"" {
        /// `contact.created`
        ContactCreated = "contact.created",
        /// `contact.field_updated` (profile change payload)
        ContactFieldUpdated = "contact.field_updated",
        /// `contact.blocked`
        ContactBlocked = "contact.blocked",
        /// `message.received` (message payload)
        MessageReceived = "message.received",
        /// `message.sent` (delivery payload)
        MessageSent = "message.sent",
        /// `message.delivered` (delivery payload)
        MessageDelivered = "message.delivered",
        /// `message.read` (delivery payload)
        MessageRead = "message.read",
        /// `message.failed` (delivery payload)
        MessageFailed = "message.failed",
        /// `reaction.received` (reaction payload)
        ReactionReceived = "reaction.received",
        /// `payment.received` (payment payload)
        PaymentReceived = "payment.received",
        /// `session.created`
        SessionCreated = "session.created",
        /// `session.reopened`
        SessionReopened = "session.reopened",
        /// `session.closed`
        SessionClosed = "session.closed",
        /// `session.assigned`
        SessionAssigned = "session.assigned",
        /// `session.unassigned`
        SessionUnassigned = "session.unassigned",
        /// `flow.started` (flow payload)
        FlowStarted = "flow.started",
        /// `flow.completed` (flow payload)
        FlowCompleted = "flow.completed",
        /// `flow.failed` (flow payload)
        FlowFailed = "flow.failed",
        /// `wait.expired` (timer payload)
        WaitExpired = "wait.expired",
        /// `custom` (custom payload, with a name)
        Custom = "custom",
        /// `function.result`: the reply to an `http.call` action (result payload)
        FunctionResult = "function.result",
        /// `ai.result`: the reply to an `ai.complete` action (result payload)
        AiResult = "ai.result",
    }
}

canonical_names! {
    /// What a flow asks the outside world to do: the `type` of an [`Action`](crate::Action).
    ActionType, unknown = UnknownActionType, expecting = "a canonical action type such as \"message.send\"" {
        /// `message.send`
        MessageSend = "message.send",
        /// `message.send_short`: a canned reply
        MessageSendShort = "message.send_short",
        /// `message.send_template`: a WhatsApp template message
        MessageSendTemplate = "message.send_template",
        /// `ai.complete`: an AI chat completion
        AiComplete = "ai.complete",
        /// `http.call`: a custom function node
        HttpCall = "http.call",
        /// `contact.update_field`
        ContactUpdateField = "contact.update_field",
        /// `contact.tag`: add or remove a tag
        ContactTag = "contact.tag",
        /// `session.assign`
        SessionAssign = "session.assign",
        /// `session.unassign`
        SessionUnassign = "session.unassign",
        /// `session.close`
        SessionClose = "session.close",
        /// `session.survey`
        SessionSurvey = "session.survey",
        /// `flow.start`
        FlowStart = "flow.start",
        /// `event.publish`: a custom event
        EventPublish = "event.publish",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_through_str_display_and_json() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), *t);
            assert_eq!(t.to_string(), t.as_str());
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), *t);
        }
        for t in ActionType::ALL {
            assert_eq!(t.as_str().parse::<ActionType>().unwrap(), *t);
            assert_eq!(t.to_string(), t.as_str());
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(serde_json::from_str::<ActionType>(&json).unwrap(), *t);
        }
    }

    #[test]
    fn tables_match_design_md() {
        assert_eq!(EventType::ALL.len(), 22);
        assert_eq!(ActionType::ALL.len(), 13);
        let mut names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 22);
    }

    #[test]
    fn unknown_names_are_named_in_the_error() {
        let err = "message.recieved".parse::<EventType>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown event type "message.recieved""#);
        let err = "message.sent".parse::<ActionType>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown action type "message.sent""#);
        let err = serde_json::from_str::<EventType>(r#""Message.Received""#).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"unknown event type "Message.Received""#)
        );
    }
}
