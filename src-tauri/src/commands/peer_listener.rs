//! Regions → Receive from peers: whether the app listens for paired peers while unlocked,
//! and where (see `peer_listener`).

use serde::Serialize;

use super::Session;
use crate::error::AppResult;
use crate::session::blocking;
use crate::settings::{PeerListenSettings, DEFAULT_PEER_ADDRESS};

#[derive(Serialize)]
pub struct PeerListenerStatus {
    pub enabled: bool,
    pub address: String,
    pub default_address: &'static str,
    /// Where it listens now (`IP:port`); `None` while off or locked.
    pub listening: Option<String>,
    /// Why it is on but not listening (a taken port).
    pub problem: Option<String>,
}

fn status(session: &crate::session::Session) -> PeerListenerStatus {
    let settings = session.settings().peers;
    PeerListenerStatus {
        enabled: settings.enabled,
        address: settings.address,
        default_address: DEFAULT_PEER_ADDRESS,
        listening: session.peers.listening(),
        problem: session.peers.problem(),
    }
}

#[tauri::command]
pub async fn peer_listener_status(session: Session<'_>) -> AppResult<PeerListenerStatus> {
    blocking(&session, |s| Ok(status(s))).await
}

/// Turns listening on or off or moves it; a refused address changes nothing.
#[tauri::command]
pub async fn configure_peer_listener(
    session: Session<'_>,
    enabled: bool,
    address: String,
) -> AppResult<PeerListenerStatus> {
    blocking(&session, move |s| {
        // Only an unlocked vault knows its TLS identity and who is pinned.
        s.with_unlocked(|_| Ok(()))?;
        s.configure_peers(PeerListenSettings {
            enabled,
            address: address.trim().to_owned(),
        })?;
        Ok(status(s))
    })
    .await
}
