//! `local-stack up`: the local stack as a command (see [`local_stack::cli`]).

use clap::Parser;
use local_stack::cli::{up, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up(args) => up(&args).await,
    }
}
