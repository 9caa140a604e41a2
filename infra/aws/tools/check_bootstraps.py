#!/usr/bin/env python3
"""Checks that `cargo lambda build --release --arm64` left a Linux arm64 `bootstrap` for every
function in the template (`Metadata.BuildProperties.Binary`), and for every package a layer's
Makefile builds (`-p NAME` in infra/aws/Makefile: the telemetry extension, when built in the same
invocation as the functions), under target/lambda/<binary>/.

Usage: python infra/aws/tools/check_bootstraps.py <workspace root> [binary ...]
(the binaries named, or every one in the template)
"""
import pathlib
import re
import sys

EM_AARCH64 = 183  # ELF e_machine


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    template = (root / "infra" / "aws" / "template.yaml").read_text()
    binaries = re.findall(r"BuildProperties:\s*\n\s*Binary: (\S+)", template)
    makefile = root / "infra" / "aws" / "Makefile"
    if makefile.is_file():
        binaries += re.findall(r"-p (\S+)", makefile.read_text())
    if not binaries:
        sys.exit("no BuildProperties.Binary in the template")
    wanted = sys.argv[2:]
    unknown = [b for b in wanted if b not in binaries]
    if unknown:
        sys.exit(f"not functions or layer packages of the template: {unknown}")
    binaries = wanted or binaries
    failed = False
    for binary in binaries:
        path = root / "target" / "lambda" / binary / "bootstrap"
        if not path.is_file():
            print(f"{binary}: {path} missing")
            failed = True
            continue
        header = path.read_bytes()[:20]
        is_elf64 = header[:4] == b"\x7fELF" and header[4] == 2
        machine = int.from_bytes(header[18:20], "little")
        if not is_elf64 or machine != EM_AARCH64:
            print(f"{binary}: {path} is not a 64-bit arm64 ELF (machine {machine})")
            failed = True
            continue
        print(f"{binary}: {path} arm64 ELF, {path.stat().st_size / 1e6:.1f} MB")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
