//! The IPC commands. Each one parses its arguments, calls the engine on a blocking thread
//! and maps errors; none holds a rule of its own.

pub mod access_keys;
pub mod audit;
pub mod aws_api;
pub mod keys;
pub mod lifecycle;
pub mod peer_listener;
pub mod regions;
pub mod replication;
pub mod rotation;
pub mod secrets;
pub mod settings;
pub mod team;
pub mod updates;
pub mod values;

use tauri::State;

use crate::session::SharedSession;

pub type Session<'a> = State<'a, SharedSession>;
