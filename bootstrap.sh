#!/usr/bin/env bash
# Sets up everything rebeam needs on a fresh machine, then runs the quickstart example.
#
#   ./bootstrap.sh              set up (.venv, build, install) and run examples/quickstart
#   ./bootstrap.sh --no-example set up only
#
# Re-running is cheap: builds are incremental and installs are skipped when up to date.
set -euo pipefail
cd "$(dirname "$0")"

run_example=1
[[ "${1:-}" == "--no-example" ]] && run_example=0

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# 1. A Python ≥ 3.11 for the virtualenv.
PYTHON="${REBEAM_BOOTSTRAP_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$cand"; break
    fi
  done
fi
[[ -n "$PYTHON" ]] || { echo "bootstrap: need Python ≥ 3.11 on PATH (or set REBEAM_BOOTSTRAP_PYTHON)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "bootstrap: need a Rust toolchain (cargo) on PATH: https://rustup.rs" >&2; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
VPY=.venv/bin/python

# 2. Build and test dependencies (pinned to what is tested).
if ! $VPY -c 'import maturin, cloudpickle, numpy, pytest, pytest_timeout, ruff' 2>/dev/null; then
  say "installing build and test dependencies"
  $VPY -m pip install --quiet --upgrade pip
  $VPY -m pip install --quiet -r requirements-dev.txt
fi

# 3. The governor binary, then the wheel that carries it and the native module.
say "building the rebeam governor (cargo build --release)"
cargo build --release --quiet -p rebeam-cli
mkdir -p build/wheel-data/scripts
cp target/release/rebeam build/wheel-data/scripts/rebeam

say "building and installing the rebeam wheel"
rm -rf build/dist
$VPY -m maturin build --release --quiet --out build/dist >/dev/null 2>build/maturin.log || { cat build/maturin.log >&2; exit 1; }
$VPY -m pip install --quiet --force-reinstall --no-deps build/dist/rebeam-*.whl

say "rebeam is installed: $(.venv/bin/rebeam --version) at .venv/bin/rebeam"
echo "   activate with: source .venv/bin/activate" >&2

if (( run_example )); then
  say "running examples/quickstart (a supervised pipeline that survives a crash)"
  (cd examples/quickstart && ../../.venv/bin/rebeam main.py)
fi
