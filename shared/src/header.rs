//! The `X-Amzn-Trace-Id` header: parse and print, nothing else.
//!
//! Grammar (X-Ray developer guide, "Tracing header"):
//! `Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=0|1|?` followed by any number of
//! opaque `Key=Value` extras (`Lineage`, `Self`, …) that a hop must carry through unchanged.
//!
//! Why not only `opentelemetry_aws::trace::XrayPropagator`: its parser turns the header into an
//! OpenTelemetry `SpanContext`, and that loses three things our context policy needs:
//! - a header with `Root` but no `Parent` becomes a context with an invalid span id, which the SDK
//!   treats as "no parent" and so starts a *new* trace instead of keeping the Root;
//! - extras are pushed through W3C `TraceState`, which rejects keys or values outside its
//!   alphabet and then drops the whole header (Root included), and lowercases keys;
//! - `Sampled=?` becomes a private trace flag that the SDK's samplers do not know.
//!
//! So this module keeps the header as data ([`TraceHeader`]) and the policy module decides what
//! to do with it. Ids are validated with the same rules the propagator uses.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;

/// Header name as Lattice, ALB and the X-Ray SDKs send it (HTTP header names are case-insensitive).
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

const ROOT_KEY: &str = "Root";
const PARENT_KEY: &str = "Parent";
const SAMPLED_KEY: &str = "Sampled";
/// Longest header we accept. Real headers are < 200 bytes; Lineage adds a few dozen per hop.
pub const MAX_HEADER_LEN: usize = 2048;

/// An X-Ray trace id, `1-<8 hex>-<24 hex>`, stored as the 128-bit value the OpenTelemetry SDK uses
/// (epoch seconds in the top 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct XrayTraceId(pub u128);

/// X-Ray refuses documents whose trace id is older than this (opentelemetry-aws's translator
/// drops such spans before they are sent, as the service would).
pub const MAX_TRACE_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// ...or further in the future than this.
pub const MAX_TRACE_AHEAD: Duration = Duration::from_secs(5 * 60);

impl XrayTraceId {
    /// Seconds since the Unix epoch encoded in the id.
    pub fn epoch_seconds(self) -> u32 {
        (self.0 >> 96) as u32
    }

    /// Whether X-Ray accepts documents of this trace at `now`: its time is at most
    /// [`MAX_TRACE_AGE`] old and at most [`MAX_TRACE_AHEAD`] ahead.
    pub fn accepted_at(self, now: SystemTime) -> bool {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let epoch = u64::from(self.epoch_seconds());
        epoch + MAX_TRACE_AGE.as_secs() >= now && epoch <= now + MAX_TRACE_AHEAD.as_secs()
    }

    /// The same id as an OpenTelemetry trace id.
    pub fn to_otel(self) -> opentelemetry::trace::TraceId {
        opentelemetry::trace::TraceId::from_bytes(self.0.to_be_bytes())
    }

    /// Reads an OpenTelemetry trace id that was made by `XrayIdGenerator`.
    pub fn from_otel(id: opentelemetry::trace::TraceId) -> Self {
        Self(u128::from_be_bytes(id.to_bytes()))
    }
}

impl FromStr for XrayTraceId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::InvalidTraceHeader(format!("malformed Root {s:?}"));
        let rest = s.strip_prefix("1-").ok_or_else(bad)?;
        let (epoch, random) = rest.split_once('-').ok_or_else(bad)?;
        if epoch.len() != 8 || random.len() != 24 || !is_hex(epoch) || !is_hex(random) {
            return Err(bad());
        }
        let epoch = u128::from_str_radix(epoch, 16).map_err(|_| bad())?;
        let random = u128::from_str_radix(random, 16).map_err(|_| bad())?;
        Ok(Self(epoch << 96 | random))
    }
}

impl fmt::Display for XrayTraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let epoch = self.0 >> 96;
        let random = self.0 & ((1u128 << 96) - 1);
        write!(f, "1-{epoch:08x}-{random:024x}")
    }
}

/// A segment or subsegment id: 16 lowercase hex digits, never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentId(pub u64);

impl SegmentId {
    /// The same id as an OpenTelemetry span id.
    pub fn to_otel(self) -> opentelemetry::trace::SpanId {
        opentelemetry::trace::SpanId::from_bytes(self.0.to_be_bytes())
    }

    /// An OpenTelemetry span id as a segment id.
    pub fn from_otel(id: opentelemetry::trace::SpanId) -> Self {
        Self(u64::from_be_bytes(id.to_bytes()))
    }
}

impl FromStr for SegmentId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !is_hex(s) {
            return Err(Error::InvalidTraceHeader(format!("malformed Parent {s:?}")));
        }
        match u64::from_str_radix(s, 16) {
            Ok(0) | Err(_) => Err(Error::InvalidTraceHeader(format!("malformed Parent {s:?}"))),
            Ok(id) => Ok(Self(id)),
        }
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The caller's sampling decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// `Sampled=1`: record and send segments.
    Sampled,
    /// `Sampled=0`: record nothing, but pass the decision on.
    NotSampled,
    /// `Sampled=?` (or no Sampled key): the receiver decides and answers in its response header.
    Requested,
}

impl Sampling {
    fn as_str(self) -> &'static str {
        match self {
            Sampling::Sampled => "1",
            Sampling::NotSampled => "0",
            Sampling::Requested => "?",
        }
    }
}

/// A parsed `X-Amzn-Trace-Id` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    /// The trace this request belongs to.
    pub root: XrayTraceId,
    /// The caller's (sub)segment id, when the caller recorded one.
    pub parent: Option<SegmentId>,
    /// The caller's sampling decision.
    pub sampling: Sampling,
    /// `Key=Value` fields we do not interpret (Lineage, Self, …), in their original order and case.
    pub extras: Vec<(String, String)>,
}

impl TraceHeader {
    /// A header for a new hop: same trace, same extras, a new parent and a settled decision.
    pub fn for_child(&self, parent: SegmentId, sampled: bool) -> Self {
        Self {
            root: self.root,
            parent: Some(parent),
            sampling: if sampled {
                Sampling::Sampled
            } else {
                Sampling::NotSampled
            },
            extras: self.extras.clone(),
        }
    }

    /// Looks up an extra field by key (case-insensitive, as the X-Ray SDKs do).
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extras
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

impl FromStr for TraceHeader {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_HEADER_LEN {
            return Err(Error::InvalidTraceHeader(format!(
                "longer than {MAX_HEADER_LEN} bytes"
            )));
        }
        let mut root = None;
        let mut parent = None;
        let mut sampling = Sampling::Requested;
        let mut extras = Vec::new();
        for field in s.split(';') {
            let field = field.trim();
            if field.is_empty() {
                continue;
            }
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| Error::InvalidTraceHeader(format!("field {field:?} has no '='")))?;
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case(ROOT_KEY) {
                root = Some(value.parse::<XrayTraceId>()?);
            } else if key.eq_ignore_ascii_case(PARENT_KEY) {
                parent = Some(value.parse::<SegmentId>()?);
            } else if key.eq_ignore_ascii_case(SAMPLED_KEY) {
                sampling = match value {
                    "1" => Sampling::Sampled,
                    "0" => Sampling::NotSampled,
                    "?" => Sampling::Requested,
                    other => {
                        return Err(Error::InvalidTraceHeader(format!(
                            "Sampled must be 0, 1 or ?, got {other:?}"
                        )))
                    }
                };
            } else if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::InvalidTraceHeader(format!("bad key {key:?}")));
            } else {
                if !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::InvalidTraceHeader(format!("bad value for {key:?}")));
                }
                extras.push((key.to_owned(), value.to_owned()));
            }
        }
        let root = root.ok_or_else(|| Error::InvalidTraceHeader("no Root".to_owned()))?;
        let header = Self {
            root,
            parent,
            sampling,
            extras,
        };
        // What we forward (Root, a Parent, a settled Sampled, every extra) must fit the same
        // limit, or the next hop would refuse the header this one accepted.
        if header.forwarded_len() > MAX_HEADER_LEN {
            return Err(Error::InvalidTraceHeader(format!(
                "longer than {MAX_HEADER_LEN} bytes once forwarded"
            )));
        }
        Ok(header)
    }
}

impl TraceHeader {
    /// The length of [`Self::for_child`]'s header written out: `Root=<35>;Parent=<16>;Sampled=<1>`
    /// plus `;key=value` per extra.
    fn forwarded_len(&self) -> usize {
        let fixed =
            ROOT_KEY.len() + 1 + 35 + 1 + PARENT_KEY.len() + 1 + 16 + 1 + SAMPLED_KEY.len() + 2;
        fixed
            + self
                .extras
                .iter()
                .map(|(key, value)| 1 + key.len() + 1 + value.len())
                .sum::<usize>()
    }
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROOT_KEY}={}", self.root)?;
        if let Some(parent) = self.parent {
            write!(f, ";{PARENT_KEY}={parent}")?;
        }
        write!(f, ";{SAMPLED_KEY}={}", self.sampling.as_str())?;
        for (key, value) in &self.extras {
            write!(f, ";{key}={value}")?;
        }
        Ok(())
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

    #[test]
    fn parses_table() {
        // (input, expected Display of the parse, or None when it must be rejected)
        let table: &[(&str, Option<&str>)] = &[
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            ),
            // Root without Parent: kept (the case the SDK propagator turns into a new trace).
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
                Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"),
            ),
            // No Sampled means "decide for me".
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793",
                Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?"),
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",
                Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?"),
            ),
            // Lineage and unknown keys survive, in order and case, with characters tracestate rejects.
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5;Self=1-67891233-abcdef012345678912345678;X_Custom=A=B",
                Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5;Self=1-67891233-abcdef012345678912345678;X_Custom=A=B"),
            ),
            // Whitespace around fields and keys in other case and order.
            (
                "  sampled=1 ; parent = 53995c3f42cd8ad8;ROOT=1-5759e988-bd862e3fe1be46a994272793 ;",
                Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            ),
            ("", None),
            ("garbage", None),
            ("Root=", None),
            ("Parent=53995c3f42cd8ad8;Sampled=1", None),
            ("Root=2-5759e988-bd862e3fe1be46a994272793", None),
            ("Root=1-5759e98-bd862e3fe1be46a9942727930", None),
            ("Root=1-5759e988-bd862e3fe1be46a99427279z", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=yes", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Lineage", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Lin eage=x", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Key=\u{e9}", None),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;=x", None),
            ("Root=1-\u{1f600}-bd862e3fe1be46a994272793", None),
        ];
        for (input, expected) in table {
            let parsed = input.parse::<TraceHeader>().ok().map(|h| h.to_string());
            assert_eq!(parsed.as_deref(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_oversized_header() {
        let long = format!("Root={ROOT};Lineage={}", "a".repeat(MAX_HEADER_LEN));
        assert!(long.parse::<TraceHeader>().is_err());
    }

    #[test]
    fn a_header_is_accepted_only_if_what_we_forward_fits_the_limit() {
        // Found by fuzzing: a 2,045-byte header without Parent or Sampled was accepted, and the
        // header forwarded for it (Parent and Sampled added) was 2,079 bytes: refused next hop.
        let header_of = |extra: usize| format!("Root={ROOT};Lineage={}", "a".repeat(extra));
        let fits = (0..MAX_HEADER_LEN)
            .rev()
            .find(|&n| header_of(n).parse::<TraceHeader>().is_ok())
            .unwrap();
        let accepted: TraceHeader = header_of(fits).parse().unwrap();
        let forwarded = accepted
            .for_child(SegmentId::from_str("53995c3f42cd8ad8").unwrap(), true)
            .to_string();
        assert_eq!(forwarded.len(), MAX_HEADER_LEN);
        assert_eq!(
            forwarded.parse::<TraceHeader>().unwrap().extras,
            accepted.extras
        );
        assert_eq!(
            header_of(fits + 1)
                .parse::<TraceHeader>()
                .unwrap_err()
                .to_string(),
            format!("invalid trace header: longer than {MAX_HEADER_LEN} bytes once forwarded")
        );
    }

    #[test]
    fn trace_id_round_trips_through_otel() {
        let id: XrayTraceId = ROOT.parse().unwrap();
        assert_eq!(id.epoch_seconds(), 0x5759e988);
        assert_eq!(XrayTraceId::from_otel(id.to_otel()), id);
        assert_eq!(
            format!("{:032x}", id.to_otel()),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(id.to_string(), ROOT);
    }

    #[test]
    fn child_header_keeps_root_and_extras() {
        let header: TraceHeader = format!("Root={ROOT};Sampled=?;Lineage=a:1")
            .parse()
            .unwrap();
        let child = header.for_child(SegmentId(0xabc), true);
        assert_eq!(
            child.to_string(),
            format!("Root={ROOT};Parent=0000000000000abc;Sampled=1;Lineage=a:1")
        );
        assert_eq!(header.extra("lineage"), Some("a:1"));
    }
}
