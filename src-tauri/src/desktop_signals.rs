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

/// The signals on `bus` that match `trigger`.
async fn signals(bus: &Connection, trigger: &Trigger) -> zbus::Result<MessageStream> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(trigger.interface)?
        .member(trigger.member)?
        .build();
    MessageStream::for_match_rule(rule, bus, None).await
}

/// Whether a matching signal asks for a lock (`PrepareForSleep(false)` is waking up).
fn fires(trigger: &Trigger, message: &zbus::Message) -> bool {
    !trigger.needs_true || message.body().deserialize::<bool>().unwrap_or(false)
}

async fn watch(
    app: &AppHandle,
    session: &SharedSession,
    bus: &Connection,
    trigger: &Trigger,
) -> zbus::Result<()> {
    let mut stream = signals(bus, trigger).await?;
    while let Some(message) = stream.next().await {
        if !fires(trigger, &message?) {
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::*;

    /// A private bus from Debian's dbus-daemon, stopped when dropped.
    struct PrivateBus {
        daemon: Child,
        address: String,
    }

    impl PrivateBus {
        fn start() -> PrivateBus {
            let mut command = Command::new("dbus-daemon");
            // SAFETY: prctl is async-signal-safe; the daemon dies with the test process
            // even if a failing test never reaches Drop.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut daemon = command
                .args(["--session", "--nofork", "--print-address"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon (Debian package dbus-daemon)");
            let mut address = String::new();
            let stdout = daemon.stdout.take().expect("stdout");
            BufReader::new(stdout).read_line(&mut address).unwrap();
            PrivateBus {
                daemon,
                address: address.trim().to_owned(),
            }
        }

        fn emit(&self, path: &str, member: &str, args: &[&str]) {
            // `--address` would send without registering (no Hello), and the bus drops
            // such messages: name the bus through the variable instead.
            let status = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args(["--session", "--type=signal", path, member])
                .args(args)
                .status()
                .expect("dbus-send (Debian package dbus-bin)");
            assert!(status.success());
        }
    }

    impl Drop for PrivateBus {
        fn drop(&mut self) {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
    }

    async fn next(stream: &mut MessageStream) -> zbus::Message {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the signal arrived")
            .expect("a message")
            .expect("a valid message")
    }

    #[tokio::test]
    async fn the_screensaver_and_logind_signals_arrive_and_only_true_locks() {
        let bus = PrivateBus::start();
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let sleep = &SYSTEM_TRIGGERS[0];
        let screen = &SESSION_TRIGGERS[0];
        let mut sleeps = signals(&conn, sleep).await.unwrap();
        let mut screens = signals(&conn, screen).await.unwrap();
        bus.emit(
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager.PrepareForSleep",
            &["boolean:false"],
        );
        assert!(
            !fires(sleep, &next(&mut sleeps).await),
            "waking up does not lock"
        );
        bus.emit(
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager.PrepareForSleep",
            &["boolean:true"],
        );
        assert!(fires(sleep, &next(&mut sleeps).await));
        bus.emit(
            "/org/freedesktop/ScreenSaver",
            "org.freedesktop.ScreenSaver.ActiveChanged",
            &["boolean:true"],
        );
        assert!(fires(screen, &next(&mut screens).await));
    }
}
