//! `--python-user USER`: the hard boundary between the host and the Python of a run.
//!
//! The control socket tells its peers apart by ancestry (control.rs), which a same-user
//! program outside the run's process tree gets around by being somewhere else. Run the main
//! process and the workers as another user and the kernel tells them apart instead: their
//! SO_PEERCRED uid is not the governor's, so the control socket refuses them whatever their
//! ancestry, and they can neither signal, ptrace nor read the memory of the governor or of
//! `rebeam ctl`.
//!
//! It needs the right to change user (root, or CAP_SETUID and CAP_SETGID). The children drop
//! to USER's uid and primary gid, with no supplementary groups, before they exec Python (and
//! before PR_SET_PDEATHSIG, which a credential change would clear). The process socket then
//! lives apart from the owner-only runtime directory: in a directory of the governor's that
//! others may only traverse (0711, so no one can swap the socket), as a socket owned by USER
//! with mode 0600. The control socket stays where it was, owner-only.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::GovernorError;

/// The user the Python processes run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Capability bits in /proc/self/status's CapEff (linux/capability.h).
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

impl PythonUser {
    /// Looks `name` up in the user database and checks that we may become it.
    pub fn lookup(name: &str) -> Result<PythonUser, String> {
        let c = CString::new(name).map_err(|_| format!("--python-user {name:?}: a user name has no NUL byte"))?;
        // SAFETY: getpwnam returns a pointer into static storage or null; we copy out of it at
        // once, before any other call could overwrite it (start-up is single-threaded here).
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if pw.is_null() {
            return Err(format!("--python-user {name}: there is no such user on this machine (see /etc/passwd)"));
        }
        // SAFETY: pw is non-null and points to a valid passwd entry (see above).
        let (uid, gid, home) = unsafe {
            let home = std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned();
            ((*pw).pw_uid, (*pw).pw_gid, PathBuf::from(home))
        };
        if !may_change_user() {
            return Err(format!(
                "--python-user {name}: changing the Python processes' user needs rebeam to run as root or with \
                 CAP_SETUID and CAP_SETGID (this is uid {}); start it with sudo, or leave the option out",
                rustix::process::geteuid().as_raw()
            ));
        }
        Ok(PythonUser { name: name.to_string(), uid, gid, home })
    }
}

fn may_change_user() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    caps & (1 << CAP_SETUID) != 0 && caps & (1 << CAP_SETGID) != 0
}

/// Where the process socket goes: in the runtime directory, or (for another user) in a
/// directory of its own that this run removes at exit. Returns (socket, directory to remove).
pub fn process_socket_path(
    runtime: &Path,
    user: Option<&PythonUser>,
) -> Result<(PathBuf, Option<PathBuf>), GovernorError> {
    use std::os::unix::fs::DirBuilderExt;
    let pid = std::process::id();
    let Some(_) = user else {
        return Ok((runtime.join(format!("run-{pid}.sock")), None));
    };
    let dir = std::env::temp_dir().join(format!("rebeam-py-{pid}-{}", &crate::process::random_token()[..12]));
    // `create`, not `create_all`: a directory someone made there first is not ours to use.
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&dir)
        .map_err(|source| GovernorError::RuntimeDir { path: dir.clone(), source })?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))
        .map_err(|source| GovernorError::RuntimeDir { path: dir.clone(), source })?;
    Ok((dir.join("run.sock"), Some(dir)))
}

/// Hands the bound process socket to `user`: theirs, 0600.
pub fn give_socket(path: &Path, user: &PythonUser) -> Result<(), GovernorError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| GovernorError::Listen { path: path.to_path_buf(), source };
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)
}

/// Removes the process socket's own directory when the run ends, however it ends.
pub struct RemoveOnDrop(pub Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
