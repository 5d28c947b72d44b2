#!/usr/bin/env bash
# Benchmarks rebeam against its peers (multiprocessing, Pykka, Ray; bocpy for rebeam.boc) and
# prints the comparison tables.
#
#   bash benches/run.sh            full run (a few minutes on 2 cores)
#   bash benches/run.sh --quick    smoke test with small sizes
#   bash benches/run.sh --systems rebeam,mp
#   bash benches/run.sh --only boc  rebeam.boc vs bocpy only (other rows of latest.json kept)
#
# Sets up .bench-venv (Python 3.11) beside the repo's .venv: the locally built rebeam wheel,
# numpy, pykka, bocpy 0.14, and ray (best effort, with a time limit). A peer that cannot be
# installed is skipped with a note in the table, never a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.bench-venv
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

PYTHON=${BENCH_PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || { echo "run.sh: need $PYTHON on PATH (or set BENCH_PYTHON)" >&2; exit 1; }

# 1. The rebeam wheel: built by ./bootstrap.sh into build/dist.
wheel=$(ls -t build/dist/rebeam-*.whl 2>/dev/null | head -1)
if [[ -z "$wheel" ]]; then
  say "no rebeam wheel in build/dist: building it (./bootstrap.sh --no-example)"
  timeout 1800 ./bootstrap.sh --no-example || { echo "run.sh: building rebeam failed" >&2; exit 1; }
  wheel=$(ls -t build/dist/rebeam-*.whl 2>/dev/null | head -1)
  [[ -n "$wheel" ]] || { echo "run.sh: bootstrap.sh produced no wheel in build/dist" >&2; exit 1; }
fi

# 2. The bench venv.
if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV with $PYTHON"
  timeout 120 "$PYTHON" -m venv "$VENV" || { echo "run.sh: cannot create $VENV" >&2; exit 1; }
  timeout 300 "$VENV/bin/python" -m pip install --quiet --upgrade pip || true
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# rebeam: reinstall whenever the wheel changed (the runtime is being worked on).
stamp=$VENV/.rebeam-wheel
sig="$wheel $(stat -c %Y-%s "$wheel")"
if [[ ! -x $VENV/bin/rebeam || "$(cat "$stamp" 2>/dev/null)" != "$sig" ]]; then
  say "installing $(basename "$wheel") into the bench venv"
  timeout 300 "${PIP[@]}" install --quiet --force-reinstall "$wheel" \
    || { echo "run.sh: cannot install $wheel" >&2; exit 1; }
  echo "$sig" >"$stamp"
fi

# Peers: best effort. A failure leaves a note for bench.py (BENCH_SKIP_<NAME>) and goes on.
install_peer() {  # name, time limit (s), pip args...
  local name=$1 limit=$2; shift 2
  local mod=$name
  if "$VENV/bin/python" -c "import $mod" 2>/dev/null; then return 0; fi
  say "installing $name (time limit ${limit}s)"
  local log=$VENV/.install-$name.log
  timeout "$limit" "${PIP[@]}" install --quiet "$@" >"$log" 2>&1
  local rc=$?
  if (( rc == 0 )) && "$VENV/bin/python" -c "import $mod" 2>/dev/null; then return 0; fi
  local why
  if (( rc == 124 )); then why="pip install $* did not finish within ${limit}s"
  elif (( rc == 0 )); then
    why="installed, but \`import $mod\` fails: $("$VENV/bin/python" -c "import $mod" 2>&1 | tail -1 | cut -c1-160)"
  else why="pip install $* failed (exit $rc): $(grep -m1 -iE 'error' "$log" | cut -c1-160)"; fi
  echo "run.sh: $name unavailable: $why" >&2
  export "BENCH_SKIP_${name^^}=$why"
}
if ! "$VENV/bin/python" -c "import numpy" 2>/dev/null; then
  timeout 300 "${PIP[@]}" install --quiet numpy || echo "run.sh: numpy not installed (not needed by the workloads)" >&2
fi
install_peer pykka 300 pykka
install_peer bocpy 300 "bocpy==0.14.0"
install_peer ray "${BENCH_RAY_INSTALL_LIMIT:-420}" ray

# Zenoh's own query/reply floor, for row 20 beside the cross-node call (bench.py skips the row
# without it).
timeout 1800 cargo build --release --locked --quiet -p rebeam-node --bin rebeam-zenoh-floor \
  || echo "run.sh: rebeam-zenoh-floor not built; row 20 will say so" >&2

# 3. The benchmark itself (every workload has its own time limit inside).
say "running benches/bench.py"
timeout 900 "$VENV/bin/python" benches/bench.py "$@"
rc=$?
(( rc == 124 )) && echo "run.sh: bench.py exceeded 15 minutes and was stopped" >&2
exit $rc
