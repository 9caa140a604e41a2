//! What loadgen's tests of the runner share: a local stack hosting the real `loadgen-runner`
//! binary, the loadgen principal's key, and loadgen's own Lambda client (`loadgen::clients`, as
//! the laptop side builds it: no retries, the invocation timeout) signed with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use local_stack::stack::{LocalStack, StackConfig};

/// An ephemeral stack's config (state under `dir`) hosting this package's `loadgen-runner`.
pub fn runner_stack_config(dir: &Path) -> StackConfig {
    let mut config = StackConfig::ephemeral(dir.to_path_buf());
    config.runner_binary = Some(PathBuf::from(env!("CARGO_BIN_EXE_loadgen-runner")));
    config
}

/// The loadgen principal's key: the laptop side signs with it.
pub fn loadgen_credentials(stack: &LocalStack) -> SharedCredentialsProvider {
    loadgen::clients::local_stack_credentials(stack).expect("loadgen key")
}

/// loadgen's Lambda client for the stack's Invoke API, giving an invocation two minutes.
pub fn lambda_client(stack: &LocalStack) -> aws_sdk_lambda::Client {
    loadgen::clients::lambda_client(
        Some(&stack.lambda_endpoint()),
        &stack.state.region,
        Some(loadgen_credentials(stack)),
        None,
        Duration::from_secs(120),
    )
}
