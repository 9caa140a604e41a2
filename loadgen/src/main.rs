//! `loadgen`: see [`loadgen::cli`].

use clap::Parser;
use loadgen::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Inspect(args)) => loadgen::app::inspect_only(args).await.map(|_| ()),
        Some(Command::SeedStock(args)) => loadgen::app::seed_stock(args).await,
        Some(Command::Analytics(args)) => Ok(loadgen::analytics::run(&args).await?),
        Some(Command::Cost(args)) => loadgen::cost::run(&args).await,
        Some(Command::Report(args)) => loadgen::app::saved_report(&args),
        None => loadgen::app::run(cli.run).await.map(|_| ()),
    }
}
