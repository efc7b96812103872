//! Locks the vault when the machine is about to sleep or the screen locks, as password
//! managers such as KeePassXC do: a laptop closed in a café must not wake up unlocked.
//!
//! Listens on D-Bus: logind's `PrepareForSleep(true)` and session `Lock` on the system bus,
//! and the screensaver's `ActiveChanged(true)` (freedesktop and GNOME names) on the session
//! bus. Anyone on a bus can emit these signals; the worst a forged one does is lock the
//! vault, so the sender is not checked. Each listener is optional: without a bus (a
//! minimal session, a server) the app simply has no such trigger.

use futures_util::StreamExt;
use tauri::AppHandle;
use zbus::{Connection, MatchRule, MessageStream};

use crate::locking::{self, LockReason};
use crate::session::SharedSession;

/// A signal that means "lock now", and whether its first argument must be `true`.
struct Trigger {
    interface: &'static str,
    member: &'static str,
    needs_true: bool,
    reason: LockReason,
}

const SYSTEM_TRIGGERS: &[Trigger] = &[
    Trigger {
        interface: "org.freedesktop.login1.Manager",
        member: "PrepareForSleep",
        needs_true: true,
        reason: LockReason::Suspend,
    },
    Trigger {
        interface: "org.freedesktop.login1.Session",
        member: "Lock",
        needs_true: false,
        reason: LockReason::ScreenLock,
    },
];

const SESSION_TRIGGERS: &[Trigger] = &[
    Trigger {
        interface: "org.freedesktop.ScreenSaver",
        member: "ActiveChanged",
        needs_true: true,
        reason: LockReason::ScreenLock,
    },
    Trigger {
        interface: "org.gnome.ScreenSaver",
        member: "ActiveChanged",
        needs_true: true,
        reason: LockReason::ScreenLock,
    },
];

pub fn spawn(app: AppHandle, session: SharedSession) {
    tauri::async_runtime::spawn(async move {
        match Connection::system().await {
            Ok(bus) => watch_all(&app, &session, bus, SYSTEM_TRIGGERS),
            Err(error) => eprintln!("coffer: no lock on suspend (system bus: {error})"),
        }
        match Connection::session().await {
            Ok(bus) => watch_all(&app, &session, bus, SESSION_TRIGGERS),
            Err(error) => eprintln!("coffer: no lock on screen lock (session bus: {error})"),
        }
    });
}

fn watch_all(
    app: &AppHandle,
    session: &SharedSession,
    bus: Connection,
    triggers: &'static [Trigger],
) {
    for trigger in triggers {
        let (app, session, bus) = (app.clone(), session.clone(), bus.clone());
        tauri::async_runtime::spawn(async move {
            if let Err(error) = watch(&app, &session, &bus, trigger).await {
                eprintln!(
                    "coffer: stopped watching {}.{}: {error}",
                    trigger.interface, trigger.member
                );
            }
        });
    }
}

async fn watch(
    app: &AppHandle,
    session: &SharedSession,
    bus: &Connection,
    trigger: &Trigger,
) -> zbus::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(trigger.interface)?
        .member(trigger.member)?
        .build();
    let mut stream = MessageStream::for_match_rule(rule, bus, None).await?;
    while let Some(message) = stream.next().await {
        let message = message?;
        if trigger.needs_true && !message.body().deserialize::<bool>().unwrap_or(false) {
            continue;
        }
        let settings = session.settings();
        let wanted = match trigger.reason {
            LockReason::Suspend => settings.lock_on_suspend,
            _ => settings.lock_on_screen_lock,
        };
        if !wanted || !session.is_unlocked() {
            continue;
        }
        let (app, session, reason) = (app.clone(), session.clone(), trigger.reason);
        let _ = tauri::async_runtime::spawn_blocking(move || locking::lock(&app, &session, reason))
            .await;
    }
    Ok(())
}
