//! X-Ray filter expressions as the local X-Ray API receives them (GetTraceSummaries): parsing
//! never panics, and whatever parses prints back to an expression that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use local_stack::xray::filter::FilterExpression;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expression) = text.parse::<FilterExpression>() {
        let written = expression.to_string();
        let again: FilterExpression = written
            .parse()
            .unwrap_or_else(|e| panic!("{written:?} (from {text:?}) does not parse: {e:?}"));
        assert_eq!(again, expression, "{text:?} -> {written:?}");
    }
});
