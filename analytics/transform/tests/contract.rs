//! Firehose's transformation contract, over the fixtures and over random batches.

use std::io::Write as _;

use access_log_transform::batch::{DROPPED, OK, PROCESSING_FAILED};
use access_log_transform::{transform_batch, ServiceNames, RESPONSE_LIMIT_BYTES};
use aws_lambda_events::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use proptest::prelude::*;
use serde_json::{json, Value};

const ENTRY: &str = include_str!("fixtures/lattice-access-log-entry.json");
const ENVELOPE: &str = include_str!("fixtures/cloudwatch-logs-envelope.json");
const CONTROL: &str = include_str!("fixtures/cloudwatch-logs-control-message.json");
const EVENT: &str = include_str!("fixtures/firehose-transform-event.json");
const SERVICE_ARN: &str =
    "arn:aws:vpc-lattice:ap-southeast-2:123467890123:service/svc-0cfe1f49ff3266204";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn record(id: &str, data: Vec<u8>) -> KinesisFirehoseEventRecord {
    let mut record = KinesisFirehoseEventRecord::default();
    record.record_id = Some(id.to_owned());
    record.data.0 = data;
    record
}

fn event(records: Vec<KinesisFirehoseEventRecord>) -> KinesisFirehoseEvent {
    let mut event = KinesisFirehoseEvent::default();
    event.records = records;
    event
}

fn names() -> ServiceNames {
    format!("{SERVICE_ARN}=test2").parse().unwrap()
}

/// The fixture entry's document, field by field.
fn expected_document() -> Value {
    json!({
        "@timestamp": "2024-08-04T11:28:40Z",
        "service": "test2",
        "serviceArn": SERVICE_ARN,
        "serviceNetworkArn": "arn:aws:vpc-lattice:ap-southeast-2:123467890123:servicenetwork/sn-0e05d75deabe9f290",
        "resolvedUser": "arn:aws:sts::123467890123:assumed-role/BridgeModeStack-EnvoyFrontendTaskRole/35ecc",
        "targetGroupArn": "arn:aws:vpc-lattice:ap-southeast-2:123467890123:targetgroup/tg-0277f384abfefe8aa",
        "sourceVpcArn": "arn:aws:ec2:ap-southeast-2:123467890123:vpc/vpc-04157e16d89eba97b",
        "destinationVpcId": "vpc-05e207e48696b69b6",
        "source": {"ip": "10.0.183.56", "port": 57086},
        "target": {"ip": "172.31.9.231", "port": 80},
        "sourceVpcId": "vpc-04157e16d89eba97b",
        "requestMethod": "GET",
        "requestPath": "/",
        "protocol": "HTTP/1.1",
        "responseCode": 404,
        "responseClass": "4xx",
        "isError": true,
        "authDenied": false,
        "bytesReceived": 135,
        "bytesSent": 1247,
        "duration": 23,
        "userAgent": "curl/8.5.0",
        "hostHeader": "test2-0cfe1f49ff3266204.7d67968.vpc-lattice-svcs.ap-southeast-2.on.aws",
        "serverNameIndication": "test2-0cfe1f49ff3266204.7d67968.vpc-lattice-svcs.ap-southeast-2.on.aws",
        "requestToTargetDuration": 21,
        "responseFromTargetDuration": 0,
        "sslCipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "tlsVersion": "TLSv1.2",
        "callerPrincipal": "arn:aws:sts::123467890123:assumed-role/BridgeModeStack-EnvoyFrontendTaskRole/35ecc",
        "callerRole": "BridgeModeStack-EnvoyFrontendTaskRole",
    })
}

fn only_document(data: Vec<u8>) -> (String, Value) {
    let outcome = transform_batch(
        &event(vec![record("1", data)]),
        &names(),
        RESPONSE_LIMIT_BYTES,
    );
    let answer = &outcome.response.records[0];
    let document = serde_json::from_slice(&answer.data.0).unwrap_or(Value::Null);
    (answer.result.clone().unwrap_or_default(), document)
}

#[test]
fn a_raw_lattice_entry_becomes_its_normalised_document() {
    let (result, document) = only_document(ENTRY.trim().as_bytes().to_vec());
    assert_eq!(result, OK);
    assert_eq!(document, expected_document());
}

#[test]
fn an_envelope_with_one_event_becomes_the_same_document() {
    let (result, document) = only_document(gzip(ENVELOPE.as_bytes()));
    assert_eq!(result, OK);
    assert_eq!(document, expected_document());
}

#[test]
fn a_control_message_is_dropped() {
    let outcome = transform_batch(
        &event(vec![record("c", gzip(CONTROL.as_bytes()))]),
        &names(),
        RESPONSE_LIMIT_BYTES,
    );
    let answer = &outcome.response.records[0];
    assert_eq!(answer.result.as_deref(), Some(DROPPED));
    assert!(answer.data.0.is_empty());
    assert_eq!((outcome.counts.dropped, outcome.failures.len()), (1, 0));
}

#[test]
fn an_envelope_with_several_events_fails_keeping_its_bytes_and_naming_the_cause() {
    let mut envelope: Value = serde_json::from_str(ENVELOPE).unwrap();
    let one = envelope["logEvents"][0].clone();
    envelope["logEvents"] = json!([one.clone(), one]);
    let data = gzip(envelope.to_string().as_bytes());
    let outcome = transform_batch(
        &event(vec![record("m", data.clone())]),
        &names(),
        RESPONSE_LIMIT_BYTES,
    );
    let answer = &outcome.response.records[0];
    assert_eq!(answer.result.as_deref(), Some(PROCESSING_FAILED));
    assert_eq!(answer.data.0, data);
    assert!(
        outcome.failures[0]
            .reason
            .starts_with("CloudWatch Logs envelope with 2 log events"),
        "{}",
        outcome.failures[0].reason
    );
}

#[test]
fn firehose_s_event_fixture_parses_and_the_response_is_firehose_s_shape() {
    let event: KinesisFirehoseEvent = serde_json::from_str(EVENT).unwrap();
    let outcome = transform_batch(&event, &names(), RESPONSE_LIMIT_BYTES);
    let response = serde_json::to_value(&outcome.response).unwrap();
    let answer = &response["records"][0];
    assert_eq!(
        answer["recordId"],
        "49546986683135544286507457936321625675700192471156785154"
    );
    assert_eq!(answer["result"], "Ok");
    let keys: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["data", "metadata", "recordId", "result"]);
    let data = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        answer["data"].as_str().unwrap(),
    )
    .unwrap();
    assert!(!data.contains(&b'\n'), "one single-line JSON document");
    assert_eq!(
        serde_json::from_slice::<Value>(&data).unwrap(),
        expected_document()
    );
}

/// A record's data: the things Firehose can deliver, and garbage.
fn any_data() -> impl Strategy<Value = Vec<u8>> {
    let entry = || ENTRY.trim().as_bytes().to_vec();
    prop_oneof![
        Just(entry()),
        Just(gzip(ENVELOPE.as_bytes())),
        Just(gzip(CONTROL.as_bytes())),
        (1usize..5).prop_map(|n| {
            let mut envelope: Value = serde_json::from_str(ENVELOPE).unwrap();
            let one = envelope["logEvents"][0].clone();
            envelope["logEvents"] = Value::Array(vec![one; n]);
            gzip(envelope.to_string().as_bytes())
        }),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|mut bytes| {
            bytes.splice(0..0, [0x1f, 0x8b]);
            bytes
        }),
        proptest::collection::vec(any::<u8>(), 0..100).prop_map(|bytes| gzip(&bytes)),
        (0..ENTRY.len()).prop_map(|cut| ENTRY.as_bytes()[..cut].to_vec()),
        "[ -~]{0,40}".prop_map(
            |field| format!(r#"{{"startTime":"{field}","responseCode":200}}"#).into_bytes()
        ),
    ]
}

proptest! {
    #[test]
    fn every_record_id_is_answered_once_in_order_and_failures_keep_their_data(
        datas in proptest::collection::vec(any_data(), 0..40),
    ) {
        let records: Vec<_> = datas
            .iter()
            .enumerate()
            .map(|(i, data)| record(&format!("4954698668313554428650745793632162567570019247115678{i:04}"), data.clone()))
            .collect();
        let input = event(records);
        let outcome = transform_batch(&input, &names(), RESPONSE_LIMIT_BYTES);
        let ids_in: Vec<_> = input.records.iter().map(|r| r.record_id.clone()).collect();
        let ids_out: Vec<_> = outcome.response.records.iter().map(|r| r.record_id.clone()).collect();
        prop_assert_eq!(ids_in, ids_out);
        let mut counted = [0u64; 3];
        for (answer, data) in outcome.response.records.iter().zip(&datas) {
            match answer.result.as_deref() {
                Some(OK) => {
                    counted[0] += 1;
                    let document: Value = serde_json::from_slice(&answer.data.0).unwrap();
                    prop_assert!(document["@timestamp"].is_string());
                }
                Some(DROPPED) => counted[1] += 1,
                Some(PROCESSING_FAILED) => {
                    counted[2] += 1;
                    prop_assert_eq!(&answer.data.0, data);
                }
                other => prop_assert!(false, "result {:?}", other),
            }
        }
        let counts = outcome.counts;
        prop_assert_eq!([counts.ok, counts.dropped, counts.failed], counted);
        prop_assert_eq!(counts.records, datas.len() as u64);
        prop_assert_eq!(outcome.failures.len() as u64, counts.failed);
    }
}
