//! This vault's region identity and its paired peers (replica regions).

use coffer_core::vault::regions::{PeerContact, PeerInfo, RegionIdentity};

use super::Session;
use crate::error::AppResult;
use crate::session::blocking;

#[tauri::command]
pub async fn region_identity(session: Session<'_>) -> AppResult<RegionIdentity> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.region_identity()?))).await
}

#[tauri::command]
pub async fn rename_region(session: Session<'_>, name: String) -> AppResult<RegionIdentity> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.set_region_name(name.trim())?))
    })
    .await
}

#[tauri::command]
pub async fn list_peers(session: Session<'_>) -> AppResult<Vec<PeerInfo>> {
    blocking(&session, |s| s.with_unlocked(|v| Ok(v.peers()?))).await
}

#[tauri::command]
pub async fn add_peer(
    session: Session<'_>,
    name: String,
    url: String,
    fingerprint: String,
) -> AppResult<PeerInfo> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.add_peer(name.trim(), url.trim(), fingerprint.trim())?))
    })
    .await
}

#[tauri::command]
pub async fn remove_peer(session: Session<'_>, name: String) -> AppResult<()> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.remove_peer(&name)?))
    })
    .await
}

/// Contacts a peer over pinned TLS. Holds the vault for the contact, which the transport
/// bounds (5 s to connect, 15 s in all).
#[tauri::command]
pub async fn ping_peer(session: Session<'_>, name: String) -> AppResult<PeerContact> {
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.contact_peer(&name)?))
    })
    .await
}
