//! One Coffer process at a time on a TPM without a resource manager.
//!
//! swtpm and `/dev/tpm0` hold only three transient objects, and every Coffer operation
//! needs two (the primary and a sealed object), so concurrent processes would run out of
//! slots. An advisory lock per TPM in the user's runtime directory serialises them; the
//! kernel resource manager (`/dev/tpmrm0`) virtualises the slots and needs no lock.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use super::TpmError;

/// Held for as long as a [`super::Tpm`] connection lives; released when dropped.
pub struct ClientLock {
    _file: File,
}

fn needs_lock(tcti: &str) -> bool {
    !tcti.starts_with("device:/dev/tpmrm")
}

impl ClientLock {
    /// Waits (up to the busy timeout) until no other Coffer process uses the TPM at `tcti`.
    pub fn acquire(tcti: &str) -> Result<Option<ClientLock>, TpmError> {
        if !needs_lock(tcti) {
            return Ok(None);
        }
        let io = |e: std::io::Error| TpmError::Busy {
            tcti: tcti.to_owned(),
            reason: e.to_string(),
        };
        // A missing or unusable lock directory is not a busy TPM: say what is wrong.
        let dir = crate::runtime::runtime_dir().map_err(|e| TpmError::LockDirectory {
            reason: e.to_string(),
        })?;
        let path = dir.join(format!(
            "tpm-{}.lock",
            crate::runtime::short_hash(tcti.as_bytes())
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let timeout = crate::runtime::busy_timeout();
        let start = Instant::now();
        loop {
            // SAFETY: the fd belongs to `file`, which outlives this call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Some(ClientLock { _file: file }));
            }
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(error));
            }
            if start.elapsed() >= timeout {
                return Err(TpmError::Busy {
                    tcti: tcti.to_owned(),
                    reason: format!(
                        "another Coffer process kept it for more than {} ms",
                        timeout.as_millis()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
