//! A run's latency histograms in the report, losslessly: HdrHistogram's V2 compressed encoding
//! (the V2 format, DEFLATE-compressed, in base64: the `HISTFAAA…` strings HdrHistogram's own
//! tools and interval logs read and write), by the hdrhistogram crate's serializer. Reports
//! carry them so runs made apart (runner instances, machines) merge exactly: the percentiles of
//! the union of their requests, never an average of percentiles.
//!
//! [`decode`] trusts the lengths an encoding declares (the crate's deserializer sizes its buffer
//! from them): it is for reports loadgen made, not for untrusted input.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::stats::RunStats;

/// Why an encoded histogram could not be read or added.
#[derive(Debug, thiserror::Error)]
pub enum HdrError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not an HdrHistogram V2 (compressed) encoding.
    #[error("not an HdrHistogram V2 encoding: {0:?}")]
    Format(hdrhistogram::serialization::DeserializeError),
    /// Bounds that cannot hold the other's values.
    #[error("the histograms cannot be added: {0:?}")]
    Add(hdrhistogram::AdditionError),
}

/// `histogram` in HdrHistogram's V2 compressed encoding, base64.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec fails only on a histogram the encoding cannot describe, which the
    // crate's own histograms are not.
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .expect("an in-memory V2 encoding of a valid histogram");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The histogram `text` encodes ([`encode`]'s, or any HdrHistogram V2 encoding).
pub fn decode(text: &str) -> Result<Histogram<u64>, HdrError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HdrError::Format)
}

/// The report's two histograms, encoded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EncodedHistograms {
    /// Latency from the intended start, µs.
    pub corrected: String,
    /// Latency from the send, µs.
    pub uncorrected: String,
}

impl EncodedHistograms {
    /// The histograms of `stats`.
    pub fn of(stats: &RunStats) -> Self {
        Self {
            corrected: encode(&stats.corrected),
            uncorrected: encode(&stats.uncorrected),
        }
    }
}

/// The corrected and uncorrected histograms of all `parts` together: every request of each, once.
pub fn merge<'a>(
    parts: impl IntoIterator<Item = &'a EncodedHistograms>,
) -> Result<(Histogram<u64>, Histogram<u64>), HdrError> {
    let stats = RunStats::default();
    let (mut corrected, mut uncorrected) = (stats.corrected, stats.uncorrected);
    for part in parts {
        corrected
            .add(decode(&part.corrected)?)
            .map_err(HdrError::Add)?;
        uncorrected
            .add(decode(&part.uncorrected)?)
            .map_err(HdrError::Add)?;
    }
    Ok((corrected, uncorrected))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::stats::{percentiles, Sample};

    fn sample(rng: &mut ChaCha8Rng) -> Sample {
        // Mostly milliseconds, a tail to seconds.
        let us = if rng.random_bool(0.02) {
            rng.random_range(200_000..9_000_000)
        } else {
            rng.random_range(300..40_000)
        };
        Sample {
            corrected: Duration::from_micros(us + rng.random_range(0..5_000)),
            uncorrected: Duration::from_micros(us),
            status: Some(201),
            error: None,
            second: 0,
        }
    }

    #[test]
    fn a_histogram_survives_its_encoding_exactly() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut stats = RunStats::default();
        for _ in 0..20_000 {
            stats.record(&sample(&mut rng));
        }
        let encoded = EncodedHistograms::of(&stats);
        assert!(
            encoded.corrected.starts_with("HISTFAAA"),
            "{}",
            &encoded.corrected[..16]
        );
        let back = decode(&encoded.corrected).unwrap();
        assert_eq!(back, stats.corrected);
        assert_eq!(back.len(), 20_000);
        assert_eq!(decode(&encoded.uncorrected).unwrap(), stats.uncorrected);
    }

    #[test]
    fn merged_parts_are_the_histogram_of_every_request() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut whole = RunStats::default();
        let mut parts = vec![RunStats::default(); 4];
        for _ in 0..40_000 {
            let s = sample(&mut rng);
            whole.record(&s);
            let part = rng.random_range(0..parts.len());
            parts[part].record(&s);
        }
        let encoded: Vec<EncodedHistograms> = parts.iter().map(EncodedHistograms::of).collect();
        let (corrected, uncorrected) = merge(&encoded).unwrap();
        assert_eq!(corrected, whole.corrected);
        assert_eq!(uncorrected, whole.uncorrected);
        assert_eq!(percentiles(&corrected), percentiles(&whole.corrected));
    }

    #[test]
    fn text_that_is_not_an_encoding_is_refused() {
        assert!(matches!(decode("not base64!"), Err(HdrError::Base64(_))));
        assert!(matches!(decode("AAAA"), Err(HdrError::Format(_))));
    }
}
