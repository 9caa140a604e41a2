//! `loadgen seed-stock` writes the simulated catalog into an inventory table, here one on the
//! embedded DynamoDB server. (Own test binary: it sets the process's AWS environment.)

use clap::Parser;
use lattice_xray::dynamodb::local::{client_for, EmbeddedDynamoDb};
use loadgen::cli::{Cli, Command};

#[tokio::test]
async fn seeds_the_catalog_the_local_stack_starts_with() {
    let server = EmbeddedDynamoDb::start(0).unwrap();
    let client = client_for(&server.endpoint());
    inventory::table::create(&client, "inventory")
        .await
        .unwrap();
    std::env::set_var("AWS_ACCESS_KEY_ID", "local");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
    let cli = Cli::try_parse_from([
        "loadgen",
        "seed-stock",
        "--region",
        "us-east-1",
        "--endpoint-url",
        &server.endpoint(),
        "--stock-range",
        "10..20",
    ])
    .unwrap();
    let Some(Command::SeedStock(args)) = cli.command else {
        panic!("seed-stock")
    };
    loadgen::app::seed_stock(args).await.unwrap();
    let contents = inventory::table::read_contents(&client, "inventory")
        .await
        .unwrap();
    let expected: std::collections::BTreeMap<String, u32> =
        inventory::table::seeded_levels(2, 10, 20)
            .into_iter()
            .collect();
    assert_eq!(contents.available, expected);
    assert_eq!(contents.available.len(), 100);
    assert!(contents.reservations.is_empty());
}
