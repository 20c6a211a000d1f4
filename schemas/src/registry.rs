//! The one place that loads the Avro schemas: the current `event.avsc` and `action.avsc`
//! plus every older published version kept in `schemas/history/`, parsed once per process.

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::error::{Error, Result};
use crate::fingerprint::fingerprint;

/// Every schema file by name. The current version of a record is named for the record
/// (`event`); an older one adds its version (`event.v1`). To change a schema, copy the
/// published file to `history/<name>.v<N>.avsc`, add it here, then edit the current file
/// (see schemas/README.md).
const SOURCES: &[(&str, &str)] = &[
    ("event", include_str!("../event.avsc")),
    ("action", include_str!("../action.avsc")),
    ("event.v1", include_str!("../history/event.v1.avsc")),
    ("action.v1", include_str!("../history/action.v1.avsc")),
];

/// The text of an `.avsc` schema by name: `event`, `action` (current versions) or an older
/// version such as `event.v1`, for docs and tools.
pub fn schema_text(name: &str) -> Result<&'static str> {
    SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| Error::UnknownSchema {
            name: name.to_owned(),
            known: schema_names().collect::<Vec<_>>().join(", "),
        })
}

/// The single-object fingerprint (CRC-64-AVRO of the Parsing Canonical Form, as Java's
/// `SchemaNormalization.parsingFingerprint64` computes it) of a registered schema by name:
/// `event`, `action`, `event.v1`, ...
pub fn schema_fingerprint(name: &str) -> Result<u64> {
    let r = registries();
    [&r.event, &r.action]
        .into_iter()
        .flat_map(|reg| {
            std::iter::once((reg.what, reg.fingerprint))
                .chain(reg.older.iter().map(|o| (o.name, o.fingerprint)))
        })
        .find(|(n, _)| *n == name)
        .map(|(_, fp)| fp)
        .ok_or_else(|| Error::UnknownSchema {
            name: name.to_owned(),
            known: schema_names().collect::<Vec<_>>().join(", "),
        })
}

/// The names [`schema_text`] knows, current versions first.
pub fn schema_names() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|(name, _)| *name)
}

/// What the codec needs for one record type.
pub(crate) struct Registry {
    /// `event` or `action`, the prefix of error messages.
    pub(crate) what: &'static str,
    /// Fingerprint of the current schema.
    pub(crate) fingerprint: u64,
    /// `C3 01` and the fingerprint, little-endian.
    pub(crate) header: [u8; 10],
    /// Schema-aware serializer for the current schema.
    pub(crate) writer: GenericDatumWriter<'static>,
    /// Schema-aware deserializer for data written with the current schema. Has no reader
    /// schema: apache-avro 0.22 panics in `read_deser` when one is set.
    pub(crate) reader: GenericDatumReader<'static>,
    /// Older writer schemas, each resolving to the current schema.
    pub(crate) older: Vec<Older>,
}

/// An older writer schema.
pub(crate) struct Older {
    /// e.g. `event.v1`.
    pub(crate) name: &'static str,
    /// Its fingerprint.
    pub(crate) fingerprint: u64,
    /// Walks its data without building anything (schema-aware, no reader schema), to
    /// refuse a bad datum before the `Value` decoder allocates for it.
    pub(crate) checker: GenericDatumReader<'static>,
    /// Reads its data as `Value`s resolved to the current schema. Only `read_value` may be
    /// called on it (see [`Registry::reader`]).
    pub(crate) resolver: GenericDatumReader<'static>,
}

impl Registry {
    /// Loads the current schema named `what` and all its older versions.
    fn load(what: &'static str) -> Result<Registry, String> {
        let current = parse(what)?;
        let current_fp = fingerprint(current);
        let mut header = [0u8; 10];
        header[..2].copy_from_slice(&crate::codec::MAGIC);
        header[2..].copy_from_slice(&current_fp.to_le_bytes());
        let writer = GenericDatumWriter::builder(current)
            .human_readable(false)
            .build()
            .map_err(|e| format!("{what}: {e}"))?;
        let reader = GenericDatumReader::builder(current)
            .human_readable(false)
            .build()
            .map_err(|e| format!("{what}: {e}"))?;
        let mut older: Vec<Older> = Vec::new();
        let prefix = format!("{what}.v");
        for (name, _) in SOURCES.iter().filter(|(n, _)| n.starts_with(&prefix)) {
            let schema = parse(name)?;
            let fp = fingerprint(schema);
            if fp == current_fp || older.iter().any(|o| o.fingerprint == fp) {
                return Err(format!(
                    "{name}: fingerprint {fp:#018x} is registered twice"
                ));
            }
            SchemaCompatibility::can_read(schema, current)
                .map_err(|e| format!("{name}: data cannot be read with {what}.avsc: {e}"))?;
            let checker = GenericDatumReader::builder(schema)
                .human_readable(false)
                .build()
                .map_err(|e| format!("{name}: {e}"))?;
            let resolver = GenericDatumReader::builder(schema)
                .reader_schema(current)
                .human_readable(false)
                .build()
                .map_err(|e| format!("{name}: {e}"))?;
            older.push(Older {
                name,
                fingerprint: fp,
                checker,
                resolver,
            });
        }
        Ok(Registry {
            what,
            fingerprint: current_fp,
            header,
            writer,
            reader,
            older,
        })
    }

    /// The fingerprints this registry reads, for error messages.
    pub(crate) fn known(&self) -> String {
        std::iter::once(format!("{:#018x} ({})", self.fingerprint, self.what))
            .chain(
                self.older
                    .iter()
                    .map(|o| format!("{:#018x} ({})", o.fingerprint, o.name)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parses the named source. Schemas live as long as the process (the readers and writers
/// borrow them), so they are leaked once, here.
fn parse(name: &str) -> Result<&'static Schema, String> {
    let text = schema_text(name).map_err(|e| e.to_string())?;
    let schema = Schema::parse_str(text).map_err(|e| format!("{name}: {e}"))?;
    Ok(Box::leak(Box::new(schema)))
}

/// Both registries.
pub(crate) struct Registries {
    /// For [`Event`](crate::Event).
    pub(crate) event: Registry,
    /// For [`Action`](crate::Action).
    pub(crate) action: Registry,
}

/// Loaded on first use. The sources are compiled in and this crate's tests load them, so a
/// failure here is a build that was never tested, not something input can cause.
static REGISTRIES: LazyLock<Registries> = LazyLock::new(|| {
    let load = || -> Result<Registries, String> {
        Ok(Registries {
            event: Registry::load("event")?,
            action: Registry::load("action")?,
        })
    };
    load().unwrap_or_else(|e| panic!("sluice-schemas: embedded schemas do not load: {e}"))
});

/// The loaded registries.
pub(crate) fn registries() -> &'static Registries {
    &REGISTRIES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::canonical_form;

    /// Pinned: a change to event.avsc or action.avsc changes these. If the change is
    /// intended, it must follow the evolution rule in schemas/README.md (the old file goes to
    /// history/ and is registered in SOURCES); then update the value here.
    /// Cross-checked with an independent implementation of the spec's canonical form.
    const EVENT_FINGERPRINT: u64 = 0x9594_5acb_9ffb_ed92;
    const ACTION_FINGERPRINT: u64 = 0x1620_4e4e_5cad_594a;
    const EVENT_V1_FINGERPRINT: u64 = 0xddde_2058_1692_d188;
    const ACTION_V1_FINGERPRINT: u64 = 0x24bc_ce49_1db7_ad67;

    #[test]
    fn golden_fingerprints_are_stable() {
        let r = registries();
        assert_eq!(
            r.event.fingerprint, EVENT_FINGERPRINT,
            "event.avsc changed: {:#018x}",
            r.event.fingerprint
        );
        assert_eq!(
            r.action.fingerprint, ACTION_FINGERPRINT,
            "action.avsc changed: {:#018x}",
            r.action.fingerprint
        );
        assert_eq!(r.event.older[0].fingerprint, EVENT_V1_FINGERPRINT);
        assert_eq!(r.action.older[0].fingerprint, ACTION_V1_FINGERPRINT);
    }

    #[test]
    fn every_source_parses_and_history_is_registered() {
        for name in schema_names() {
            Schema::parse_str(schema_text(name).unwrap()).unwrap();
        }
        let r = registries();
        assert_eq!(r.event.older.len(), 1);
        assert_eq!(r.action.older.len(), 1);
        assert_eq!(r.event.older[0].name, "event.v1");
    }

    #[test]
    fn header_is_magic_and_little_endian_fingerprint() {
        let r = &registries().event;
        assert_eq!(r.header[..2], [0xC3, 0x01]);
        assert_eq!(r.header[2..], r.fingerprint.to_le_bytes());
    }

    #[test]
    fn canonical_form_drops_docs_defaults_and_logical_types() {
        // Producers in other languages compute the fingerprint from the Parsing Canonical
        // Form of the spec, which keeps only name, type, fields, symbols, items, values and
        // size; if apache-avro kept more, their headers would not match ours.
        let schema = Schema::parse_str(schema_text("event").unwrap()).unwrap();
        let canonical = canonical_form(&schema);
        for dropped in [
            r#""doc""#,
            r#""default""#,
            r#""logicalType""#,
            r#""namespace""#,
            r#"{"type":"long"}"#,
        ] {
            assert!(!canonical.contains(dropped), "{dropped} in {canonical}");
        }
        assert!(canonical.starts_with(r#"{"name":"sluice.v1.Event","type":"record""#));
    }

    #[test]
    fn unknown_schema_names_the_known_ones() {
        let err = schema_text("evnt").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown schema "evnt"; known: event, action, event.v1, action.v1"#
        );
        assert!(schema_text("event.v1").unwrap().contains("\"Event\""));
    }
}
