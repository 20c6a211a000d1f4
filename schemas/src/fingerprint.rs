//! Schema fingerprints as every other Avro implementation computes them: CRC-64-AVRO (Rabin)
//! of the schema's Parsing Canonical Form.
//!
//! apache-avro 0.22's `Schema::canonical_form` leaves a primitive that carried a logical
//! type as `{"type":"long"}` where the Java reference implementation
//! (`SchemaNormalization.parsingFingerprint64`) and the spec's [PRIMITIVES] rule give
//! `"long"`. Our schemas use `timestamp-millis`, so apache-avro's own fingerprint would not
//! match the header a Java or Python producer writes. This module fixes the form and hashes
//! it itself.

use apache_avro::Schema;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of `schema`, as Java computes it.
pub(crate) fn canonical_form(schema: &Schema) -> String {
    let mut form = schema.canonical_form();
    // In canonical form an object whose only key is "type" can only be a primitive whose
    // logical type was stripped; named types start with "name", arrays and maps have more.
    for primitive in PRIMITIVES {
        form = form.replace(
            &format!(r#"{{"type":"{primitive}"}}"#),
            &format!(r#""{primitive}""#),
        );
    }
    form
}

/// The 64-bit fingerprint written in single-object headers (little-endian there).
pub(crate) fn fingerprint(schema: &Schema) -> u64 {
    crc64_avro(canonical_form(schema).as_bytes())
}

const EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut bit = 0;
        while bit < 8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// CRC-64-AVRO, the spec's "Rabin" fingerprint.
pub(crate) fn crc64_avro(bytes: &[u8]) -> u64 {
    bytes.iter().fold(EMPTY, |fp, &b| {
        (fp >> 8) ^ TABLE[((fp ^ u64::from(b)) & 0xff) as usize]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From apache/avro share/test/data/schema-tests.txt, which the Java tests validate.
    #[test]
    fn matches_the_spec_test_vectors() {
        let vectors: &[(&str, &str, i64)] = &[
            (r#""null""#, r#""null""#, 7195948357588979594),
            (
                r#"{"type":"boolean"}"#,
                r#""boolean""#,
                -6970731678124411036,
            ),
            (r#""int""#, r#""int""#, 8247732601305521295),
            (r#"{"type":"long"}"#, r#""long""#, -3434872931120570953),
            (
                r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
                r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
                5916914534497305771,
            ),
            (
                r#"{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}"#,
                r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}"#,
                7843277075252814651,
            ),
            (
                r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
                r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
                -4448647247586288245,
            ),
            (
                r#"{"values":"string", "type":"map"}"#,
                r#"{"type":"map","values":"string"}"#,
                -8732877298790414990,
            ),
            (
                r#"{"name":"PigValue","type":"record","fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
                r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
                -1759257747318642341,
            ),
        ];
        for (input, canonical, fp) in vectors {
            let schema = Schema::parse_str(input).unwrap();
            assert_eq!(canonical_form(&schema), *canonical);
            assert_eq!(fingerprint(&schema), *fp as u64, "{input}");
        }
    }

    #[test]
    fn logical_types_reduce_to_their_primitive_like_java() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"T","fields":[
                {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"maybe","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
                {"name":"day","type":{"type":"int","logicalType":"date"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_form(&schema),
            r#"{"name":"T","type":"record","fields":[{"name":"at","type":"long"},{"name":"maybe","type":["null","long"]},{"name":"day","type":"int"}]}"#
        );
    }
}
