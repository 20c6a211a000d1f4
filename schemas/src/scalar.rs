//! [`Scalar`]: the values of custom event fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A JSON-like map of custom fields, ordered by key so that encoding is deterministic.
pub type Fields = BTreeMap<String, Scalar>;

/// One value of a custom field: the Avro union `["null", "boolean", "long", "double",
/// "string"]`.
///
/// In JSON it is the bare value (`null`, `true`, `42`, `4.5`, `"text"`); a JSON integer is a
/// [`Scalar::Long`], a JSON number with a fraction or exponent a [`Scalar::Double`]. Doubles
/// should be finite: JSON has no NaN or infinity (serde_json writes them as `null`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `null`
    Null,
    /// `boolean`
    Bool(bool),
    /// `long`
    Long(i64),
    /// `double`
    Double(f64),
    /// `string`
    String(String),
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Long(v)
    }
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Double(v)
    }
}

impl From<&str> for Scalar {
    fn from(v: &str) -> Self {
        Scalar::String(v.to_owned())
    }
}

impl From<String> for Scalar {
    fn from(v: String) -> Self {
        Scalar::String(v)
    }
}

// Hand-written rather than `#[serde(untagged)]`: the Avro serializer picks the union branch
// from the kind of value (unit, bool, i64, f64, str), its deserializer reads the branch index
// and calls the matching `visit_*`, and serde_json does the same with bare JSON values, so
// one impl serves both without buffering through serde's `Content`.
impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Null => serializer.serialize_unit(),
            Scalar::Bool(v) => serializer.serialize_bool(*v),
            Scalar::Long(v) => serializer.serialize_i64(*v),
            Scalar::Double(v) => serializer.serialize_f64(*v),
            Scalar::String(v) => serializer.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a boolean, a number or a string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Long(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        // JSON integers above i64::MAX: keep the magnitude, as JSON itself would.
        Ok(i64::try_from(v).map_or(Scalar::Double(v as f64), Scalar::Long))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Double(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::String(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_bare_value() {
        let fields: Fields = [
            ("a".to_owned(), Scalar::Null),
            ("b".to_owned(), Scalar::Bool(true)),
            ("c".to_owned(), Scalar::Long(-3)),
            ("d".to_owned(), Scalar::Double(2.5)),
            ("e".to_owned(), Scalar::Double(1.0)),
            ("f".to_owned(), Scalar::String("x".to_owned())),
        ]
        .into();
        let json = serde_json::to_string(&fields).unwrap();
        assert_eq!(
            json,
            r#"{"a":null,"b":true,"c":-3,"d":2.5,"e":1.0,"f":"x"}"#
        );
        assert_eq!(serde_json::from_str::<Fields>(&json).unwrap(), fields);
    }

    #[test]
    fn json_integers_beyond_i64_become_doubles() {
        let v: Scalar = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(v, Scalar::Double(18446744073709551615.0));
        let v: Scalar = serde_json::from_str("9223372036854775807").unwrap();
        assert_eq!(v, Scalar::Long(i64::MAX));
    }

    #[test]
    fn json_arrays_and_objects_are_refused() {
        assert!(serde_json::from_str::<Scalar>("[1]").is_err());
        assert!(serde_json::from_str::<Scalar>(r#"{"a":1}"#).is_err());
    }
}
