//! The access-log record against a real Lattice entry: same 35 keys, same order, same types.

use local_stack::lattice::access_log::AccessLogEntry;
use serde_json::Value;

const REAL_ENTRY: &str = include_str!("fixtures/lattice-access-log-entry.json");

#[test]
fn real_entry_round_trips_with_identical_keys_order_and_types() {
    let entry: AccessLogEntry =
        serde_json::from_str(REAL_ENTRY).expect("the real entry fits the record");
    assert_eq!(entry.response_code, 404);
    assert_eq!(entry.caller_principal_org_id, "-");
    // Byte-for-byte: same keys, same order, numbers as numbers, "-" for absent strings.
    assert_eq!(entry.to_json_line(), REAL_ENTRY.trim());
    let keys: Vec<String> = match serde_json::from_str::<Value>(&entry.to_json_line()).unwrap() {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => unreachable!(),
    };
    assert_eq!(keys.len(), 35);
}

#[test]
fn a_missing_or_extra_field_is_refused() {
    let mut value: Value = serde_json::from_str(REAL_ENTRY).unwrap();
    value.as_object_mut().unwrap().remove("tlsVersion");
    assert!(serde_json::from_value::<AccessLogEntry>(value.clone()).is_err());
    value["tlsVersion"] = "TLSv1.3".into();
    value["requestCount"] = 1.into();
    assert!(serde_json::from_value::<AccessLogEntry>(value).is_err());
}
