"""`pip install .` and an sdist build the governor and install a working `rebeam` command.

Each test copies the source tree as a clone has it (tracked and new files, nothing ignored: no
build/, target/ or .venv), installs it into a new virtualenv with no network (`--no-index`: maturin
and cloudpickle come from the wheels ./bootstrap.sh keeps in build/wheelhouse), and runs the
quickstart example with the installed command. The cargo target directory is the repository's
own, so the crates compiled for the suite are reused (a cold release build takes minutes); what is
built and packed is the copied tree's, through the build backend, exactly as for a user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "build" / "wheelhouse"
BUILD_TIMEOUT = 1800  # a cold release build on a busy 2-core machine


def interpreter(version: str) -> str | None:
    """`python3.X` on PATH, else pyenv's (pyenv shims only answer for the selected versions)."""
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
        return found
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    return candidates[-1] if candidates else None


def source_tree(dest: Path) -> Path:
    """The tree a fresh clone of the working tree would have (uncommitted edits included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is gone from the clone too
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def offline_pip(python: str, *args: str, cwd: Path | None = None) -> None:
    if not any(WHEELHOUSE.glob("maturin-*.whl")):
        pytest.fail(f"no maturin wheel in {WHEELHOUSE}: run ./bootstrap.sh, which keeps one there")
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    r = subprocess.run(
        [python, "-m", "pip", *args, "--no-index", "--find-links", str(WHEELHOUSE)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )
    assert r.returncode == 0, f"pip {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def new_venv(python: str, where: Path) -> Path:
    subprocess.run([python, "-m", "venv", str(where)], check=True, timeout=120)
    return where / "bin"


def runs_quickstart(bin_dir: Path) -> None:
    rebeam = bin_dir / "rebeam"
    assert rebeam.exists(), f"pip installed no rebeam command into {bin_dir}"
    # Outside the source tree, so the installed package is the one imported.
    r = subprocess.run(
        [str(rebeam), "--workers", "2", "main.py"], cwd=ROOT / "examples" / "quickstart",
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "REBEAM_PYTHON")},
    )
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "summary: {'records': 4, 'mean': 25.82}" in r.stdout, r.stdout
    # The workers ran on the virtualenv's interpreter, which has the package pip installed.
    assert f"using {bin_dir / 'python'}" in r.stderr, r.stderr


def governor_links_no_libpython(rebeam: Path) -> None:
    if shutil.which("ldd") is None:
        return
    libs = subprocess.run(["ldd", str(rebeam)], capture_output=True, text=True).stdout
    assert "libpython" not in libs, f"the governor links libpython:\n{libs}"


@pytest.mark.timeout(BUILD_TIMEOUT + 300)
def test_pip_install_of_a_fresh_clone(tmp_path):
    tree = source_tree(tmp_path / "clone")
    bin_dir = new_venv(sys.executable, tmp_path / "venv")
    offline_pip(str(bin_dir / "python"), "install", str(tree))
    runs_quickstart(bin_dir)
    governor_links_no_libpython(bin_dir / "rebeam")
    assert not (tree / "build" / "dist").exists(), "pip install must not need bootstrap's wheel"


@pytest.mark.timeout(BUILD_TIMEOUT + 600)
def test_the_sdist_builds_a_wheel_that_runs_on_each_python(tmp_path):
    tree = source_tree(tmp_path / "clone")
    sdist_dir = tmp_path / "sdist"
    # The PEP 517 hook a frontend (python -m build --sdist) calls, run in the tree.
    subprocess.run(
        [sys.executable, "-c", "import sys, rebeam_build; rebeam_build.build_sdist(sys.argv[1])", str(sdist_dir)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree / "build_backend")},
        check=True, capture_output=True, timeout=300,
    )
    (sdist,) = sdist_dir.glob("rebeam-*.tar.gz")
    wheels = tmp_path / "wheels"
    offline_pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(sdist))
    (wheel,) = wheels.glob("rebeam-*.whl")
    tried = []
    for version in ("3.11", "3.12", "3.13"):
        python = interpreter(version)
        if python is None:
            continue
        bin_dir = new_venv(python, tmp_path / f"venv{version}")
        offline_pip(str(bin_dir / "python"), "install", str(wheel))
        runs_quickstart(bin_dir)
        tried.append(version)
    assert "3.11" in tried, f"no CPython 3.11 found to install the wheel with (tried {tried})"
