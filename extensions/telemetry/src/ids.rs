//! Deterministic document ids, so that Lambda re-delivering a POST and our own retries overwrite
//! the same documents instead of adding copies, while two execution environments never collide.
//!
//! The id is the hex SHA-256 (first [`ID_HEX_LEN`] digits, 128 bits) over the extension id, the
//! SHA-256 of the whole POST body, the record's `type`, its `time`, its canonical JSON and its
//! ordinal among identical records of the same POST. A redelivered POST is the same body, so its
//! records get the same ids; the same line printed twice in one millisecond, in one POST or in two
//! (a blank line, a repeated panic message), gives two documents. Found by the local stack's
//! end-to-end test, where ids over the record alone merged three of 64 log lines.
//! Each part is length-prefixed, so no two different part lists hash the same bytes.
//!
//! Canonical JSON is written by hand here: `serde_json` writes object keys in insertion order
//! once any crate in the build enables its `preserve_order` feature, so its output is not stable;
//! no workspace crate offers a canonical writer. Keys are sorted by their UTF-8 bytes, strings are
//! escaped as `serde_json` escapes them, numbers are written as `serde_json` writes them.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::records::Record;

/// Hex digits kept of the SHA-256.
pub const ID_HEX_LEN: usize = 32;

/// `value` as canonical JSON (sorted keys, no whitespace), appended to `out`.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(object) => {
            out.push(b'{');
            // Without `preserve_order` the map iterates sorted already: no copy needed.
            if object
                .keys()
                .is_sorted_by(|a, b| a.as_bytes() <= b.as_bytes())
            {
                write_entries(object.iter(), out);
            } else {
                let mut entries: Vec<(&String, &Value)> = object.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                write_entries(entries.into_iter(), out);
            }
            out.push(b'}');
        }
        // Writing into a Vec cannot fail.
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

fn write_entries<'v>(entries: impl Iterator<Item = (&'v String, &'v Value)>, out: &mut Vec<u8>) {
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        canonical_json(item, out);
    }
}

/// Mints the ids of one POST's records (the ordinals count within it).
#[derive(Debug)]
pub struct IdMinter<'a> {
    extension_id: &'a str,
    post: [u8; 32],
    seen: HashMap<[u8; 32], u64>,
    scratch: Vec<u8>,
}

impl<'a> IdMinter<'a> {
    /// A minter for one POST received by the extension `extension_id`.
    pub fn new(extension_id: &'a str, post: &[u8]) -> Self {
        Self {
            extension_id,
            post: Sha256::digest(post).into(),
            seen: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The id of the next record of the POST.
    pub fn mint(&mut self, record: &Record) -> String {
        self.scratch.clear();
        canonical_json(&record.record, &mut self.scratch);
        let mut hasher = Sha256::new();
        for part in [
            self.extension_id.as_bytes(),
            self.post.as_slice(),
            record.kind.as_bytes(),
            record.time.as_bytes(),
            self.scratch.as_slice(),
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&hasher.clone().finalize());
        let ordinal = self.seen.entry(key).or_insert(0);
        hasher.update(ordinal.to_le_bytes());
        *ordinal += 1;
        let mut id = hex::encode(hasher.finalize());
        id.truncate(ID_HEX_LEN);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(kind: &str, time: &str, record: Value) -> Record {
        Record {
            time: time.into(),
            kind: kind.into(),
            record,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let mut out = Vec::new();
        let value: Value =
            serde_json::from_str(r#"{"b":[{"z":1,"a":"\u00e9\n"}],"a":null,"é":1.5,"B":true}"#)
                .unwrap();
        canonical_json(&value, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"B":true,"a":null,"b":[{"a":"é\n","z":1}],"é":1.5}"#
        );
    }

    #[test]
    fn the_same_record_gets_the_same_id_in_every_delivery() {
        let report = record(
            "platform.report",
            "2022-10-21T14:05:05.766Z",
            json!({"requestId": "r", "metrics": {"durationMs": 1.5}}),
        );
        let reordered = record(
            "platform.report",
            "2022-10-21T14:05:05.766Z",
            json!({"metrics": {"durationMs": 1.5}, "requestId": "r"}),
        );
        let first = IdMinter::new("ext-1", b"post").mint(&report);
        assert_eq!(first.len(), ID_HEX_LEN);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(IdMinter::new("ext-1", b"post").mint(&reordered), first);
        assert_ne!(
            IdMinter::new("ext-2", b"post").mint(&report),
            first,
            "another environment"
        );
    }

    #[test]
    fn identical_records_of_one_post_get_distinct_ids_by_ordinal() {
        let line = record("function", "2022-10-21T14:05:05.766Z", json!("hello"));
        let mut post = IdMinter::new("ext-1", b"post");
        let ids: Vec<String> = (0..3).map(|_| post.mint(&line)).collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        let mut again = IdMinter::new("ext-1", b"post");
        let redelivered: Vec<String> = (0..3).map(|_| again.mint(&line)).collect();
        assert_eq!(ids, redelivered);
    }

    #[test]
    fn each_part_changes_the_id() {
        let base = record("function", "t", json!("x"));
        let id = IdMinter::new("e", b"post").mint(&base);
        for other in [
            record("extension", "t", json!("x")),
            record("function", "u", json!("x")),
            record("function", "t", json!("y")),
            // Moving bytes between parts must not give the same id.
            record("functiont", "", json!("x")),
        ] {
            assert_ne!(IdMinter::new("e", b"post").mint(&other), id, "{other:?}");
        }
    }

    #[test]
    fn the_same_line_in_two_posts_is_two_documents_and_a_redelivered_post_is_the_same() {
        let blank = record("function", "2026-12-02T06:00:00.001Z", json!(""));
        let first_post = IdMinter::new("e", b"[first]").mint(&blank);
        let second_post = IdMinter::new("e", b"[second]").mint(&blank);
        assert_ne!(first_post, second_post);
        assert_eq!(IdMinter::new("e", b"[first]").mint(&blank), first_post);
    }
}
