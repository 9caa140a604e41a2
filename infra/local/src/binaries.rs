//! Finding the service binaries next to the running executable, building them first (Cargo makes
//! that a no-op when they are up to date, and a stale binary would run old code).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Cargo target directory of the running executable (`target/<profile>`), found by walking up
/// from it (tests run from `target/<profile>/deps`).
pub fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent()?;
    }
    Some(dir.to_path_buf())
}

/// Path of the workspace binary `name`, built with Cargo (same profile) only if it is missing.
/// Tests use this: `cargo test --workspace` has already built every service binary with the
/// workspace's features, and rebuilding one package alone would resolve features differently
/// and recompile its whole dependency tree.
pub fn service_binary(name: &str) -> std::io::Result<PathBuf> {
    let dir =
        profile_dir().ok_or_else(|| std::io::Error::other("cannot locate the target directory"))?;
    let binary = dir.join(name);
    if !binary.exists() {
        build(&[name], &dir)?;
    }
    Ok(binary)
}

/// Builds the service binaries `names` in one Cargo run (a no-op when they are up to date), so a
/// command such as `up` never runs stale code. Returns their paths.
pub fn build_service_binaries(names: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let dir =
        profile_dir().ok_or_else(|| std::io::Error::other("cannot locate the target directory"))?;
    build(names, &dir)?;
    Ok(names.iter().map(|name| dir.join(name)).collect())
}

fn build(names: &[&str], profile_dir: &Path) -> std::io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet"]);
    for name in names {
        command.args(["--bin", name, "-p", name]);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        command.env("CARGO_TARGET_DIR", target);
    }
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cargo build of {} failed: {status}",
            names.join(", ")
        )))
    }
}
