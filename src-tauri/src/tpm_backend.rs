//! Which TPM the app uses: `COFFER_TCTI` if set, else the kernel's `/dev/tpmrm0` if this user
//! may open it, else a software TPM (`swtpm`) that the app starts itself on free loopback
//! ports, with its state kept under `$XDG_DATA_HOME/coffer/swtpm` so the vault opens again
//! at the next launch. The software TPM is killed when the app exits.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

const DEVICE: &str = "/dev/tpmrm0";
const START_TIMEOUT: Duration = Duration::from_secs(5);
const START_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TpmSource {
    /// `COFFER_TCTI` chose it.
    Environment,
    /// The kernel's resource-managed TPM device.
    Device,
    /// A software TPM started by the app.
    Software,
    /// None could be found or started.
    Missing,
}

/// The TPM the app talks to, and the software TPM process when the app started one.
pub struct TpmBackend {
    pub source: TpmSource,
    pub tcti: String,
    /// Why there is no TPM, when `source` is `Missing`.
    pub problem: Option<String>,
    child: Mutex<Option<Child>>,
}

impl TpmBackend {
    pub fn select(data_dir: &Path) -> TpmBackend {
        if let Some(tcti) = std::env::var(coffer_core::tpm::TCTI_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            return TpmBackend::fixed(TpmSource::Environment, tcti);
        }
        if OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE)
            .is_ok()
        {
            return TpmBackend::fixed(TpmSource::Device, format!("device:{DEVICE}"));
        }
        match start_swtpm(&data_dir.join("swtpm")) {
            Ok((child, port)) => TpmBackend {
                source: TpmSource::Software,
                tcti: format!("swtpm:host=127.0.0.1,port={port}"),
                problem: None,
                child: Mutex::new(Some(child)),
            },
            Err(problem) => TpmBackend {
                source: TpmSource::Missing,
                tcti: String::new(),
                problem: Some(problem),
                child: Mutex::new(None),
            },
        }
    }

    pub(crate) fn fixed(source: TpmSource, tcti: String) -> TpmBackend {
        TpmBackend {
            source,
            tcti,
            problem: None,
            child: Mutex::new(None),
        }
    }

    /// Stops the software TPM, if the app started one.
    pub fn shutdown(&self) {
        let child = self.child.lock().ok().and_then(|mut guard| guard.take());
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TpmBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `$XDG_DATA_HOME/coffer`, else `~/.local/share/coffer`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("coffer")
}

fn start_swtpm(state: &Path) -> Result<(Child, u16), String> {
    std::fs::create_dir_all(state).map_err(|e| {
        format!(
            "cannot create the software TPM's state directory {}: {e}",
            state.display()
        )
    })?;
    set_private(state);
    let mut last = String::from("no free port pair was found on 127.0.0.1");
    for _ in 0..START_ATTEMPTS {
        let Some(port) = free_port_pair() else {
            continue;
        };
        match spawn_on(state, port) {
            Ok(child) => return Ok((child, port)),
            Err(SpawnError::NotInstalled(e)) => {
                return Err(format!(
                    "no TPM device is available and the software TPM could not be started ({e}); \
                     install it with `sudo apt-get install swtpm swtpm-tools`, or set COFFER_TCTI"
                ))
            }
            Err(SpawnError::Exited(log)) => last = log,
        }
    }
    Err(format!("the software TPM did not start: {last}"))
}

fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

enum SpawnError {
    NotInstalled(std::io::Error),
    Exited(String),
}

fn spawn_on(state: &Path, port: u16) -> Result<Child, SpawnError> {
    let log_path = state.join("swtpm.log");
    let log = File::create(&log_path).map_err(|e| SpawnError::Exited(e.to_string()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| SpawnError::Exited(e.to_string()))?;
    let mut command = Command::new("swtpm");
    command
        .arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--flags")
        .arg("not-need-init,startup-clear")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill swtpm if the app dies
    // without running its exit handler (a crash, or a test driver's SIGKILL).
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(SpawnError::NotInstalled)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(SpawnError::Exited(format!(
                "swtpm exited ({status}): {}",
                log.trim()
            )));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SpawnError::Exited(
                "swtpm did not listen within 5 seconds".to_owned(),
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A port P on 127.0.0.1 such that P and P+1 are both free right now.
fn free_port_pair() -> Option<u16> {
    for _ in 0..20 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
        let port = first.local_addr().ok()?.port();
        if port == u16::MAX {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_pairs_are_free() {
        let port = free_port_pair().unwrap();
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok());
    }
}
