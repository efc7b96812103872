//! Per-user runtime state: the private runtime directory (agent sockets, TPM client
//! locks) and how long to wait for another Coffer process.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A missing `$XDG_RUNTIME_DIR` (a `su` or `sudo` session, a container, a cron job) is
/// created 0700 when the directory above it is the user's own; otherwise the error says
/// which directory is missing, rather than surfacing later as a busy TPM.
fn ensure_base(base: &Path, uid: u32) -> io::Result<()> {
    if base.is_dir() {
        return Ok(());
    }
    let parent_is_ours = base
        .parent()
        .and_then(|p| fs::metadata(p).ok())
        .is_some_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o022 == 0);
    if parent_is_ours {
        match DirBuilder::new().mode(0o700).create(base) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(_) => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "XDG_RUNTIME_DIR is {}, which does not exist (and its parent is not yours to create it in); create it (mkdir -m 700), point XDG_RUNTIME_DIR at your runtime directory, or unset it",
            base.display()
        ),
    ))
}

/// The user's private runtime directory for Coffer: `$XDG_RUNTIME_DIR/coffer`, else
/// `/tmp/coffer-UID`. Created 0700; refused if someone else owns it or others can enter it.
pub fn runtime_dir() -> io::Result<PathBuf> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(base) => {
            let base = PathBuf::from(base);
            ensure_base(&base, uid)?;
            base.join("coffer")
        }
        None => std::env::temp_dir().join(format!("coffer-{uid}")),
    };
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot create Coffer's runtime directory {}: {e}",
                    dir.display()
                ),
            ))
        }
    }
    let meta = fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory owned by you; remove it and try again",
                dir.display()
            ),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// How long to wait for another Coffer process (a vault writer, a TPM user), from
/// `COFFER_BUSY_TIMEOUT_MS` when set.
pub fn busy_timeout() -> std::time::Duration {
    std::env::var("COFFER_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(DEFAULT_BUSY_TIMEOUT)
}

/// The default of [`busy_timeout`].
pub const DEFAULT_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A short stable name for a path or string, for file names in the runtime directory.
pub fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses a directory that is not the user's own or that other users can write.
pub fn check_private_dir(dir: &Path, what: &str) -> io::Result<()> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {} is not a directory", dir.display()),
        ));
    }
    if meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what} {} belongs to uid {}, not to you; use a directory of your own",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what} {} can be written by other users (mode {:o}); run chmod go-w on it",
                dir.display(),
                meta.permissions().mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The socket of the agent for one vault file: one agent per vault, named by a hash of
/// the vault's absolute path. `COFFER_AGENT_SOCKET` overrides it (for example for a
/// socket forwarded into a container).
pub fn socket_path(vault: &Path) -> io::Result<PathBuf> {
    if let Some(socket) = std::env::var_os("COFFER_AGENT_SOCKET").filter(|s| !s.is_empty()) {
        let socket = PathBuf::from(socket);
        // The same rule as the default directory: a socket in a directory others can
        // write could be replaced by theirs.
        if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
            check_private_dir(dir, "COFFER_AGENT_SOCKET's directory")?;
        }
        return Ok(socket);
    }
    let absolute = if vault.is_absolute() {
        vault.to_path_buf()
    } else {
        std::env::current_dir()?.join(vault)
    };
    let canonical = absolute.canonicalize().unwrap_or(absolute);
    let name = short_hash(canonical.as_os_str().as_encoded_bytes());
    Ok(runtime_dir()?.join(format!("agent-{name}.sock")))
}
