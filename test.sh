#!/usr/bin/env bash
# Runs the whole test suite: lints, Rust unit tests, Python API tests, integration tests
# (real rebeam programs, real processes and signals) and every example.
#
#   ./test.sh [PYTEST ARGS]           with the locked dependencies (requirements-dev.lock, Cargo.lock)
#   ./test.sh --latest [PYTEST ARGS]  with the newest releases of the Python dependencies, in
#                                     .venv-latest: finds a drift before a fresh install does
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
bootstrap=(--no-example)
if [[ "${1:-}" == "--latest" ]]; then
  shift
  VENV=.venv-latest
  bootstrap+=(--latest)
fi

# Xvfb: tests/integration/test_pinned_tk.py pumps rebeam.boc from a real Tk event loop on a
# virtual X display. Installed once (Debian package xvfb); a no-op when Xvfb is on PATH.
if ! command -v Xvfb >/dev/null; then
  echo "==> installing Xvfb (apt-get install xvfb)"
  sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
  install_xvfb() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xvfb >/dev/null; }
  install_xvfb || { $sudo apt-get update -qq && install_xvfb; } \
    || echo "test.sh: could not install Xvfb; test_pinned_tk.py will fail until it is installed" >&2
fi

# tmux: tests/integration/test_top.py drives `rebeam top` in a real terminal (send-keys,
# capture-pane). Installed once (Debian package tmux); a no-op when tmux is on PATH.
if ! command -v tmux >/dev/null; then
  echo "==> installing tmux (apt-get install tmux)"
  sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
  install_tmux() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null; }
  install_tmux || { $sudo apt-get update -qq && install_tmux; } \
    || echo "test.sh: could not install tmux; test_top.py skips its terminal test until it is installed" >&2
fi

./bootstrap.sh "${bootstrap[@]}"

echo "==> ruff; cargo fmt --check; cargo clippy"
$VENV/bin/ruff check python tests examples benches build_backend
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

echo "==> cargo test (Rust unit tests)"
# rebeam-py is a Python extension module: it is exercised through Python below.
cargo test --workspace --exclude rebeam-py --locked --quiet

echo "==> pytest (Python API, integration, examples)"
"$VENV/bin/python" -m pytest -q "$@"
