#!/usr/bin/env bash
# Sets up everything rebeam needs on a fresh machine, then runs the quickstart example.
#
#   ./bootstrap.sh              set up (.venv, build, install) and run examples/quickstart
#   ./bootstrap.sh --no-example set up only
#   ./bootstrap.sh --latest     set up .venv-latest with the newest releases of the Python
#                               dependencies instead of the locked ones (see ./test.sh --latest)
#
# Re-running is cheap: builds are incremental, and the dependencies are reinstalled only when
# requirements-dev.txt or requirements-dev.lock changed (a stamp in the venv records their hash).
# Cargo.lock is honoured (--locked): the crates built are the ones tested.
set -euo pipefail
cd "$(dirname "$0")"

run_example=1
latest=0
for arg in "$@"; do
  case "$arg" in
    --no-example) run_example=0 ;;
    --latest) latest=1 ;;
    *) echo "bootstrap: unknown option $arg (expected --no-example or --latest)" >&2; exit 2 ;;
  esac
done
VENV=.venv
(( latest )) && VENV=.venv-latest

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

if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
VPY=$VENV/bin/python

# 2. Build and test dependencies: exactly the locked versions, or the newest with --latest.
# Prints what differs from the lock (a package installed by hand since) and fails, if anything.
locked_versions_differ() {
  $VPY - requirements-dev.lock <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

drift = []
for line in open(sys.argv[1]):
    name, _, want = line.split("#")[0].strip().partition("==")
    if not name:
        continue
    try:
        have = version(name)
    except PackageNotFoundError:
        have = "missing"
    if have != want:
        drift.append(f"{name} {have}, locked {want}")
print("; ".join(drift))
sys.exit(1 if drift else 0)
EOF
}
stamp=$VENV/.rebeam-deps
want="$(cat requirements-dev.txt requirements-dev.lock | sha256sum | cut -d' ' -f1)"
if (( latest )); then
  say "installing the newest releases of the build and test dependencies into $VENV"
  $VPY -m pip install --quiet --upgrade pip
  $VPY -m pip install --quiet --upgrade -r requirements-dev.txt
  $VPY -m pip list --format=freeze --exclude rebeam 2>/dev/null | sed 's/^/   /' >&2
elif [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] || ! drift="$(locked_versions_differ)"; then
  say "installing the locked build and test dependencies (requirements-dev.lock)${drift:+: $drift}"
  $VPY -m pip install --quiet -c requirements-dev.lock pip
  $VPY -m pip install --quiet -r requirements-dev.txt -c requirements-dev.lock
  echo "$want" >"$stamp"
fi

# 3. The wheel: the governor binary and the native module, built as `pip install .` builds them
# (build_backend/rebeam_build.py: cargo builds the governor, then maturin the wheel).
say "building the rebeam governor and wheel (cargo build --release, then maturin)"
rm -rf build/dist
mkdir -p build
$VPY -m pip wheel --quiet --no-build-isolation --no-deps --wheel-dir build/dist . >build/wheel.log 2>&1 \
  || { cat build/wheel.log >&2; exit 1; }
$VPY -m pip install --quiet --force-reinstall --no-deps build/dist/rebeam-*.whl

# 4. What a source install needs from PyPI, kept locally, so the tests can install rebeam from
# source with no network (tests/integration/test_pip_install.py): the locked maturin, cloudpickle
# and uv.
wheelhouse=build/wheelhouse
for pin in $(grep -E '^(maturin|cloudpickle|uv)==' requirements-dev.lock); do
  name=${pin%%==*}; version=${pin##*==}
  if ! ls "$wheelhouse/$name-$version-"*.whl >/dev/null 2>&1; then
    say "keeping a $pin wheel in $wheelhouse (for offline source installs)"
    $VPY -m pip download --quiet --only-binary=:all: --no-deps --dest "$wheelhouse" "$pin"
  fi
done

say "rebeam is installed: $($VENV/bin/rebeam --version) at $VENV/bin/rebeam"
echo "   activate with: source $VENV/bin/activate" >&2

if (( run_example )); then
  say "running examples/quickstart (a supervised pipeline that survives a crash)"
  (cd examples/quickstart && "../../$VENV/bin/rebeam" main.py)
fi
