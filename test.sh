#!/usr/bin/env bash
# Runs the whole test suite: lints, Rust unit tests, Python API tests, integration tests
# (real rebeam programs, real processes and signals) and every example.
set -euo pipefail
cd "$(dirname "$0")"

./bootstrap.sh --no-example

echo "==> ruff; cargo fmt --check; cargo clippy"
.venv/bin/ruff check python tests examples benches
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "==> cargo test (Rust unit tests)"
# rebeam-py is a Python extension module: it is exercised through Python below.
cargo test --workspace --exclude rebeam-py --quiet

echo "==> pytest (Python API, integration, examples)"
.venv/bin/python -m pytest -q "$@"
