//! loadgen as a Lambda function in the stack's VPC: see [`loadgen::runner`]. One invocation runs
//! one load through [`loadgen::pipeline::execute`] and answers with its report.

use indicatif::ProgressBar;
use lambda_runtime::{service_fn, LambdaEvent};
use loadgen::report::Report;
use loadgen::runner::{runner_args, RunnerError, RunnerRequest, ORDER_URL_VARIABLE};

async fn serve(request: RunnerRequest) -> Result<Report, RunnerError> {
    let order_url = std::env::var(ORDER_URL_VARIABLE).map_err(|_| RunnerError::NoOrderUrl)?;
    let args = runner_args(&order_url, &request)?;
    let report = loadgen::pipeline::execute(&args, &ProgressBar::hidden())
        .await
        .map_err(|e| RunnerError::Failed(format!("{e:#}")))?;
    // The function's log holds the human report too.
    print!("{}", report.render());
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<RunnerRequest>| {
        serve(event.payload)
    }))
    .await
}
