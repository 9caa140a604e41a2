//! The Firehose transform Lambda: configure, then answer Firehose's batches.

use std::sync::Arc;

use access_log_transform::handler::Transform;
use access_log_transform::TransformConfig;
use aws_lambda_events::firehose::KinesisFirehoseEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use lattice_xray::{Telemetry, TelemetryConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::from_config(&TelemetryConfig::from_env()?)?;
    telemetry.install_subscriber();
    let transform = Arc::new(Transform::new(
        TransformConfig::from_env()?,
        telemetry.clone(),
    ));
    let result = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisFirehoseEvent>| {
            let transform = Arc::clone(&transform);
            async move {
                let trace_id = event.context.xray_trace_id.as_deref();
                Ok::<_, std::convert::Infallible>(transform.handle(&event.payload, trace_id))
            }
        },
    ))
    .await;
    telemetry.flush();
    result.map_err(|e| anyhow::anyhow!(e))
}
