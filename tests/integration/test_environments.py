"""`rebeam main.py` installs what the script declares (PEP 723, else pyproject.toml) with uv.

No network: each test builds a tiny wheel and points uv at its directory (UV_FIND_LINKS, with
UV_OFFLINE so nothing is fetched), and keeps environments in its own REBEAM_CACHE_DIR.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from helpers import check, run_rebeam

PROGRAM = """\
{header}
from rebeam import GenPy, Supervisor, call, receive, response_ok, shutdown


class Table(GenPy):
    name = "table"

    @receive("render")
    def render(self, source, message):
        import rebeamtinydep  # only the provisioned environment has it

        return response_ok(rebeamtinydep.render(message))


if __name__ == "__main__":
    Supervisor(modules=[Table()])
    import rebeamtinydep

    print("main:", rebeamtinydep.render([1, 2]))
    print("actor:", call("table", "render", [3, 4]))
    shutdown(0)
"""

INLINE = """\
# /// script
# dependencies = ["rebeamtinydep>=1.0"]
# ///"""


def tiny_wheel(dest: Path, name: str = "rebeamtinydep", version: str = "1.0") -> Path:
    """A pure-Python wheel, built by hand: the module, METADATA, WHEEL and RECORD."""
    dest.mkdir(parents=True, exist_ok=True)
    files = {
        f"{name}/__init__.py": "def render(items):\n    return ' | '.join(map(str, items))\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record_path = f"{name}-{version}.dist-info/RECORD"
    record.append(f"{record_path},,")
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(record_path, "\n".join(record) + "\n")
    return wheel


def offline_env(tmp_path: Path, wheels: Path) -> dict:
    return {
        "UV_FIND_LINKS": str(wheels),
        "UV_OFFLINE": "1",
        "UV_NO_CACHE": "1",
        "REBEAM_CACHE_DIR": str(tmp_path / "cache"),
    }


def test_an_inline_block_is_installed_once_and_reused(tmp_path):
    wheels = tmp_path / "wheels"
    tiny_wheel(wheels)
    env = offline_env(tmp_path, wheels)
    app = tmp_path / "app"
    app.mkdir()
    r = run_rebeam(app, PROGRAM.format(header=INLINE), env=env)
    check(r)
    assert "main: 1 | 2" in r.stdout and "actor: ('ok', '3 | 4')" in r.stdout, r.stdout
    assert "installing rebeamtinydep>=1.0" in r.stderr, r.stderr  # says what it does
    (env_dir,) = (tmp_path / "cache" / "envs").iterdir()
    assert (env_dir / ".rebeam-complete").exists()
    # Again, with the wheel gone: the cached environment is used as it is.
    (wheels / "rebeamtinydep-1.0-py3-none-any.whl").unlink()
    again = run_rebeam(app, PROGRAM.format(header=INLINE), env=env)
    check(again)
    assert "actor: ('ok', '3 | 4')" in again.stdout
    assert "installing" not in again.stderr, again.stderr


def test_a_project_s_dependencies_are_installed(tmp_path):
    wheels = tmp_path / "wheels"
    tiny_wheel(wheels)
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\ndependencies = ["rebeamtinydep"]\n'
    )
    r = run_rebeam(project / "src", PROGRAM.format(header=""), env=offline_env(tmp_path, wheels))
    check(r)
    assert "actor: ('ok', '3 | 4')" in r.stdout, r.stdout
    assert "pyproject.toml" in r.stderr, r.stderr


def test_a_requirement_that_cannot_be_found_is_named(tmp_path):
    wheels = tmp_path / "wheels"
    tiny_wheel(wheels)
    header = '# /// script\n# dependencies = ["rebeam-no-such-package==9"]\n# ///'
    r = run_rebeam(tmp_path, PROGRAM.format(header=header), env=offline_env(tmp_path, wheels))
    assert r.returncode == 2, r.stderr
    assert "rebeam-no-such-package" in r.stderr and "main.py" in r.stderr, r.stderr
    assert not list((tmp_path / "cache" / "envs").glob("*/bin")), "a failed build must leave no environment"


def test_no_env_runs_the_interpreter_as_it_is(tmp_path):
    r = run_rebeam(tmp_path, PROGRAM.format(header=INLINE), rebeam_args=("--no-env",),
                   env=offline_env(tmp_path, tmp_path / "nowheels"))
    assert r.returncode != 0
    assert "ModuleNotFoundError" in r.stderr and "rebeamtinydep" in r.stderr, r.stderr
    assert not (tmp_path / "cache").exists()


def test_a_malformed_block_is_refused_with_the_file_named(tmp_path):
    header = "# /// script\n# dependencies = ["
    r = run_rebeam(tmp_path, PROGRAM.format(header=header), env={"REBEAM_CACHE_DIR": str(tmp_path / "c")})
    assert r.returncode == 2, r.stderr
    assert "main.py" in r.stderr and "# /// script" in r.stderr, r.stderr
