//! SigV4 verification on the server side, for every local endpoint that AWS guards with SigV4:
//! the caller's signature is recomputed with `aws-sigv4` (the same signer the clients use) from
//! the access key's secret, the headers the caller listed in `SignedHeaders`, the caller's
//! `x-amz-date` and the payload hash, then compared. No crate verifies SigV4 server-side, so this
//! is written here around the official signer.
//!
//! Each endpoint has its [`SigningRules`]:
//! - Lattice (`AWS_IAM` auth; VPC Lattice guide, "SIGv4 authenticated requests for Amazon VPC
//!   Lattice"): signing name `vpc-lattice-svcs` and `x-amz-content-sha256: UNSIGNED-PAYLOAD`
//!   (payload signing is not supported);
//! - Amazon OpenSearch Service: signing name `es` (`aoss` for Serverless), the payload signed
//!   (the header carries the body's SHA-256, which must match the body) or unsigned.
//!
//! A request with no `Authorization` header is anonymous: the endpoint decides whether anonymous
//! callers may pass. The clock-skew window is SigV4's: 5 minutes either way (IAM guide, "Elements
//! of an AWS API request signature": a request whose time stamp is more than five minutes off is
//! refused).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Lattice's signing name.
pub const LATTICE_SIGNING_NAME: &str = "vpc-lattice-svcs";
/// Amazon OpenSearch Service's signing name.
pub const OPENSEARCH_SIGNING_NAME: &str = "es";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The largest difference between the signer's clock and ours.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// One principal and its long-term key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalKey {
    /// The IAM principal ARN (a role or user), as auth policies name it.
    pub principal: String,
    /// `AKIA…`.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
}

/// Whether the body may be signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadRule {
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD` is required (Lattice).
    UnsignedOnly,
    /// The body's SHA-256 in `x-amz-content-sha256` (checked against the body), the header
    /// absent (the hash is then computed from the body), or `UNSIGNED-PAYLOAD`.
    SignedOrUnsigned,
}

/// What an endpoint accepts: the signing name and the payload rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningRules {
    /// The service name in the credential scope.
    pub service: String,
    /// Whether the payload may be signed.
    pub payload: PayloadRule,
}

impl SigningRules {
    /// VPC Lattice's `AWS_IAM` auth.
    pub fn lattice() -> Self {
        Self {
            service: LATTICE_SIGNING_NAME.to_owned(),
            payload: PayloadRule::UnsignedOnly,
        }
    }

    /// Amazon OpenSearch Service (managed domains).
    pub fn opensearch() -> Self {
        Self {
            service: OPENSEARCH_SIGNING_NAME.to_owned(),
            payload: PayloadRule::SignedOrUnsigned,
        }
    }
}

/// Who a request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No `Authorization` header.
    Anonymous,
    /// A valid signature by this principal.
    Principal(String),
}

/// Why a signature was refused. The messages are the ones AWS services answer with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The `Authorization` header is not a SigV4 header.
    #[error("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters of an AWS4-HMAC-SHA256 signature")]
    Malformed,
    /// Signed for another service (the expected one is carried).
    #[error("Credential should be scoped to correct service: '{0}'")]
    WrongService(String),
    /// Signed for another region.
    #[error("Credential should be scoped to a valid region, not '{0}'")]
    WrongRegion(String),
    /// Payload signing (or no payload header) where only unsigned payloads are accepted.
    #[error("x-amz-content-sha256 must be {UNSIGNED_PAYLOAD}: VPC Lattice does not support payload signing")]
    PayloadSigned,
    /// The payload hash in `x-amz-content-sha256` is not the body's.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    /// Unknown access key.
    #[error("The security token included in the request is invalid")]
    UnknownKey,
    /// `x-amz-date` missing or unreadable.
    #[error("x-amz-date must be present in the form YYYYMMDD'T'HHMMSS'Z'")]
    BadDate,
    /// Outside the skew window.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        /// The request's time.
        signed: String,
        /// The oldest accepted.
        earliest: String,
        /// Ours.
        now: String,
    },
    /// In the future beyond the window.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 5 min.)")]
    NotYetCurrent {
        /// The request's time.
        signed: String,
        /// The latest accepted.
        latest: String,
        /// Ours.
        now: String,
    },
    /// The recomputed signature differs.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    Mismatch,
}

impl SignatureError {
    /// The AWS error code for the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownKey => "UnrecognizedClientException",
            Self::Expired { .. } | Self::NotYetCurrent { .. } => "InvalidSignatureException",
            Self::Mismatch | Self::PayloadHashMismatch => "InvalidSignatureException",
            _ => "IncompleteSignatureException",
        }
    }
}

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut parts: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        parts.insert(key, value);
    }
    let mut scope = parts.get("Credential")?.split('/');
    let access_key = scope.next()?;
    let date = scope.next()?;
    let region = scope.next()?;
    let service = scope.next()?;
    if scope.next()? != "aws4_request" || scope.next().is_some() {
        return None;
    }
    Some(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: parts.get("SignedHeaders")?.split(';').collect(),
        signature: parts.get("Signature")?,
    })
}

/// `YYYYMMDDTHHMMSSZ` → time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        value.get(0..4)?,
        value.get(4..6)?,
        value.get(6..8)?,
        value.get(9..11)?,
        value.get(11..13)?,
        value.get(13..15)?
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

/// Time → `YYYYMMDDTHHMMSSZ`.
fn amz_date(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace(['-', ':'], "")
}

/// Checks a request's SigV4 signature.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: HashMap<String, PrincipalKey>,
    region: String,
    rules: SigningRules,
}

/// How the body enters the signature.
enum Payload<'a> {
    Unsigned,
    Hash(&'a str),
    Body(&'a [u8]),
}

impl Verifier {
    /// A verifier for a service in `region` following `rules`, knowing `keys` (access key id →
    /// principal).
    pub fn new(
        keys: HashMap<String, PrincipalKey>,
        region: impl Into<String>,
        rules: SigningRules,
    ) -> Self {
        Self {
            keys,
            region: region.into(),
            rules,
        }
    }

    /// Who sent the request with `method`, `path_and_query`, `headers` and `body`, judged at
    /// `now`. (`body` matters only where the payload may be signed.)
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Caller, SignatureError> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(Caller::Anonymous);
        };
        let value = value.to_str().map_err(|_| SignatureError::Malformed)?;
        let auth = parse_authorization(value).ok_or(SignatureError::Malformed)?;
        if auth.service != self.rules.service {
            return Err(SignatureError::WrongService(self.rules.service.clone()));
        }
        if auth.region != self.region {
            return Err(SignatureError::WrongRegion(auth.region.to_owned()));
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let payload = self.payload(header("x-amz-content-sha256"), body)?;
        let key = self
            .keys
            .get(auth.access_key)
            .ok_or(SignatureError::UnknownKey)?;
        let date_text = header("x-amz-date").ok_or(SignatureError::BadDate)?;
        let signed_at = parse_amz_date(date_text).ok_or(SignatureError::BadDate)?;
        if !date_text.starts_with(auth.date) {
            return Err(SignatureError::Mismatch);
        }
        if signed_at + MAX_SKEW < now {
            return Err(SignatureError::Expired {
                signed: date_text.to_owned(),
                earliest: amz_date(now - MAX_SKEW),
                now: amz_date(now),
            });
        }
        if signed_at > now + MAX_SKEW {
            return Err(SignatureError::NotYetCurrent {
                signed: date_text.to_owned(),
                latest: amz_date(now + MAX_SKEW),
                now: amz_date(now),
            });
        }
        let expected = self.signature(
            key,
            Signed {
                method,
                path_and_query,
                headers,
                payload,
            },
            &auth,
            signed_at,
        )?;
        if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            Ok(Caller::Principal(key.principal.clone()))
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    fn payload<'a>(
        &self,
        content_sha256: Option<&'a str>,
        body: &'a [u8],
    ) -> Result<Payload<'a>, SignatureError> {
        match (self.rules.payload, content_sha256) {
            (_, Some(UNSIGNED_PAYLOAD)) => Ok(Payload::Unsigned),
            (PayloadRule::UnsignedOnly, _) => Err(SignatureError::PayloadSigned),
            (PayloadRule::SignedOrUnsigned, None) => Ok(Payload::Body(body)),
            (PayloadRule::SignedOrUnsigned, Some(hash)) => {
                if hash.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) {
                    Ok(Payload::Hash(hash))
                } else {
                    Err(SignatureError::PayloadHashMismatch)
                }
            }
        }
    }

    fn signature(
        &self,
        key: &PrincipalKey,
        request: Signed<'_>,
        auth: &Authorization<'_>,
        signed_at: SystemTime,
    ) -> Result<String, SignatureError> {
        let Signed {
            method,
            path_and_query,
            headers,
            payload,
        } = request;
        let session_token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let identity: Identity = Credentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            session_token,
            None,
            "lattice-local",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = match payload {
            Payload::Body(_) => PayloadChecksumKind::NoHeader,
            Payload::Unsigned | Payload::Hash(_) => PayloadChecksumKind::XAmzSha256,
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.rules.service)
            .time(signed_at)
            .settings(settings)
            .build()
            .map_err(|_| SignatureError::Malformed)?
            .into();
        // Only the headers the caller signed, with every value they carried.
        let mut signed = Vec::new();
        for name in &auth.signed_headers {
            let values: Vec<&str> = headers
                .get_all(*name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if values.is_empty() {
                return Err(SignatureError::Mismatch);
            }
            for value in values {
                signed.push((*name, value));
            }
        }
        let body = match payload {
            Payload::Unsigned => SignableBody::UnsignedPayload,
            Payload::Hash(hash) => SignableBody::Precomputed(hash.to_owned()),
            Payload::Body(bytes) => SignableBody::Bytes(bytes),
        };
        let request = SignableRequest::new(method, path_and_query, signed.into_iter(), body)
            .map_err(|_| SignatureError::Malformed)?;
        let output = sign(request, &params).map_err(|_| SignatureError::Malformed)?;
        let (instructions, signature) = output.into_parts();
        // The signer adds x-amz-date / x-amz-content-sha256 / the token itself: our list must
        // equal the caller's, or the caller signed something else.
        let (header_list, _) = instructions.into_parts();
        let ours = header_list
            .iter()
            .find(|h| h.name() == "authorization")
            .map(|h| h.value().to_owned())
            .unwrap_or_default();
        let caller_list = auth.signed_headers.join(";");
        if !ours.contains(&format!("SignedHeaders={caller_list},")) {
            return Err(SignatureError::Mismatch);
        }
        Ok(signature)
    }
}

/// The request as signed.
struct Signed<'a> {
    method: &'a str,
    path_and_query: &'a str,
    headers: &'a HeaderMap,
    payload: Payload<'a>,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn amz_dates_round_trip() {
        let t = parse_amz_date("20261122T093005Z").unwrap();
        assert_eq!(amz_date(t), "20261122T093005Z");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_339_805
        );
        assert_eq!(
            parse_amz_date("20240229T000000Z").map(amz_date).as_deref(),
            Some("20240229T000000Z")
        );
        for bad in [
            "2026-11-22T09:30:05Z",
            "20261322T093005Z",
            "20261122T093005",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn authorization_headers_are_parsed_strictly() {
        let auth = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/vpc-lattice-svcs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc").unwrap();
        assert_eq!(auth.access_key, "AKIDEXAMPLE");
        assert_eq!(auth.service, "vpc-lattice-svcs");
        assert_eq!(auth.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(auth.signature, "abc");
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization(
            "AWS4-HMAC-SHA256 Credential=A/B/C/D/other, SignedHeaders=host, Signature=x"
        )
        .is_none());
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=A/B/C/D/aws4_request").is_none());
    }
}
