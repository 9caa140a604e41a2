//! The scheduled cost report Lambda: configure once, then one report per EventBridge event.

use chrono::{DateTime, Utc};
use cost_report::config::Config;
use cost_report::job;
use cost_report::s3::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use lattice_cost::prices::PriceTable;
use lattice_cost::sources::aws::{AwsClients, AwsSources, CostExplorerBill};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = AwsClients::from_config(&sdk);
    let store = S3Store::new(aws_sdk_s3::Client::new(&sdk), &config.bucket);
    let table = PriceTable::built_in();
    let aws = AwsSources::new(&clients, &config.access_log_group);
    let sources = aws.sources();
    let bill = CostExplorerBill::new(clients.cost_explorer.clone());
    let (sources, bill, store, config, table) = (&sources, &bill, &store, &config, &table);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A scheduled event's `time` is when the schedule fired (RFC 3339).
        let at = event.payload["time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let outcome = job::run((sources, bill), store, config, table, at).await?;
        for line in &outcome.metrics {
            println!("{line}");
        }
        Ok::<_, lambda_runtime::Error>(json!({"report": outcome.key}))
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
