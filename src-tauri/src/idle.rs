//! Auto-lock: a background task locks the vault (wiping its keys) once the user has been
//! idle longer than the setting, and tells the UI.

use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter};

use crate::session::SharedSession;

const TICK: Duration = Duration::from_secs(1);

pub fn spawn_watcher(app: AppHandle, session: SharedSession) {
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let limit = u64::from(session.settings().auto_lock_secs);
            if session.idle_secs() < limit || !session.is_unlocked() {
                continue;
            }
            let session = Arc::clone(&session);
            let locked = tauri::async_runtime::spawn_blocking(move || session.lock()).await;
            if matches!(locked, Ok(Ok(()))) {
                let _ = app.emit("vault-locked", "idle");
            }
        }
    });
}
