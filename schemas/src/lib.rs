//! Sluice's wire data: the [`Event`] and [`Action`] records, their Avro schemas
//! (`schemas/event.avsc`, `schemas/action.avsc`) and the codec every service uses to put
//! them on Kafka.
//!
//! - **Types.** [`Event`] and [`Action`] map field for field onto the Avro schemas with
//!   serde, and the same types are the JSON form (`serde_json`), used by `sluice dev` and the
//!   generic ingest endpoint. Avro unions are Rust enums whose variant order is the branch
//!   order ([`Payload`], [`ActionPayload`], [`Scalar`]); `["null", T]` is `Option<T>`;
//!   timestamps are `i64` Unix milliseconds. The `type` fields are the canonical names of
//!   DESIGN.md, as [`EventType`] and [`ActionType`].
//! - **Wire format.** Avro single-object encoding: `C3 01`, the writer schema's CRC-64-AVRO
//!   fingerprint (8 bytes, little-endian), the datum. [`Event::encode`] writes the current
//!   schema; [`Event::decode`] reads the current schema on a fast path straight into structs
//!   and any older registered version (`schemas/history/`) by schema resolution.
//! - **Rules the schema cannot express**: [`Event::validate`], [`Action::validate`].
//!
//! ```
//! use sluice_schemas::{Event, EventType, MessagePayload, Payload};
//!
//! let event = Event {
//!     id: "tg-1001".into(),
//!     tenant: "acme".into(),
//!     contact_id: "c-42".into(),
//!     event_type: EventType::MessageReceived,
//!     occurred_at: 1_767_225_600_000,
//!     session: None,
//!     origin: None,
//!     chain_depth: 0,
//!     payload: Payload::Message(MessagePayload {
//!         text: Some("hello".into()),
//!         kind: "text".into(),
//!         media: None,
//!         reply_payload: None,
//!         edited: false,
//!     }),
//! };
//! event.validate()?;
//! let bytes = event.encode()?;
//! assert_eq!(bytes[..2], [0xC3, 0x01]);
//! assert_eq!(Event::decode(&bytes)?, event);
//! # Ok::<(), sluice_schemas::Error>(())
//! ```

mod action;
mod codec;
mod error;
mod event;
mod fingerprint;
pub mod identity;
mod kinds;
mod payload;
mod registry;
mod scalar;
mod validate;

pub use action::{
    Action, ActionPayload, AiComplete, Button, HttpCall, OutboundMedia, PublishEvent, SendMessage,
    SendShort, SendTemplate, SessionChange, StartFlow, Tag, UpdateField,
};
pub use error::{Error, Fault, Result};
pub use event::{Event, Origin, Payload, Session};
pub use kinds::{ActionType, EventType};
pub use payload::{
    CustomPayload, DeliveryPayload, FlowPayload, Media, MessagePayload, PaymentPayload,
    ProfileChangePayload, ReactionPayload, ResultPayload, TimerPayload,
};
pub use registry::{schema_fingerprint, schema_names, schema_text};
pub use scalar::{Fields, Scalar};
