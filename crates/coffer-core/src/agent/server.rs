//! The agent's side of the socket.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::BootInstant;

use serde::{Deserialize, Serialize};

use super::client::AgentError;
use super::{frame, peer};
use crate::model::Timestamp;
use crate::service::{self, Request, Response};
use crate::vault::audit::Actor;
use crate::vault::rotation::{drive_rotation, VaultAccess};
use crate::vault::{Error, Vault};

/// What the agent answers: a response, or an error as one sentence and a code.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Response),
    Error { code: String, message: String },
}

/// The vault an agent serves: `None` or a locked vault means "locked".
pub type SharedVault = Arc<Mutex<Option<Vault>>>;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Lock after this long without a request.
    pub idle_lock: Option<Duration>,
    /// Stop serving (and remove the socket) once the vault is locked: what a headless
    /// agent does. An app keeps serving and answers "locked" until unlocked again.
    pub exit_when_locked: bool,
}

pub struct AgentServer {
    listener: UnixListener,
    path: PathBuf,
    inode: u64,
    vault: SharedVault,
    stopping: Arc<AtomicBool>,
}

fn lock_shared(vault: &SharedVault) -> MutexGuard<'_, Option<Vault>> {
    // A panic while holding the lock must not leave the keys reachable or the agent
    // wedged: take the guard anyway, the vault's own state is transaction-consistent.
    vault
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AgentServer {
    /// Binds the socket for `vault_path`. A socket left by a dead agent is removed; a
    /// live agent for the same vault is an error.
    pub fn bind(vault_path: &Path, vault: SharedVault) -> Result<AgentServer, AgentError> {
        let path = super::socket_path(vault_path).map_err(AgentError::Io)?;
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(AgentError::Io(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket; remove it", path.display()),
                )));
            }
            if UnixStream::connect(&path).is_ok() {
                return Err(AgentError::AlreadyRunning { socket: path });
            }
            std::fs::remove_file(&path).map_err(AgentError::Io)?;
        }
        let listener = UnixListener::bind(&path).map_err(AgentError::Io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(AgentError::Io)?;
        let inode = std::fs::metadata(&path).map_err(AgentError::Io)?.ino();
        Ok(AgentServer {
            listener,
            path,
            inode,
            vault,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// Serves until the vault is locked (with `exit_when_locked`) or forever.
    pub fn serve(self, options: ServeOptions) -> io::Result<()> {
        // The boot clock counts suspend, so a laptop closed past the idle timeout is
        // locked when it wakes, not idle-timeout later.
        let started = BootInstant::now();
        let last_activity = Arc::new(AtomicU64::new(0));
        if let Some(idle) = options.idle_lock {
            let vault = Arc::clone(&self.vault);
            let last = Arc::clone(&last_activity);
            let stopping = Arc::clone(&self.stopping);
            let exit = options.exit_when_locked;
            let path = self.path.clone();
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(200).min(idle));
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let idle_for = started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last.load(Ordering::SeqCst)));
                if idle_for >= idle {
                    if let Some(vault) = lock_shared(&vault).as_mut() {
                        let _ = vault.lock();
                    }
                    if exit {
                        stopping.store(true, Ordering::SeqCst);
                        // Wake the accept loop so it sees the flag.
                        let _ = UnixStream::connect(&path);
                        return;
                    }
                    last.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                }
            });
        }
        for stream in self.listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            last_activity.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
            let vault = Arc::clone(&self.vault);
            let last = Arc::clone(&last_activity);
            let stopping = Arc::clone(&self.stopping);
            let exit = options.exit_when_locked;
            let path = self.path.clone();
            std::thread::spawn(move || {
                let _ = handle_connection(stream, &vault, &last, started);
                let locked = lock_shared(&vault)
                    .as_ref()
                    .is_none_or(|v| !v.is_unlocked());
                if exit && locked {
                    stopping.store(true, Ordering::SeqCst);
                    let _ = UnixStream::connect(&path);
                }
            });
        }
        Ok(())
    }
}

fn handle_connection(
    mut stream: UnixStream,
    vault: &SharedVault,
    last_activity: &AtomicU64,
    started: BootInstant,
) -> io::Result<()> {
    let peer = peer::credentials(&stream)?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::getuid() };
    if peer.uid != own_uid {
        let reply = Reply::Error {
            code: "forbidden".to_owned(),
            message: format!(
                "this Coffer agent serves only uid {own_uid}; uid {} was refused",
                peer.uid
            ),
        };
        if let Some(v) = lock_shared(vault).as_mut() {
            let _ = v.record_refused_client(peer.actor());
        }
        return frame::write(&mut stream, &reply);
    }
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let actor = peer.actor();
    while let Some(request) = frame::read::<Request>(&mut stream)? {
        last_activity.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
        if let Request::RotateSecret { name, stop_after } = &request {
            // A rotator may take up to its step timeout: the vault is taken for each
            // piece of the rotation only, so the app and other clients go on meanwhile.
            let mut turns = ClientTurns {
                vault,
                actor: actor.clone(),
            };
            let reply = match drive_rotation(&mut turns, name, *stop_after, Timestamp::now()) {
                Ok(outcome) => Reply::Ok(Response::Rotated(outcome)),
                Err(error) => Reply::Error {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                },
            };
            frame::write(&mut stream, &reply)?;
            last_activity.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
            continue;
        }
        let reply = {
            let mut guard = lock_shared(vault);
            match guard.as_mut().filter(|v| v.is_unlocked()) {
                None => Reply::Error {
                    code: "locked".to_owned(),
                    message: "the agent's vault is locked; unlock it in the Coffer app or with `coffer unlock`"
                        .to_owned(),
                },
                Some(v) => {
                    // Name the client in the audit log for this request only: the vault
                    // may belong to an app whose own actions must stay its own.
                    let own = v.set_actor(actor.clone());
                    let reply = match service::execute(v, request) {
                        Ok(response) => Reply::Ok(response),
                        Err(error) => Reply::Error {
                            code: error.code().to_owned(),
                            message: error.to_string(),
                        },
                    };
                    v.set_actor(own);
                    reply
                }
            }
        };
        frame::write(&mut stream, &reply)?;
        last_activity.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }
    Ok(())
}

/// The shared vault as one client's request takes it, a piece at a time, with the
/// client named in the audit log for each piece.
struct ClientTurns<'a> {
    vault: &'a SharedVault,
    actor: Actor,
}

impl VaultAccess for ClientTurns<'_> {
    type Error = Error;

    fn with<T>(&mut self, op: impl FnOnce(&mut Vault) -> Result<T, Error>) -> Result<T, Error> {
        let mut guard = lock_shared(self.vault);
        let vault = guard
            .as_mut()
            .filter(|v| v.is_unlocked())
            .ok_or(Error::Locked)?;
        let own = vault.set_actor(self.actor.clone());
        let result = op(vault);
        vault.set_actor(own);
        result
    }
}

impl Drop for AgentServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Remove the socket only if it is still ours (a new agent may have replaced it).
        if std::fs::metadata(&self.path).map(|m| m.ino()).ok() == Some(self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(vault) = lock_shared(&self.vault).as_mut() {
            let _ = vault.lock();
        }
    }
}
