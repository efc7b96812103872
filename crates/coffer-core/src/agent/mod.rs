//! The agent: an unlocked vault serving the CLI over a Unix socket, so a developer types
//! the PIN once instead of on every command.
//!
//! The socket lives in the user's runtime directory (0700) and is 0600; on top of that the
//! server checks every connecting peer's uid with `SO_PEERCRED` and refuses anyone but its
//! own user. Requests and responses are [`crate::service`] values, so the agent offers
//! exactly what the CLI can do locally, through the same code.

mod client;
pub mod frame;
mod peer;
mod server;

pub use crate::runtime::{runtime_dir, socket_path};
pub use client::{AgentClient, AgentError};
pub use server::{AgentServer, ServeOptions};
