//! Decoding never panics: random bytes, random datums behind a valid header (current and
//! older writer schemas), and mutated or cut valid messages all come back as `Err` or as a
//! value, never as a panic, and a cut message is always reported as truncated.

mod common;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use sluice_schemas::*;

fn header(fingerprint: u64) -> Vec<u8> {
    let mut h = vec![0xC3, 0x01];
    h.extend_from_slice(&fingerprint.to_le_bytes());
    h
}

fn v1_fingerprint(name: &str) -> u64 {
    schema_fingerprint(&format!("{name}.v1")).unwrap()
}

/// A mutation of a valid message.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let n = bytes.len();
        match *m {
            Mutation::Flip { at, mask } if n > 0 => bytes[at % n] ^= mask,
            Mutation::Set { at, byte } if n > 0 => bytes[at % n] = byte,
            Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
            Mutation::Remove { at } if n > 0 => {
                bytes.remove(at % n);
            }
            Mutation::Truncate { len } => bytes.truncate(len % (n + 1)),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        prop_assert!(Event::decode(&bytes).is_err());
        prop_assert!(Action::decode(&bytes).is_err());
    }

    #[test]
    fn random_datum_behind_current_header_never_panics(datum in vec(any::<u8>(), 0..300)) {
        let mut bytes = header(Event::schema_fingerprint());
        bytes.extend_from_slice(&datum);
        let _ = Event::decode(&bytes);
        let mut bytes = header(Action::schema_fingerprint());
        bytes.extend_from_slice(&datum);
        let _ = Action::decode(&bytes);
    }

    #[test]
    fn random_datum_behind_older_header_never_panics(datum in vec(any::<u8>(), 0..300)) {
        let mut bytes = header(v1_fingerprint("event"));
        bytes.extend_from_slice(&datum);
        let _ = Event::decode(&bytes);
        let mut bytes = header(v1_fingerprint("action"));
        bytes.extend_from_slice(&datum);
        let _ = Action::decode(&bytes);
    }

    #[test]
    fn mutated_events_never_panic(event in event(), mutations in vec(mutation(), 1..4)) {
        let mut bytes = event.encode().unwrap();
        mutate(&mut bytes, &mutations);
        if let Ok(decoded) = Event::decode(&bytes) {
            // A mutation can land on another valid datum (not byte-identical: varints can be
            // padded, map keys reordered); it must then be a stable value.
            let again = decoded.encode().unwrap();
            prop_assert_eq!(Event::decode(&again).unwrap().encode().unwrap(), again);
        }
    }

    #[test]
    fn mutated_actions_never_panic(action in action(), mutations in vec(mutation(), 1..4)) {
        let mut bytes = action.encode().unwrap();
        mutate(&mut bytes, &mutations);
        if let Ok(decoded) = Action::decode(&bytes) {
            let again = decoded.encode().unwrap();
            prop_assert_eq!(Action::decode(&again).unwrap().encode().unwrap(), again);
        }
    }

    #[test]
    fn every_cut_event_is_truncated(event in event(), cut in any::<prop::sample::Index>()) {
        let bytes = event.encode().unwrap();
        let len = cut.index(bytes.len());
        let err = Event::decode(&bytes[..len]).unwrap_err();
        prop_assert!(matches!(err, Error::Truncated { .. }), "{}", err);
    }

    #[test]
    fn every_cut_action_is_truncated(action in action(), cut in any::<prop::sample::Index>()) {
        let bytes = action.encode().unwrap();
        let len = cut.index(bytes.len());
        let err = Action::decode(&bytes[..len]).unwrap_err();
        prop_assert!(matches!(err, Error::Truncated { .. }), "{}", err);
    }

    #[test]
    fn extra_bytes_are_trailing(event in event(), extra in vec(any::<u8>(), 1..16)) {
        let mut bytes = event.encode().unwrap();
        bytes.extend_from_slice(&extra);
        let err = Event::decode(&bytes).unwrap_err();
        prop_assert!(matches!(err, Error::TrailingBytes { trailing, .. } if trailing == extra.len()), "{}", err);
    }
}
