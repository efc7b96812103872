//! The CLI's side of the socket.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::frame;
use super::server::Reply;
use crate::service::{Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("an agent already serves this vault (socket {socket}); `coffer lock` stops it")]
    AlreadyRunning { socket: PathBuf },
    #[error(
        "the agent stopped answering ({0}); run `coffer lock` and `coffer unlock` to restart it"
    )]
    Broken(io::Error),
    #[error("agent socket: {0}")]
    Io(io::Error),
    /// The socket is served by a process of another user: refused before anything is sent,
    /// since it could be anyone's stand-in collecting values and PINs.
    #[error("the agent socket {socket} is served by uid {uid}, not by you; remove it or unset COFFER_AGENT_SOCKET")]
    Foreign { socket: PathBuf, uid: u32 },
    /// The agent answered with an error; `code` is the engine's error code.
    #[error("{message}")]
    Remote { code: String, message: String },
}

pub struct AgentClient {
    stream: UnixStream,
}

/// How long a request may take before the CLI gives up on the agent (a TPM seal of a new
/// key is the slowest thing it does, well under this).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl AgentClient {
    /// Connects to the agent of `vault`, or `Ok(None)` when none is running (no socket,
    /// or a stale one nobody listens on).
    pub fn connect(vault: &Path) -> Result<Option<AgentClient>, AgentError> {
        let path = super::socket_path(vault).map_err(AgentError::Io)?;
        match UnixStream::connect(&path) {
            Ok(stream) => {
                let peer = super::peer::credentials(&stream).map_err(AgentError::Io)?;
                // SAFETY: getuid has no preconditions and cannot fail.
                let own = unsafe { libc::getuid() };
                if peer.uid != own {
                    return Err(AgentError::Foreign {
                        socket: path,
                        uid: peer.uid,
                    });
                }
                stream
                    .set_read_timeout(Some(REQUEST_TIMEOUT))
                    .map_err(AgentError::Io)?;
                stream
                    .set_write_timeout(Some(REQUEST_TIMEOUT))
                    .map_err(AgentError::Io)?;
                Ok(Some(AgentClient { stream }))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(AgentError::Io(e)),
        }
    }

    pub fn call(&mut self, request: &Request) -> Result<Response, AgentError> {
        frame::write(&mut self.stream, request).map_err(AgentError::Broken)?;
        match frame::read::<Reply>(&mut self.stream).map_err(AgentError::Broken)? {
            Some(Reply::Ok(response)) => Ok(response),
            Some(Reply::Error { code, message }) => Err(AgentError::Remote { code, message }),
            None => Err(AgentError::Broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "it closed the connection",
            ))),
        }
    }
}
