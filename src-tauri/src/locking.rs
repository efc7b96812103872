//! Every way the app's vault gets locked, and what must follow each one.
//!
//! Locking wipes the keys in the engine; the UI must also drop what it shows (revealed
//! values, cached rows) and the clipboard must lose a value we put there. Locks come from
//! the lock button, auto-lock, suspend and screen lock (see `desktop_signals`), and from
//! `coffer lock` through the agent socket the app serves — the last one bypasses the app,
//! so a watcher notices the vault went locked and tells the UI all the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use coffer_core::clock::BootInstant;
use serde::Serialize;
use tauri::{AppHandle, Emitter};

use crate::error::AppResult;
use crate::session::{LockState, Session, SharedSession};

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
/// Moved only under the vault's mutex, together with the vault's own lock count (see
/// [`Session::lock`] and [`Session::lock_state`]), so the two are always read in step.
#[derive(Default)]
pub struct LockEpoch(AtomicU64);

impl LockEpoch {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Locks the vault and does everything that follows a lock.
pub fn lock(app: &AppHandle, session: &Session, reason: LockReason) -> AppResult<()> {
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

/// Whether the vault's keys were wiped more often than the app wiped them since the last
/// look: counted, not sampled, so an unlock followed by `coffer lock` within one tick is
/// not missed.
fn locked_elsewhere(seen: LockState, now: LockState) -> bool {
    now.vault_locks.saturating_sub(seen.vault_locks) > now.app_locks.saturating_sub(seen.app_locks)
}

/// Auto-lock and the watch for locks made elsewhere, once a second.
///
/// On a thread of its own rather than a task on the async runtime: each tick takes the
/// vault's mutex (which an unlock or a long write holds for a while) and may touch the
/// X11 clipboard, blocking calls that must not stall the runtime's few workers.
pub fn spawn_watcher(app: AppHandle, session: SharedSession) {
    let spawned = std::thread::Builder::new()
        .name("coffer-lock-watch".into())
        .spawn(move || {
            let mut seen = session.lock_state();
            loop {
                std::thread::sleep(TICK);
                let now = session.lock_state();
                if locked_elsewhere(seen, now) {
                    after_lock(&app, &session, LockReason::Elsewhere);
                }
                // Also catches `coffer lock` through the agent, which the app did not do.
                session.sync_while_unlocked();
                seen = now;
                let limit = Duration::from_secs(u64::from(session.settings().auto_lock_secs));
                if now.unlocked && idle_expired(session.last_activity(), BootInstant::now(), limit)
                {
                    let _ = lock(&app, &session, LockReason::Idle);
                    seen = session.lock_state();
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("coffer: auto-lock and the watch for `coffer lock` are not running: {error}");
    }
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

    fn state(unlocked: bool, vault_locks: u64, app_locks: u64) -> LockState {
        LockState {
            unlocked,
            vault_locks,
            app_locks,
        }
    }

    #[test]
    fn only_a_lock_the_app_did_not_make_counts_as_elsewhere() {
        let seen = state(true, 3, 1);
        assert!(locked_elsewhere(seen, state(false, 4, 1)));
        assert!(
            !locked_elsewhere(seen, state(false, 4, 2)),
            "the app locked it"
        );
        assert!(
            !locked_elsewhere(seen, state(true, 3, 1)),
            "nothing happened"
        );
        // Unlocked and locked again from the terminal between two ticks: the state
        // looks the same as before, the count does not.
        let locked = state(false, 3, 1);
        assert!(locked_elsewhere(locked, state(false, 4, 1)));
        // The app's own lock and one from elsewhere in the same tick.
        assert!(locked_elsewhere(seen, state(false, 5, 2)));
        // A vault handle replaced (recovery) starts counting afresh.
        assert!(!locked_elsewhere(seen, state(true, 0, 1)));
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
