//! `coffer daemon --listen` on loopback for the tests that pair vaults, and polling up to
//! a deadline: what the team tests share.

use std::time::{Duration, Instant};

use crate::{Cmd, Env, Spawned};

/// How long a daemon may take to say where it listens.
const STARTS: Duration = Duration::from_secs(60);

/// A `coffer daemon --listen` on loopback, killed (SIGKILL) when dropped.
pub struct Daemon(pub Spawned);

impl Daemon {
    /// A daemon on a free port chosen by the kernel; returns it and the port it listens on.
    #[track_caller]
    pub fn start(env: &Env) -> (Daemon, u16) {
        Daemon::start_at(env, 0, &[])
    }

    /// A daemon at a fixed port: a vault restarted where its peers expect it.
    #[track_caller]
    pub fn start_on(env: &Env, port: u16) -> Daemon {
        Daemon::start_at(env, port, &[]).0
    }

    /// A daemon at `port` (0: the kernel picks one) with more options, built by `cmd`
    /// from its arguments. A fixed port still held by the daemon it replaces is retried.
    #[track_caller]
    pub fn start_at(env: &Env, port: u16, extra: &[&str]) -> (Daemon, u16) {
        Daemon::start_cmd(port, |args| env.cmd(args), extra)
    }

    /// [`Daemon::start_at`] with the command made by `cmd` (for example without a PIN
    /// file).
    #[track_caller]
    pub fn start_cmd<'e>(
        port: u16,
        cmd: impl Fn(Vec<&str>) -> Cmd<'e>,
        extra: &[&str],
    ) -> (Daemon, u16) {
        let address = format!("127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            let mut args = vec!["daemon", "--listen", &address, "--max-sleep", "1h"];
            args.extend_from_slice(extra);
            let daemon = Daemon(cmd(args).spawn());
            loop {
                let stderr = daemon.0.stderr();
                if let Some(rest) = stderr.split("listening for peers on 127.0.0.1:").nth(1) {
                    let port = rest
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|digits| digits.parse().ok())
                        .unwrap_or_else(|| panic!("no port in the daemon's log: {stderr}"));
                    return (daemon, port);
                }
                if stderr.contains("in use") {
                    break;
                }
                assert!(
                    start.elapsed() < STARTS,
                    "the daemon did not start listening: {stderr}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(daemon);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        self.0.stderr()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.0.sigkill();
        self.0.wait();
    }
}

/// The vault's region fingerprint, as `coffer region identity` shows it.
#[track_caller]
pub fn fingerprint(env: &Env) -> String {
    let identity = env
        .coffer(&["region", "identity", "-o", "json"])
        .ok()
        .json();
    identity["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("no fingerprint in {identity}"))
        .to_owned()
}

/// Polls `check` until it holds, failing with what was seen last after `limit`. Never a
/// fixed wait: a change still on its way is waited for, and speed is not asserted.
#[track_caller]
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(seen) if start.elapsed() > limit => {
                panic!("{what} did not happen within {limit:?}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
