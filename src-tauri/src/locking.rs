//! Every way the app's vault gets locked, and what must follow each one.
//!
//! Locking wipes the keys in the engine; the UI must also drop what it shows (revealed
//! values, cached rows) and the clipboard must lose a value we put there. Locks come from
//! the lock button, auto-lock, suspend and screen lock (see `desktop_signals`), and from
//! `coffer lock` through the agent socket the app serves — the last one bypasses the app,
//! so a watcher notices the vault went locked and tells the UI all the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coffer_core::clock::BootInstant;
use serde::Serialize;
use tauri::{AppHandle, Emitter};

use crate::error::AppResult;
use crate::session::{Session, SharedSession};

const TICK: Duration = Duration::from_secs(1);

/// Why the vault locked, as the UI's `vault-locked` event says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockReason {
    Manual,
    Idle,
    /// Locked from outside the app: `coffer lock` through its agent socket.
    Elsewhere,
    Suspend,
    ScreenLock,
}

/// Counts the locks the app made itself, so the watcher can tell them from others.
#[derive(Default)]
pub struct LockEpoch(AtomicU64);

impl LockEpoch {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Locks the vault and does everything that follows a lock. The epoch moves before the
/// lock, so a watcher that sees the vault locked also sees that the app did it.
pub fn lock(app: &AppHandle, session: &Session, reason: LockReason) -> AppResult<()> {
    session.lock_epoch.bump();
    let locked = session.lock();
    after_lock(app, session, reason);
    locked
}

fn after_lock(app: &AppHandle, session: &Session, reason: LockReason) {
    if session.clipboard.clear_now_if_ours() {
        let _ = app.emit("clipboard-cleared", ());
    }
    let _ = app.emit("vault-locked", reason);
}

/// Whether the user has been idle long enough to lock: measured on the boot clock, so
/// time spent suspended counts.
pub fn idle_expired(last_activity: BootInstant, now: BootInstant, limit: Duration) -> bool {
    now.since(last_activity) >= limit
}

/// Whether the vault went from unlocked to locked without the app locking it.
fn locked_elsewhere(was_unlocked: bool, unlocked: bool, seen_epoch: u64, epoch: u64) -> bool {
    was_unlocked && !unlocked && seen_epoch == epoch
}

/// Auto-lock and the watch for locks made elsewhere, once a second.
pub fn spawn_watcher(app: AppHandle, session: SharedSession) {
    tauri::async_runtime::spawn(async move {
        let mut was_unlocked = session.is_unlocked();
        let mut seen_epoch = session.lock_epoch.get();
        loop {
            tokio::time::sleep(TICK).await;
            // Read the state before the epoch: see `lock`.
            let unlocked = session.is_unlocked();
            let epoch = session.lock_epoch.get();
            if locked_elsewhere(was_unlocked, unlocked, seen_epoch, epoch) {
                after_lock(&app, &session, LockReason::Elsewhere);
            }
            was_unlocked = unlocked;
            seen_epoch = epoch;
            let limit = Duration::from_secs(u64::from(session.settings().auto_lock_secs));
            if unlocked && idle_expired(session.last_activity(), BootInstant::now(), limit) {
                let (app, locking) = (app.clone(), Arc::clone(&session));
                let _ = tauri::async_runtime::spawn_blocking(move || {
                    lock(&app, &locking, LockReason::Idle)
                })
                .await;
                was_unlocked = false;
                seen_epoch = session.lock_epoch.get();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idleness_is_measured_on_an_injected_boot_clock() {
        let start = BootInstant::now();
        let limit = Duration::from_secs(600);
        assert!(!idle_expired(
            start,
            start.plus(Duration::from_secs(599)),
            limit
        ));
        assert!(idle_expired(start, start.plus(limit), limit));
        // Hours of suspend are hours on the boot clock: the first tick after waking locks.
        assert!(idle_expired(
            start,
            start.plus(Duration::from_secs(5 * 3600)),
            limit
        ));
    }

    #[test]
    fn only_a_lock_the_app_did_not_make_counts_as_elsewhere() {
        assert!(locked_elsewhere(true, false, 3, 3));
        assert!(!locked_elsewhere(true, false, 3, 4), "the app locked it");
        assert!(!locked_elsewhere(false, false, 3, 3), "already locked");
        assert!(!locked_elsewhere(true, true, 3, 3), "still unlocked");
    }

    #[test]
    fn reasons_reach_the_ui_in_kebab_case() {
        assert_eq!(
            serde_json::to_string(&LockReason::ScreenLock).unwrap(),
            "\"screen-lock\""
        );
        assert_eq!(
            serde_json::to_string(&LockReason::Elsewhere).unwrap(),
            "\"elsewhere\""
        );
    }
}
