//! Which public key the app checks bundles with: the one the package installed for
//! `coffer self-update` (`/usr/share/coffer/update-key.pub`), so app and CLI trust exactly
//! the same key; without a package (a development build), the key compiled into the app's
//! configuration (`plugins.updater.pubkey`), which is the same key.

use coffer_update::UpdateKey;
use tauri::{AppHandle, Runtime};

use crate::error::{AppError, AppResult};

pub fn update_key<R: Runtime>(app: &AppHandle<R>) -> AppResult<UpdateKey> {
    // An installed package's key always wins, even in a debug build packaged for CI.
    if let Ok(exe) = std::env::current_exe() {
        if let Ok(key) = UpdateKey::installed_beside(&exe) {
            return Ok(key);
        }
    }
    // Debug builds run from their build folder only: the end-to-end tests sign with a key
    // made at test time.
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("COFFER_UPDATE_KEY_FILE") {
        return UpdateKey::read(std::path::Path::new(&path))
            .map_err(|e| AppError::new("update_key", e.to_string()));
    }
    app.config()
        .plugins
        .0
        .get("updater")
        .and_then(|updater| updater.get("pubkey"))
        .and_then(|text| text.as_str())
        .and_then(UpdateKey::decode)
        .ok_or_else(|| {
            AppError::new(
                "update_key",
                "this build of Coffer has no update key, so it cannot verify updates; reinstall it from a package",
            )
        })
}
