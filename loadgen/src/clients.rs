//! The AWS SDK clients loadgen builds: X-Ray's and Lambda's, for AWS (from the config chain) or
//! for the local stack (its endpoints and loadgen's key), and the Region they sign for.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use local_stack::stack::LocalStack;

/// The loadgen principal's key on the local stack: the credentials loadgen signs with there.
pub fn local_stack_credentials(stack: &LocalStack) -> anyhow::Result<SharedCredentialsProvider> {
    let key = stack
        .loadgen_key()
        .ok_or_else(|| anyhow::anyhow!("the local stack has no loadgen key"))?;
    Ok(SharedCredentialsProvider::new(Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "local-stack",
    )))
}

/// An X-Ray client for `region`: AWS's endpoint, or `endpoint` (the local stack's); `base` the
/// loaded AWS config, when there is one.
pub fn xray_client(
    endpoint: Option<&str>,
    region: &str,
    credentials: Option<SharedCredentialsProvider>,
    base: Option<&aws_config::SdkConfig>,
) -> aws_sdk_xray::Client {
    let mut builder = match base {
        Some(config) => aws_sdk_xray::config::Builder::from(config),
        None => aws_sdk_xray::Config::builder()
            .behavior_version(aws_sdk_xray::config::BehaviorVersion::latest()),
    };
    builder = builder.region(aws_sdk_xray::config::Region::new(region.to_owned()));
    if let Some(credentials) = credentials {
        builder = builder.credentials_provider(credentials);
    }
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_xray::Client::from_conf(builder.build())
}

/// `--region`, else the AWS config chain's.
pub fn region(explicit: Option<&str>, config: &aws_config::SdkConfig) -> anyhow::Result<String> {
    explicit
        .map(str::to_owned)
        .or_else(|| config.region().map(|r| r.to_string()))
        .ok_or_else(|| anyhow::anyhow!("no region: pass --region or set AWS_REGION"))
}

/// A Lambda client for `region` that does not retry (loadgen measures throttles rather than
/// hiding them) and gives up on an invocation after `timeout`.
pub fn lambda_client(
    endpoint: Option<&str>,
    region: &str,
    credentials: Option<SharedCredentialsProvider>,
    base: Option<&aws_config::SdkConfig>,
    timeout: Duration,
) -> aws_sdk_lambda::Client {
    let mut builder = match base {
        Some(config) => aws_sdk_lambda::config::Builder::from(config),
        None => aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest()),
    };
    builder = builder
        .region(aws_sdk_lambda::config::Region::new(region.to_owned()))
        // loadgen measures throttles rather than hiding them behind retries.
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .build(),
        );
    if let Some(credentials) = credentials {
        builder = builder.credentials_provider(credentials);
    }
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}
