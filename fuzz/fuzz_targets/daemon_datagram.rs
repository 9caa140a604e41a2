//! UDP datagrams as the local X-Ray daemon receives them from anyone on the host: parsing never
//! panics, and an accepted document, sent again as a datagram, is accepted as the same document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use local_stack::xray::document::parse_datagram;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = parse_datagram(data) {
        let resent = format!(
            "{{\"format\":\"json\",\"version\":1}}\n{}",
            serde_json::Value::Object(document.body.clone())
        );
        let again = parse_datagram(resent.as_bytes())
            .unwrap_or_else(|e| panic!("re-sent {resent:?} refused: {e:?}"));
        assert_eq!(again, document);
    }
});
