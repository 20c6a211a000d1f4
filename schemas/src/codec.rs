//! Avro single-object framing: `C3 01`, the writer schema's 8-byte little-endian
//! CRC-64-AVRO fingerprint, then the Avro binary datum.
//!
//! Fast path (the fingerprint is the current schema's): apache-avro's schema-aware serde
//! serializer and deserializer go straight between bytes and structs. Slow path (an older
//! registered writer schema): decode to `Value` with the writer schema, resolve it to the
//! current schema (filling defaults), then `from_value`.

use std::io::{self, Read};

use serde::Deserialize;
use serde::Serialize;
use serde::de::{self, DeserializeOwned};

use crate::action::Action;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::registry::{Registry, registries};

/// The two marker bytes of Avro single-object encoding.
pub(crate) const MAGIC: [u8; 2] = [0xC3, 0x01];
/// Marker plus fingerprint.
const HEADER_LEN: usize = 10;
/// apache-avro's messages can embed whole schemas or values; a dead-letter reason need not.
const MAX_REASON_CHARS: usize = 300;

/// A record type with a registered schema.
pub(crate) trait Wire: Serialize + DeserializeOwned {
    /// Its registry.
    fn registry() -> &'static Registry;
}

impl Wire for Event {
    fn registry() -> &'static Registry {
        &registries().event
    }
}

impl Wire for Action {
    fn registry() -> &'static Registry {
        &registries().action
    }
}

/// The current schema's fingerprint.
pub(crate) fn fingerprint<T: Wire>() -> u64 {
    T::registry().fingerprint
}

/// Appends the framed encoding of `value` to `out`; leaves `out` as it was on error.
pub(crate) fn encode<T: Wire>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let registry = T::registry();
    let start = out.len();
    out.extend_from_slice(&registry.header);
    match registry.writer.write_ser(out, value) {
        Ok(_) => Ok(()),
        Err(source) => {
            out.truncate(start);
            Err(Error::Encode {
                what: registry.what,
                source,
            })
        }
    }
}

/// Decodes one framed message that must hold exactly one datum.
pub(crate) fn decode<T: Wire>(bytes: &[u8]) -> Result<T> {
    let registry = T::registry();
    let what = registry.what;
    let len = bytes.len();
    let (fingerprint, datum) = split_header(what, bytes)?;

    if fingerprint == registry.fingerprint {
        let mut rest = datum;
        let value = registry
            .reader
            .read_deser::<T>(&mut rest)
            .map_err(|e| datum_error(what, len, len - rest.len(), e))?;
        return no_trailing(what, len, rest.len()).map(|()| value);
    }

    let Some(older) = registry.older.iter().find(|o| o.fingerprint == fingerprint) else {
        return Err(Error::UnknownFingerprint {
            what,
            fingerprint,
            known: registry.known(),
        });
    };
    // apache-avro's `Value` decoder trusts declared collection sizes (a 27-byte message
    // declaring 5 million map entries costs it milliseconds) and reads end-of-input at a
    // union, string or boolean as null. So first walk the datum with the writer schema
    // through the schema-aware deserializer, which builds nothing and fails on both.
    let mut rest = datum;
    older
        .checker
        .read_deser::<Skip>(&mut rest)
        .map_err(|e| datum_error(what, len, len - rest.len(), e))?;
    no_trailing(what, len, rest.len())?;
    let mut guard = EofGuard {
        rest: datum,
        hit_eof: false,
    };
    let read = older.resolver.read_value(&mut guard);
    if guard.hit_eof {
        // Unreachable after the walk above; kept so a cut datum can never become a value.
        return Err(Error::Truncated {
            what,
            len,
            detail: format!("the datum ({}) needs more bytes", older.name),
        });
    }
    let value = read.map_err(|e| datum_error(what, len, len, e))?;
    apache_avro::from_value::<T>(&value).map_err(|e| datum_error(what, len, len, e))
}

/// Checks the marker and returns the fingerprint and the datum.
fn split_header<'a>(what: &'static str, bytes: &'a [u8]) -> Result<(u64, &'a [u8])> {
    let seen = &bytes[..bytes.len().min(MAGIC.len())];
    if seen != &MAGIC[..seen.len()] {
        return Err(Error::BadMagic {
            what,
            found: seen.to_vec(),
        });
    }
    let Some((header, datum)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(Error::Truncated {
            what,
            len: bytes.len(),
            detail: format!("the single-object header needs {HEADER_LEN} bytes"),
        });
    };
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&header[2..]);
    Ok((u64::from_le_bytes(fingerprint), datum))
}

fn no_trailing(what: &'static str, len: usize, trailing: usize) -> Result<()> {
    if trailing == 0 {
        Ok(())
    } else {
        Err(Error::TrailingBytes {
            what,
            trailing,
            len,
        })
    }
}

/// Maps an apache-avro decoding error: running out of bytes is [`Error::Truncated`],
/// anything else [`Error::Decode`] with a short reason.
fn datum_error(what: &'static str, len: usize, offset: usize, source: apache_avro::Error) -> Error {
    let reason = reason(&source);
    if is_eof(&source) {
        Error::Truncated {
            what,
            len,
            detail: reason,
        }
    } else {
        Error::Decode {
            what,
            offset,
            len,
            reason,
            source,
        }
    }
}

/// Whether the error comes from reading past the end of the input.
fn is_eof(error: &apache_avro::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// apache-avro's message without the schema it often appends, cut to a readable length.
fn reason(error: &apache_avro::Error) -> String {
    use apache_avro::error::Details;
    let text = match error.details() {
        Details::DeserializeSchemaAware {
            value_type, value, ..
        } => format!("{value} (reading {value_type})"),
        Details::DeserializeValue(message) => message.clone(),
        details => details.to_string(),
    };
    if text.chars().count() > MAX_REASON_CHARS {
        let cut: String = text.chars().take(MAX_REASON_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// A reader over the datum that remembers whether anyone tried to read past its end.
struct EofGuard<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rest.is_empty() && !buf.is_empty() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() > self.rest.len() {
            self.hit_eof = true;
        }
        self.rest.read_exact(buf)
    }
}

/// Deserializes any datum and keeps nothing. Unlike serde's `IgnoredAny` it asks for map
/// and record keys with `deserialize_identifier`, the only call apache-avro's record field
/// names accept.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Skip, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct Key;

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer
            .deserialize_identifier(SkipVisitor)
            .map(|Skip| Key)
    }
}

struct SkipVisitor;

impl<'de> de::Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any Avro datum")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Key>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Skip, A::Error> {
        let (Key, variant) = data.variant::<Key>()?;
        de::VariantAccess::unit_variant(variant)?;
        Ok(Skip)
    }
}
