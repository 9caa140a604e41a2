//! `X-Amzn-Trace-Id` as any caller may send it: parsing never panics, and whatever parses writes
//! back to a header that parses to the same value (so what we forward is what we understood).
#![no_main]

use lattice_xray::TraceHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(header) = text.parse::<TraceHeader>() {
        let written = header.to_string();
        let again: TraceHeader = written
            .parse()
            .unwrap_or_else(|e| panic!("{written:?} (from {text:?}) does not parse: {e}"));
        assert_eq!(again, header, "{text:?} -> {written:?}");
    }
});
