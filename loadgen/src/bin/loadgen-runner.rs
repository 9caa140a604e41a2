//! loadgen as a Lambda function in the stack's VPC: see [`loadgen::runner`].

use lambda_runtime::{service_fn, LambdaEvent};
use loadgen::runner::{serve, RunnerRequest};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<RunnerRequest>| {
        serve(event.payload)
    }))
    .await
}
