//! Settings → Updates: where updates come from, checking, downloading, a bundle from a
//! file, and installing. The rules live in `coffer-update` (see `crate::updates`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use coffer_update::{version, BundleRefusal, Direction, SignatureRefusal};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_updater::UpdaterExt;

use crate::error::{AppError, AppResult};
use crate::updates::install::install;
use crate::updates::key::update_key;
use crate::updates::preferences::{endpoint_url, preferences_path, UpdatePreferences};
use crate::updates::{ReadyBundle, UpdateState};

/// A newer version the endpoint offers.
#[derive(Debug, Serialize)]
pub struct UpdateOffer {
    pub current_version: String,
    pub version: String,
    pub notes: String,
    pub date: Option<String>,
}

/// A verified bundle waiting for "Install and restart".
#[derive(Debug, Serialize)]
pub struct ReadyUpdate {
    pub current_version: String,
    pub version: String,
    pub downgrade: bool,
}

/// Download progress, streamed while the bundle downloads.
#[derive(Clone, Serialize)]
pub struct DownloadProgress {
    pub downloaded: u64,
    pub total: Option<u64>,
}

fn refused(message: String) -> AppError {
    AppError::new(
        "update_refused",
        format!("{message}; nothing was installed"),
    )
}

fn unreachable_endpoint(error: impl std::fmt::Display) -> AppError {
    AppError::new(
        "update_unreachable",
        format!("cannot check for updates: {error}"),
    )
}

#[tauri::command]
pub fn get_update_settings() -> UpdatePreferences {
    UpdatePreferences::load(&preferences_path())
}

#[tauri::command]
pub fn save_update_settings(settings: UpdatePreferences) -> AppResult<UpdatePreferences> {
    settings.save(&preferences_path())
}

/// Asks the endpoint for a newer version; `None` when this one is the newest.
#[tauri::command]
pub async fn check_for_update<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, UpdateState>,
) -> AppResult<Option<UpdateOffer>> {
    *state.ready.lock().map_err(poisoned)? = None;
    let preferences = UpdatePreferences::load(&preferences_path());
    let endpoint = preferences.endpoint.as_deref().ok_or_else(|| {
        AppError::invalid(
            "update endpoint",
            "no update endpoint is set: Coffer checks for updates only where you tell it to",
        )
    })?;
    let url = endpoint_url(endpoint)?;
    let extra_roots = match &preferences.ca_file {
        Some(path) => read_ca(Path::new(path))?,
        None => Vec::new(),
    };
    let key = update_key(&app)?;
    let updater = app
        .updater_builder()
        .endpoints(vec![url])
        .map_err(unreachable_endpoint)?
        .pubkey(key.as_text())
        .target(package_target())
        .timeout(Duration::from_secs(60))
        .configure_client(move |client| client.tls_certs_merge(extra_roots.clone()))
        .build()
        .map_err(unreachable_endpoint)?;
    let offer = updater.check().await.map_err(unreachable_endpoint)?;
    let reply = offer.as_ref().map(|update| UpdateOffer {
        current_version: update.current_version.clone(),
        version: update.version.clone(),
        notes: update.body.clone().unwrap_or_default(),
        date: update.date.map(|date| date.to_string()),
    });
    *state.offered.lock().map_err(poisoned)? = offer;
    Ok(reply)
}

/// Downloads the offered update, streaming progress, and verifies it.
#[tauri::command]
pub async fn download_update<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, UpdateState>,
    on_progress: Channel<DownloadProgress>,
) -> AppResult<ReadyUpdate> {
    *state.ready.lock().map_err(poisoned)? = None;
    let update = state
        .offered
        .lock()
        .map_err(poisoned)?
        .clone()
        .ok_or_else(|| {
            AppError::new(
                "update_none",
                "there is no update to download: check for updates first",
            )
        })?;
    let mut downloaded = 0u64;
    let bytes = update
        .download(
            |chunk, total| {
                downloaded += chunk as u64;
                let _ = on_progress.send(DownloadProgress { downloaded, total });
            },
            || {},
        )
        .await
        .map_err(|error| match error {
            tauri_plugin_updater::Error::Minisign(
                coffer_update::minisign_verify::Error::UnexpectedKeyId,
            ) => refused(format!(
                "the downloaded Coffer {} was signed by another key than Coffer's update key",
                update.version
            )),
            tauri_plugin_updater::Error::Minisign(_) => refused(format!(
                "the downloaded Coffer {} does not match its signature: it was changed after it was signed",
                update.version
            )),
            tauri_plugin_updater::Error::Base64(_)
            | tauri_plugin_updater::Error::SignatureUtf8(_) => refused(format!(
                "the signature the update server gave for Coffer {} is not a signature",
                update.version
            )),
            other => AppError::new(
                "update_unreachable",
                format!("cannot download the update: {other}"),
            ),
        })?;
    let key = update_key(&app)?;
    let signature = update.signature.clone();
    let what = format!("the downloaded Coffer {}", update.version);
    // Online, a downgrade is never installed: the manifest could be replayed.
    let ready =
        tauri::async_runtime::spawn_blocking(move || verify(&key, &bytes, signature, &what, false))
            .await
            .map_err(|e| AppError::internal(format!("the check stopped: {e}")))??;
    finish(&state, ready)
}

/// Checks an update bundle and its signature from a file (a USB stick).
#[tauri::command]
pub async fn check_update_file<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, UpdateState>,
    path: String,
    signature: Option<String>,
    allow_downgrade: bool,
) -> AppResult<ReadyUpdate> {
    *state.ready.lock().map_err(poisoned)? = None;
    let key = update_key(&app)?;
    let ready = tauri::async_runtime::spawn_blocking(move || {
        let path = PathBuf::from(path.trim());
        let signature_path = signature
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| coffer_update::default_signature_path(&path));
        let bytes = coffer_update::read_bundle(&path)
            .map_err(|e| AppError::invalid("update file", e.to_string()))?;
        let signature = std::fs::read_to_string(&signature_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                refused(format!(
                    "{} is unsigned: there is no signature at {}; Coffer installs only signed bundles",
                    path.display(),
                    signature_path.display()
                ))
            } else {
                refused(format!("cannot read the signature {}: {e}", signature_path.display()))
            }
        })?;
        verify(&key, &bytes, signature, &path.display().to_string(), allow_downgrade)
    })
    .await
    .map_err(|e| AppError::internal(format!("the check stopped: {e}")))??;
    finish(&state, ready)
}

/// Installs the verified bundle (asking for the administrator) and restarts into it.
#[tauri::command]
pub async fn install_update<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, UpdateState>,
) -> AppResult<()> {
    let ready = state
        .ready
        .lock()
        .map_err(poisoned)?
        .take()
        .ok_or_else(|| AppError::new("update_none", "there is no verified update to install"))?;
    let (ready, outcome) = tauri::async_runtime::spawn_blocking(move || {
        let outcome = install(&ready);
        (ready, outcome)
    })
    .await
    .map_err(|e| AppError::internal(format!("the install stopped: {e}")))?;
    match outcome {
        Ok(()) => app.restart(),
        Err(error) => {
            // Still verified: the user may retry (after fixing what the message says).
            *state.ready.lock().map_err(poisoned)? = Some(ready);
            Err(error)
        }
    }
}

fn verify(
    key: &coffer_update::UpdateKey,
    bytes: &[u8],
    signature: String,
    what: &str,
    allow_downgrade: bool,
) -> AppResult<ReadyBundle> {
    let bundle = coffer_update::check_bundle(key, bytes, &signature).map_err(|e| match e {
        BundleRefusal::Signature(SignatureRefusal::NotASignature) => {
            refused(format!("the signature of {what} is not a signature (expected the .sig file of a Coffer release)"))
        }
        BundleRefusal::Copy(_) | BundleRefusal::Inspect(_) => refused(format!("{what}: {e}")),
        _ => refused(format!("{what} {e}")),
    })?;
    let direction = version::decide(
        &version::running(),
        &bundle.package.version,
        allow_downgrade,
    )
    .map_err(|e| refused(e.to_string()))?;
    Ok(ReadyBundle {
        bundle,
        signature,
        direction,
    })
}

fn finish(state: &UpdateState, ready: ReadyBundle) -> AppResult<ReadyUpdate> {
    let reply = ReadyUpdate {
        current_version: version::running().to_string(),
        version: ready.bundle.package.version.to_string(),
        downgrade: ready.direction == Direction::Downgrade,
    };
    *state.ready.lock().map_err(poisoned)? = Some(ready);
    Ok(reply)
}

fn read_ca(path: &Path) -> AppResult<Vec<reqwest::Certificate>> {
    let field = "CA certificate";
    let pem = std::fs::read(path).map_err(|e| {
        AppError::invalid(
            field,
            format!("cannot read the CA certificate {}: {e}", path.display()),
        )
    })?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        _ => Err(AppError::invalid(
            field,
            format!("{} holds no PEM certificate", path.display()),
        )),
    }
}

/// The manifest entry for this system's package manager (`linux-x86_64-deb`…), as
/// `packaging/latest_json.py` names them.
fn package_target() -> String {
    let kind = if Path::new("/usr/bin/dpkg").exists() {
        "deb"
    } else {
        "rpm"
    };
    format!("linux-{}-{kind}", std::env::consts::ARCH)
}

fn poisoned<T>(_: T) -> AppError {
    AppError::internal("the update state is unusable after an earlier failure; restart Coffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest packaging/build.sh publishes (written by packaging/latest_json.py) is
    /// what tauri-plugin-updater reads, with an entry under the name this app asks for.
    #[test]
    fn the_updater_reads_the_manifest_a_release_publishes() {
        let dir = tempfile::tempdir().unwrap();
        for (name, signature) in [
            ("Coffer_0.2.0_amd64.deb", "deb-signature"),
            ("Coffer-0.2.0-1.x86_64.rpm", "rpm-signature"),
        ] {
            std::fs::write(dir.path().join(name), b"package").unwrap();
            std::fs::write(
                dir.path().join(format!("{name}.sig")),
                format!("{signature}\n"),
            )
            .unwrap();
        }
        let writer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/latest_json.py");
        let output = std::process::Command::new("python3")
            .arg(writer)
            .arg("0.2.0")
            .arg(dir.path())
            .env(
                "COFFER_RELEASE_URL",
                "https://updates.example.org/coffer/0.2.0/",
            )
            .env("COFFER_RELEASE_NOTES", "Coffer 0.2.0\n\n- notes")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let release: tauri_plugin_updater::RemoteRelease =
            serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(release.version.to_string(), "0.2.0");
        assert_eq!(release.notes.as_deref(), Some("Coffer 0.2.0\n\n- notes"));
        assert!(release.pub_date.is_some());
        for (kind, name, signature) in [
            ("deb", "Coffer_0.2.0_amd64.deb", "deb-signature"),
            ("rpm", "Coffer-0.2.0-1.x86_64.rpm", "rpm-signature"),
        ] {
            let target = format!("linux-{}-{kind}", std::env::consts::ARCH);
            assert_eq!(
                release.download_url(&target).unwrap().as_str(),
                format!("https://updates.example.org/coffer/0.2.0/{name}")
            );
            assert_eq!(release.signature(&target).unwrap(), signature);
        }
        // And the entry this machine's app would pick is one of them.
        assert!(release.download_url(&package_target()).is_ok());
    }
}
