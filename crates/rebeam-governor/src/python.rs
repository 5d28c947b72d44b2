//! Which Python runs the user's code.

use std::path::{Path, PathBuf};

/// Finds the interpreter, in the order the user most likely means it:
/// `--python`, `REBEAM_PYTHON`, the active virtualenv, the `python` installed beside this
/// `rebeam` binary (the environment rebeam was installed into), `./.venv`, then `python3`.
pub fn find_python(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(rebeam_proto::env::PYTHON).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|p| !p.is_empty()) {
        let p = Path::new(&venv).join("bin/python");
        if p.exists() {
            return p;
        }
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        for name in ["python", "python3"] {
            let p = dir.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    let local = Path::new(".venv/bin/python");
    if local.exists() {
        return local.canonicalize().unwrap_or_else(|_| local.to_path_buf());
    }
    PathBuf::from("python3")
}
