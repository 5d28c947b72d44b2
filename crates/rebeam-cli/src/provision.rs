//! The environment a script declares: its PEP 723 block, else its project's dependencies,
//! installed with uv into a cached environment that the main process and every worker use.
//!
//! The rules:
//! - A script's `# /// script` block (PEP 723) declares its `dependencies`; a script without one
//!   uses the nearest `pyproject.toml` above it that has a `[project]` table, and its
//!   `[project] dependencies`. Nothing declared: nothing to do.
//! - When the interpreter rebeam would use already satisfies what is declared (uv checks,
//!   offline), it is used as it is: a project's own virtualenv is not copied.
//! - Otherwise the requirements go into an environment under the cache directory
//!   (`REBEAM_CACHE_DIR`, else `$XDG_CACHE_HOME/rebeam`, else `~/.cache/rebeam`), named by a hash
//!   of the requirements, the base interpreter and this rebeam's version. It is built once (uv's
//!   progress shows), then reused with no network. rebeam itself reaches that environment
//!   through a `.pth` file naming a directory of links to the rebeam and cloudpickle packages
//!   of the base interpreter (after site-packages, so a version the script asks for wins).
//! - uv is found beside this `rebeam` (pip installs it with rebeam), else on PATH. uv's own
//!   configuration (indexes, `UV_FIND_LINKS`, `UV_OFFLINE`) applies.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// Where a script's requirements were declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The script's own `# /// script` block.
    Inline,
    /// A project's `pyproject.toml`.
    Project(PathBuf),
}

/// A script's declared requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub source: Source,
    pub requirements: Vec<String>,
}

impl Declared {
    /// Where they come from, for messages.
    pub fn origin(&self, script: &Path) -> String {
        match &self.source {
            Source::Inline => format!("the `# /// script` block of {}", script.display()),
            Source::Project(p) => format!("the [project] dependencies of {}", p.display()),
        }
    }
}

/// The PEP 723 `script` block of `source`, as TOML text. Follows the specification's reference
/// regular expression: `# /// script`, then lines that are `#` or start with `# `, then `# ///`.
pub fn inline_block(source: &str) -> Result<Option<String>, String> {
    let mut lines = source.lines();
    let mut found: Option<String> = None;
    while let Some(line) = lines.next() {
        if line.trim_end() != "# /// script" {
            continue;
        }
        if found.is_some() {
            return Err("it has two `# /// script` blocks (PEP 723 allows one)".into());
        }
        let mut body = Vec::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line.trim_end() == "# ///" {
                closed = true;
                break;
            }
            match line.strip_prefix("# ").or_else(|| (line.trim_end() == "#").then_some("")) {
                Some(content) => body.push(content),
                None => break,
            }
        }
        if !closed {
            return Err("its `# /// script` block has no closing `# ///` line".into());
        }
        found = Some(body.join("\n"));
    }
    Ok(found)
}

fn dependencies(table: &toml::Table, what: &str) -> Result<Vec<String>, String> {
    match table.get("dependencies") {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{what}: dependencies must be strings")))
            .collect(),
        Some(_) => Err(format!("{what}: dependencies must be a list of strings")),
    }
}

/// What `script` declares, if anything.
pub fn declared(script: &Path) -> Result<Option<Declared>, String> {
    let source = std::fs::read_to_string(script).map_err(|e| format!("cannot read {}: {e}", script.display()))?;
    let bad = |e: String| format!("{}: {e}", script.display());
    if let Some(block) = inline_block(&source).map_err(bad)? {
        let table: toml::Table =
            block.parse().map_err(|e| format!("{}: its `# /// script` block: {e}", script.display()))?;
        let requirements = dependencies(&table, &format!("{} (# /// script)", script.display()))?;
        return Ok(Some(Declared { source: Source::Inline, requirements }).filter(|d| !d.requirements.is_empty()));
    }
    let mut dir = script.parent();
    while let Some(d) = dir {
        let candidate = d.join("pyproject.toml");
        if let Ok(text) = std::fs::read_to_string(&candidate) {
            let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", candidate.display()))?;
            if let Some(toml::Value::Table(project)) = table.get("project") {
                let requirements = dependencies(project, &candidate.display().to_string())?;
                let found = Declared { source: Source::Project(candidate), requirements };
                return Ok(Some(found).filter(|d| !d.requirements.is_empty()));
            }
        }
        dir = d.parent();
    }
    Ok(None)
}

/// The `uv` program: beside this `rebeam`, else on PATH.
pub fn find_uv() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("uv")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|d| d.join("uv"))
        .find(|p| p.is_file())
}

fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var(rebeam_proto::env::CACHE_DIR)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("rebeam")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("rebeam")))
}

/// The name of the environment for these requirements on this base interpreter.
pub fn env_key(requirements: &[String], base: &Path) -> String {
    let mut sorted: Vec<&str> = requirements.iter().map(|r| r.trim()).collect();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    for part in [env!("CARGO_PKG_VERSION"), &base.display().to_string()].into_iter().chain(sorted) {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// What changes when packages are installed into a virtualenv's interpreter: its site-packages
/// directories' modification times (None for an interpreter that is not a virtualenv's).
fn installed_stamp(python: &Path) -> Option<String> {
    let prefix = python.parent()?.parent()?;
    if !prefix.join("pyvenv.cfg").is_file() {
        return None;
    }
    let mut stamps = Vec::new();
    for entry in std::fs::read_dir(prefix.join("lib")).ok()?.flatten() {
        let site = entry.path().join("site-packages");
        let modified = std::fs::metadata(&site).and_then(|m| m.modified()).ok()?;
        let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
        stamps.push(format!("{} {}", site.display(), since.as_nanos()));
    }
    stamps.sort();
    Some(stamps.join("\n"))
}

/// Whether `python` already has everything `requirements` asks for (uv, offline, no changes).
/// A yes is remembered until the interpreter's packages change, so that a project's own
/// virtualenv costs one stat per run, not a uv run.
fn satisfied(uv: &Path, python: &Path, requirements: &[String], cache: Option<&Path>) -> bool {
    let remembered = cache
        .zip(installed_stamp(python))
        .map(|(dir, stamp)| (dir.join("satisfied").join(env_key(requirements, python)), stamp));
    if let Some((file, stamp)) = &remembered {
        if std::fs::read_to_string(file).is_ok_and(|s| &s == stamp) {
            return true;
        }
    }
    let yes = satisfied_now(uv, python, requirements);
    if let (true, Some((file, stamp))) = (yes, &remembered) {
        // Only a cache: a failure to write it costs a uv run next time, nothing else.
        let _ = file.parent().map(std::fs::create_dir_all);
        let _ = std::fs::write(file, stamp);
    }
    yes
}

fn satisfied_now(uv: &Path, python: &Path, requirements: &[String]) -> bool {
    let out = Command::new(uv)
        .args(["pip", "install", "--dry-run", "--offline", "--python"])
        .arg(python)
        .args(requirements)
        .stdin(Stdio::null())
        .output();
    matches!(out, Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Would make no changes"))
}

fn python_says(python: &Path, code: &str) -> Result<String, String> {
    let out = Command::new(python)
        .args(["-I", "-c", code])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", python.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The packages rebeam needs in every environment, as the base interpreter has them.
const RUNTIME_PACKAGES: [&str; 2] = ["rebeam", "cloudpickle"];

/// Makes `env` see rebeam: a directory of links to the base interpreter's rebeam packages,
/// named by a `.pth` file in the environment's site-packages. `env` is built where it is and
/// then moved to `final_env`, so the `.pth` file names the links' final place.
fn link_runtime(base: &Path, env: &Path, final_env: &Path) -> Result<(), String> {
    let code = format!(
        "import importlib, os\nfor n in {RUNTIME_PACKAGES:?}:\n    print(os.path.dirname(importlib.import_module(n).__file__))"
    );
    let dirs = python_says(base, &code)
        .map_err(|e| format!("the interpreter {} cannot import rebeam ({e})", base.display()))?;
    let links = env.join("rebeam-runtime");
    std::fs::create_dir_all(&links).map_err(|e| format!("cannot create {}: {e}", links.display()))?;
    for (name, dir) in RUNTIME_PACKAGES.iter().zip(dirs.lines()) {
        std::os::unix::fs::symlink(dir, links.join(name))
            .map_err(|e| format!("cannot link {} into {}: {e}", dir, links.display()))?;
    }
    let site = python_says(&env.join("bin/python"), "import sysconfig; print(sysconfig.get_paths()['purelib'])")?;
    let pth = Path::new(&site).join("_rebeam_runtime.pth");
    let mut f = std::fs::File::create(&pth).map_err(|e| format!("cannot write {}: {e}", pth.display()))?;
    let links = final_env.join("rebeam-runtime");
    writeln!(f, "{}", links.display()).map_err(|e| format!("cannot write {}: {e}", pth.display()))
}

fn uv_run(mut cmd: Command, what: &str) -> Result<(), String> {
    let status = cmd.stdin(Stdio::null()).status().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("uv could not {what} (its message is above)"))
    }
}

/// The interpreter to run `script` with: `base` itself, or the cached environment's.
pub fn interpreter_for(script: &Path, base: &Path) -> Result<PathBuf, String> {
    let Some(declared) = declared(script)? else {
        return Ok(base.to_path_buf());
    };
    let origin = declared.origin(script);
    let list = declared.requirements.join(", ");
    let Some(uv) = find_uv() else {
        return Err(format!(
            "{origin} asks for {list}, and installing them needs uv, which is not installed: `pip install uv`, \
             or pass --no-env to run with {} as it is",
            base.display()
        ));
    };
    let cache = cache_dir();
    if satisfied(&uv, base, &declared.requirements, cache.as_deref()) {
        tracing::debug!("{} already has what {origin} asks for ({list})", base.display());
        return Ok(base.to_path_buf());
    }
    let root = cache.ok_or("no cache directory: set REBEAM_CACHE_DIR (or HOME)")?.join("envs");
    let env = root.join(env_key(&declared.requirements, base));
    let python = env.join("bin/python");
    let done = env.join(".rebeam-complete");
    if done.exists() {
        tracing::debug!("using the environment {} for {origin}", env.display());
        return Ok(python);
    }
    tracing::info!("installing {list} ({origin}) into {} with uv", env.display());
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    // Built beside its final place and renamed into it, so an interrupted build is never used.
    let building = root.join(format!(".building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let result = (|| {
        let mut make = Command::new(&uv);
        make.args(["venv", "--quiet", "--python"]).arg(base).arg(&building);
        uv_run(make, "create a virtualenv")?;
        let mut install = Command::new(&uv);
        install.args(["pip", "install", "--python"]).arg(building.join("bin/python")).args(&declared.requirements);
        uv_run(install, &format!("install {list} (from {origin})"))?;
        link_runtime(base, &building, &env)?;
        std::fs::write(building.join(".rebeam-complete"), format!("{list}\n")).map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    match std::fs::rename(&building, &env) {
        Ok(()) => Ok(python),
        // Another run built the same environment meanwhile: use theirs.
        Err(_) if done.exists() => {
            let _ = std::fs::remove_dir_all(&building);
            Ok(python)
        }
        Err(e) => Err(format!("cannot move the new environment to {}: {e}", env.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_inline_block() {
        let src = "#!/usr/bin/env python\n# /// script\n# requires-python = \">=3.11\"\n# dependencies = [\n#   \"tabulate\",\n# ]\n#\n# ///\nprint(1)\n";
        let block = inline_block(src).unwrap().unwrap();
        let table: toml::Table = block.parse().unwrap();
        assert_eq!(dependencies(&table, "t").unwrap(), vec!["tabulate".to_owned()]);
    }

    #[test]
    fn refuses_two_blocks_and_an_unclosed_one() {
        assert!(inline_block("# /// script\n# ///\n# /// script\n# ///\n").is_err());
        assert!(inline_block("# /// script\n# dependencies = []\nprint(1)\n").is_err());
        assert_eq!(inline_block("print('no block')\n").unwrap(), None);
    }

    #[test]
    fn the_key_ignores_order_but_not_content() {
        let base = Path::new("/usr/bin/python3");
        let a = env_key(&["a".into(), "b>=1".into()], base);
        assert_eq!(a, env_key(&["b>=1".into(), " a".into()], base));
        assert_ne!(a, env_key(&["a".into(), "b>=2".into()], base));
        assert_ne!(a, env_key(&["a".into(), "b>=1".into()], Path::new("/other/python")));
    }

    #[test]
    fn finds_the_nearest_project_with_dependencies() {
        let dir = std::env::temp_dir().join(format!("rebeam-provision-{}", std::process::id()));
        let sub = dir.join("app/src");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(dir.join("pyproject.toml"), "[project]\nname='x'\ndependencies=['tabulate>=0.9']\n").unwrap();
        std::fs::write(dir.join("app/pyproject.toml"), "[tool.other]\nx=1\n").unwrap(); // no [project]: skipped
        std::fs::write(sub.join("main.py"), "print(1)\n").unwrap();
        let found = declared(&sub.join("main.py")).unwrap().unwrap();
        assert_eq!(found.source, Source::Project(dir.join("pyproject.toml")));
        assert_eq!(found.requirements, vec!["tabulate>=0.9".to_owned()]);
        std::fs::write(sub.join("inline.py"), "# /// script\n# dependencies = ['rich']\n# ///\n").unwrap();
        assert_eq!(declared(&sub.join("inline.py")).unwrap().unwrap().source, Source::Inline);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
