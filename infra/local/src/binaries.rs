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

/// The running executable's own binary and package, when Cargo ran it (`cargo run` sets
/// `CARGO_BIN_NAME` and `CARGO_PKG_NAME` for the program it runs).
fn running_binary() -> Option<(String, String)> {
    let bin = std::env::var("CARGO_BIN_NAME").ok()?;
    let package = std::env::var("CARGO_PKG_NAME").ok()?;
    let built = profile_dir()?.join(&bin);
    let running = std::env::current_exe().ok()?;
    (built == running).then_some((bin, package))
}

/// `cargo build` of the binaries `names` (each its package's), in the same invocation as the
/// running executable's own binary when Cargo ran it (`cargo run -p loadgen -- --local`).
///
/// Why the same invocation: Cargo decides per invocation how each dependency is compiled for
/// LTO (`[profile.release]` has `lto = "thin"`): object code and bitcode when anything in the
/// graph needs object code (the local stack links dynoxide-rs, a `cdylib`, so loadgen's graph
/// does), bitcode alone otherwise. The functions built alone got the other mode, so ~300
/// dependencies compiled a second time even with one feature set (the workspace-hack crate). With
/// the running binary in the invocation, the graph is loadgen's plus the functions': loadgen's
/// own units are unchanged (fresh) and the functions reuse them.
fn build(names: &[&str], profile_dir: &Path) -> std::io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet"]);
    let version = env!("CARGO_PKG_VERSION");
    let mut packages: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), n.to_string()))
        .collect();
    packages.extend(running_binary());
    for (bin, package) in &packages {
        // By version: crates.io has packages of some of these names too (`inventory`, a
        // dependency of typetag), which Cargo refuses as ambiguous. Every member takes the
        // workspace's one version (`version.workspace = true`), so local-stack's is theirs.
        command.args(["--bin", bin, "-p", &format!("{package}@{version}")]);
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
