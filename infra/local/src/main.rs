//! `local-stack up` / `local-stack search`: the local stack, or its search engine alone, as a
//! command (see [`local_stack::cli`]).

use clap::Parser;
use local_stack::cli::{search, up, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up(args) => up(&args).await,
        Command::Search(args) => search(&args).await,
    }
}
