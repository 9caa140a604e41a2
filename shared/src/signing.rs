//! SigV4 request signing for the AWS HTTP APIs this project calls by hand: Lattice services
//! (`vpc-lattice-svcs`, payload unsigned, as Lattice's IAM auth takes it) and OpenSearch Service
//! (`es`, the body's SHA-256 signed and sent in `x-amz-content-sha256`). One place builds the
//! signing parameters over `aws-sigv4`, so every caller (the services, loadgen, the local stack's
//! Firehose) signs the same way.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::Error;

/// Lattice's signing name.
pub const LATTICE_SIGNING_NAME: &str = "vpc-lattice-svcs";
/// OpenSearch Service's signing name (managed domains; Serverless is `aoss`).
pub const OPENSEARCH_SIGNING_NAME: &str = "es";

/// What the signature covers of the body.
#[derive(Clone, Copy, Debug)]
pub enum SignedPayload<'a> {
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
    Unsigned,
    /// The body's SHA-256, signed and sent in `x-amz-content-sha256`.
    Bytes(&'a [u8]),
}

/// Signs `request` for the service `signing_name` in `region` at `time`. The request must
/// already carry its `host`.
pub fn sign_request<B>(
    request: &mut http::Request<B>,
    identity: &Identity,
    region: &str,
    signing_name: &str,
    payload: SignedPayload<'_>,
    time: SystemTime,
) -> Result<(), Error> {
    let failed = |e: &dyn std::fmt::Display| Error::Signing(e.to_string());
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(signing_name)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let body = match payload {
        SignedPayload::Unsigned => SignableBody::UnsignedPayload,
        SignedPayload::Bytes(bytes) => SignableBody::Bytes(bytes),
    };
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers.into_iter(),
        body,
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Signs `request` (whose body is `body`) for an OpenSearch Service domain in `region`.
pub fn sign_for_opensearch<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<(), Error> {
    sign_request(
        request,
        identity,
        region,
        OPENSEARCH_SIGNING_NAME,
        SignedPayload::Bytes(body),
        time,
    )
}
