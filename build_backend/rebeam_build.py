"""rebeam's build backend: maturin's, with the governor binary built first.

A rebeam wheel holds two Rust artifacts: the native module ``rebeam._rebeam`` (a PyO3 extension,
which maturin builds) and the ``rebeam`` command, the governor (a pure-Rust program that never
links libpython). maturin builds one of them per wheel (its issue #368), so this backend, named in
``pyproject.toml`` (``backend-path``), builds the governor with cargo and puts it in the wheel's
``scripts`` data directory, which pip installs beside the environment's ``python``; then it hands
over to maturin. So ``pip install .``, ``pip wheel .``, an sdist and ``./bootstrap.sh`` all build
the same way, and a wheel never carries a governor left over from an earlier build.

Cargo.lock is honoured (``--locked``) when it is present, as it is in a clone and an sdist: the
crates built are the ones tested.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import maturin
from maturin import (  # noqa: F401  (re-exported PEP 517 hooks)
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
)

# maturin's hooks run the `maturin` program by name. A build without isolation from a virtualenv
# that is not activated (`.venv/bin/pip wheel --no-build-isolation .`) has it in this
# interpreter's scripts directory but not on PATH: put it there.
_SCRIPTS = sysconfig.get_path("scripts")
if shutil.which("maturin") is None and os.path.exists(os.path.join(_SCRIPTS, "maturin")):
    os.environ["PATH"] = _SCRIPTS + os.pathsep + os.environ.get("PATH", "")

#: Where pyproject.toml's ``[tool.maturin] data`` points: ``scripts/`` in it lands on PATH.
WHEEL_DATA = Path("build") / "wheel-data"
#: The crate of the ``rebeam`` command.
CLI_CRATE = "rebeam-cli"


def _say(message: str) -> None:
    print(f"rebeam build: {message}", file=sys.stderr, flush=True)


def _cargo() -> str:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise SystemExit(
            "rebeam build: building rebeam from source needs a Rust toolchain (cargo) on PATH; "
            "install one from https://rustup.rs, or install a prebuilt rebeam wheel"
        )
    return cargo


def _locked() -> list[str]:
    return ["--locked"] if Path("Cargo.lock").exists() else []


def _target_dir(cargo: str) -> Path:
    # cargo knows where it builds (CARGO_TARGET_DIR, .cargo/config.toml, the workspace's target/).
    out = subprocess.run(
        [cargo, "metadata", "--format-version", "1", "--no-deps", *_locked()],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def _scripts_dir() -> Path:
    # maturin refuses to run at all (even to write metadata) while the data directory is missing.
    scripts = WHEEL_DATA / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    return scripts


def build_governor() -> Path:
    """Builds the ``rebeam`` command (release) and puts it where the wheel's data is taken from."""
    cargo = _cargo()
    _say(f"building the governor (cargo build --release -p {CLI_CRATE})")
    subprocess.run([cargo, "build", "--release", *_locked(), "-p", CLI_CRATE], check=True)
    binary = _target_dir(cargo) / "release" / "rebeam"
    dest = _scripts_dir() / "rebeam"
    # Copied to a temporary name and renamed, so a concurrent reader never sees half a binary.
    tmp = dest.with_suffix(".tmp")
    shutil.copy2(binary, tmp)
    os.replace(tmp, dest)
    return dest


def _with_locked(config_settings):
    # maturin reads its extra arguments from MATURIN_PEP517_ARGS unless the caller passed some.
    if _locked() and not (config_settings or {}).get("maturin.build-args") and "--locked" not in os.environ.get(
        "MATURIN_PEP517_ARGS", ""
    ):
        os.environ["MATURIN_PEP517_ARGS"] = (os.environ.get("MATURIN_PEP517_ARGS", "") + " --locked").strip()
    return config_settings


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _scripts_dir()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    _scripts_dir()
    return maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    build_governor()
    return maturin.build_wheel(wheel_directory, _with_locked(config_settings), metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    build_governor()
    return maturin.build_editable(wheel_directory, _with_locked(config_settings), metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    # The sdist carries the whole workspace (see [tool.maturin] include), not a governor binary:
    # it is built where the sdist is installed.
    _scripts_dir()
    return maturin.build_sdist(sdist_directory, config_settings)
