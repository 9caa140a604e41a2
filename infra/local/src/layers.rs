//! Lambda layer directories for the local stack. A layer is a folder; the Lambda service starts
//! each file of its `extensions/` in every environment (on AWS, the layer's zip is mounted at
//! `/opt` and Lambda starts `/opt/extensions/*`). `cargo lambda build --extension` writes
//! exactly this layout under `target/lambda/`, so that folder can be given as it is.

use std::io;
use std::path::{Path, PathBuf};

use crate::binaries::{build_service_binaries, service_binary};

/// The workspace's Telemetry API extension (`extensions/telemetry`).
pub const TELEMETRY_EXTENSION: &str = "opensearch-telemetry";

/// A layer directory under `dir` holding the telemetry extension as
/// `extensions/opensearch-telemetry` (a link to the binary, built with Cargo first when `build`:
/// a no-op when it is up to date).
pub fn telemetry_layer(dir: &Path, build: bool) -> io::Result<PathBuf> {
    let binary = if build {
        build_service_binaries(&[TELEMETRY_EXTENSION])?
            .pop()
            .ok_or_else(|| io::Error::other("no extension binary"))?
    } else {
        service_binary(TELEMETRY_EXTENSION)?
    };
    let layer = dir.join("telemetry-layer");
    let extensions = layer.join("extensions");
    std::fs::create_dir_all(&extensions)?;
    let link = extensions.join(TELEMETRY_EXTENSION);
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(&binary, &link)?;
    Ok(layer)
}
