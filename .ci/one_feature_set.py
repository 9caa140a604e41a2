#!/usr/bin/env python3
"""One feature set for the whole workspace: building the functions after loadgen compiles none of
their dependencies again.

`cargo run -p loadgen -- --local` builds loadgen, then loadgen builds the functions in a second
Cargo invocation. Cargo resolves each invocation's features on its own, so a dependency that the
two package sets use with different features is compiled twice (it once doubled the first run).
The workspace-hack crate (cargo-hakari, `.config/hakari.toml`) gives every member the same
features. This check catches it going stale: `cargo check -p loadgen`, then
`cargo check` of the functions, which must find every non-workspace crate fresh.
(Check mode resolves features as a build does; it needs no codegen, so it takes seconds here.)

Usage: .ci/one_feature_set.py (from the workspace root; exit 1 listing the crates built again)
"""
import json
import subprocess
import sys

FUNCTIONS = ["order", "payment", "inventory@0.1.0", "access-log-transform", "opensearch-telemetry"]


def check(packages):
    """The non-workspace crates `cargo check -p ...` compiled (not fresh)."""
    args = ["cargo", "check", "--locked", "--quiet", "--message-format", "json"]
    for package in packages:
        args += ["-p", package]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{run.stderr}")
    members = set(json.loads(subprocess.run(
        ["cargo", "metadata", "--locked", "--format-version", "1", "--no-deps"],
        capture_output=True, text=True, check=True).stdout)["workspace_members"])
    compiled = set()
    for line in run.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") != "compiler-artifact" or message.get("fresh"):
            continue
        if message["package_id"] not in members:
            compiled.add(message["package_id"])
    return compiled


def main():
    check(["loadgen"])
    again = check(FUNCTIONS)
    if again:
        names = sorted(package.rsplit("#", 1)[-1] for package in again)
        sys.exit(
            f"the functions' check compiled {len(again)} dependencies loadgen's had compiled "
            f"with other features: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}\n"
            "regenerate the workspace-hack: cargo hakari generate && cargo hakari manage-deps")
    print("the functions' dependencies are loadgen's, feature for feature: nothing compiled twice")


if __name__ == "__main__":
    main()
