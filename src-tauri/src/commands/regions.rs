//! This vault's region identity, its paired peers (replica regions), and the bundles that
//! carry replication to a region that is never connected.

use coffer_core::private_file;
use coffer_core::vault::regions::{PeerContact, PeerInfo, RegionIdentity};
use coffer_core::vault::replication::bundle::MAX_FILE_BYTES;
use coffer_core::vault::replication::{AckImport, BundleExport, BundleImport};
use tauri::AppHandle;

use super::Session;
use crate::error::{AppError, AppResult};
use crate::file_picker::{self, Pick};
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

/// The peers as they are now, for a screen that watches backlog and contact move: not
/// counted as user activity, so watching does not keep an idle vault from locking itself.
#[tauri::command]
pub async fn watch_peers(session: Session<'_>) -> AppResult<Vec<PeerInfo>> {
    blocking(&session, |s| {
        s.in_background(|v| Ok(v.peers()?))?
            .ok_or_else(AppError::locked)
    })
    .await
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

/// What an export wrote, and where.
#[derive(serde::Serialize)]
pub struct BundleWritten {
    #[serde(flatten)]
    pub export: BundleExport,
    pub path: String,
}

/// What an import applied, and where its acknowledgement was written.
#[derive(serde::Serialize)]
pub struct BundleRead {
    #[serde(flatten)]
    pub import: BundleImport,
    pub ack_path: String,
}

/// Writes what `name` has not acknowledged to a file the user picks (`coffer region
/// export`). `None`: the user cancelled, nothing was written.
#[tauri::command]
pub async fn export_region_bundle(
    app: AppHandle,
    session: Session<'_>,
    name: String,
) -> AppResult<Option<BundleWritten>> {
    // Checked before the chooser opens, so a region without an acknowledgement says so
    // at once; the bundle itself is made after, from the outbox as it is then.
    let probe = name.clone();
    blocking(&session, move |s| {
        s.with_unlocked(|v| Ok(v.check_bundle_export(&probe)?))
    })
    .await?;
    let suggested = format!("coffer-bundle-{name}.json");
    let title = format!("Save the bundle for region {name}");
    let Some(path) = file_picker::pick(
        &app,
        &title,
        Pick::Save {
            suggested: &suggested,
        },
    )
    .await?
    else {
        return Ok(None);
    };
    blocking(&session, move |s| {
        let export = s.with_unlocked(|v| Ok(v.export_bundle(&name)?))?;
        private_file::write(&path, export.bundle.as_bytes())
            .map_err(|e| AppError::invalid("file", e.to_string()))?;
        Ok(Some(BundleWritten {
            export,
            path: path.display().to_string(),
        }))
    })
    .await
}

/// Applies a bundle from a file the user picks (`coffer region import`) and writes the
/// acknowledgement beside it as `FILE.ack`, as the CLI does by default, to carry back.
#[tauri::command]
pub async fn import_region_bundle(
    app: AppHandle,
    session: Session<'_>,
) -> AppResult<Option<BundleRead>> {
    let Some(path) = file_picker::pick(&app, "Import a replica bundle", Pick::Open).await? else {
        return Ok(None);
    };
    blocking(&session, move |s| {
        let text = private_file::read_text(&path, "bundle", MAX_FILE_BYTES)
            .map_err(|e| AppError::invalid("file", e.to_string()))?;
        let import = s.with_unlocked(|v| Ok(v.import_bundle(&text)?))?;
        let mut ack_path = path.into_os_string();
        ack_path.push(".ack");
        let ack_path = std::path::PathBuf::from(ack_path);
        private_file::write(&ack_path, import.ack.as_bytes()).map_err(|e| {
            AppError::invalid(
                "file",
                format!(
                    "the bundle was applied, but its acknowledgement could not be written: {e}"
                ),
            )
        })?;
        Ok(Some(BundleRead {
            import,
            ack_path: ack_path.display().to_string(),
        }))
    })
    .await
}

/// Moves the outbox on by a region's acknowledgement from a file the user picks
/// (`coffer region import-ack`).
#[tauri::command]
pub async fn import_region_ack(
    app: AppHandle,
    session: Session<'_>,
) -> AppResult<Option<AckImport>> {
    let title = "Import a region's acknowledgement";
    let Some(path) = file_picker::pick(&app, title, Pick::Open).await? else {
        return Ok(None);
    };
    blocking(&session, move |s| {
        let text = private_file::read_text(&path, "acknowledgement", MAX_FILE_BYTES)
            .map_err(|e| AppError::invalid("file", e.to_string()))?;
        s.with_unlocked(|v| Ok(v.import_bundle_ack(&text)?))
            .map(Some)
    })
    .await
}
