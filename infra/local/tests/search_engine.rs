//! The stack runs its search engine: `state.json` names the endpoint an OpenSearch client is given,
//! the engine answers as OpenSearch at that URL, and the auth the stack was told to require is
//! enforced (HTTP basic here; SigV4 is proven against real signers in infra/search's tests).

mod support;

use local_stack::search::SearchStorage;
use local_stack::stack::StackState;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_serves_the_opensearch_api_named_in_its_state_file() {
    let stack = support::start("search-engine", &[], |config| {
        config.search.basic_auth = Some(("analyst".into(), "local-only".into()));
        config.search.storage = SearchStorage::Memory;
    })
    .await;
    let state = StackState::load(&stack.config.state_dir).unwrap();
    assert_eq!(state.search, stack.state.search);
    assert_eq!(state.search.auth, "basic");
    assert_eq!(state.search.data_dir, None);
    assert!(
        state.search.url.starts_with("http://127.0.0.1:"),
        "{}",
        state.search.url
    );

    let client = reqwest::Client::new();
    let anonymous = client.get(&state.search.url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body = client
        .get(&state.search.url)
        .basic_auth("analyst", Some("local-only"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["version"]["distribution"], "opensearch");
    assert_eq!(info["version"]["number"], local_search::api::VERSION_NUMBER);
    stack.shutdown().await;
}
