//! Test fixtures that start real components for Coffer's tests.
//!
//! [`Swtpm`] runs a real software TPM (`swtpm`) on loopback ports of its own, with its own
//! temporary state directory, so every test gets a fresh TPM with fresh seeds. Everything here
//! is test code: failures to set a fixture up panic with a message that says what to install or
//! check.
//!
//! The libtss2 `swtpm` TCTI opens a TCP connection per command, so several clients (a
//! `coffer_core::tpm::Tpm`, and `tpm2-tools` run by [`Swtpm::pcr_extend`]) can use one swtpm at
//! the same time. There is no resource manager, though: all clients share swtpm's 3 slots for
//! loaded objects.
//!
//! [`WireTap`] records what crosses a TCP connection; [`DelayLink`] slows one down, for
//! wide-area tests on a kernel without netem.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

mod delay_link;
pub use delay_link::DelayLink;

/// How long `swtpm` gets to start listening before [`Swtpm::start`] gives up.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many port pairs [`Swtpm::start`] tries when swtpm loses a race for its ports.
const START_ATTEMPTS: u32 = 8;
/// How long a `tpm2-tools` command may run before the helper gives up on it.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Lowest and highest base port for swtpm's port pair: below Linux's default ephemeral range
/// (32768-60999), so that outgoing connections do not take them between the check and the bind.
const PORT_RANGE: (u16, u16) = (20_000, 32_000);

/// A running `swtpm` process (TPM 2.0) listening on `127.0.0.1`.
///
/// The server (command) port is `P` and the control port is `P + 1`. It is started with
/// `--flags not-need-init,startup-clear`, so it is ready for commands as soon as it listens,
/// like a TPM after boot. Dropping it kills the process and removes its state.
pub struct Swtpm {
    child: Option<Child>,
    port: u16,
    /// `root/state`: the TPM's NV state.
    state: PathBuf,
    /// Holds `state/` (the TPM's NV state) and `swtpm.log`; removed on drop.
    root: TempDir,
}

impl Swtpm {
    /// Starts a fresh software TPM on free loopback ports and waits until it accepts
    /// connections.
    ///
    /// # Panics
    /// If `swtpm` is not installed, or it does not come up within a few seconds.
    pub fn start() -> Swtpm {
        let root = tempfile::Builder::new()
            .prefix("coffer-swtpm-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for swtpm: {e}"));
        let state = root.path().join("state");
        fs::create_dir_all(&state)
            .unwrap_or_else(|e| panic!("cannot create swtpm state dir {}: {e}", state.display()));
        let mut swtpm = Swtpm {
            child: None,
            port: 0,
            state,
            root,
        };
        swtpm.spawn();
        swtpm
    }

    /// The TCTI string that reaches this TPM: `swtpm:host=127.0.0.1,port=P`.
    ///
    /// It changes after [`restart`](Self::restart) and
    /// [`wipe_and_restart`](Self::wipe_and_restart).
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The server (command) port `P`; the control port is `P + 1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory that holds the TPM's persistent state.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The swtpm process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the swtpm process with SIGKILL (a crash, no orderly shutdown) and reaps it.
    /// Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Only our own child, by its pid: `Child::kill` sends SIGKILL to exactly it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills swtpm if it runs and starts it again on the same state, like a reboot: PCRs are
    /// reset, keys sealed before still load. The ports (and so [`tcti`](Self::tcti)) change.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Deletes the TPM state and starts again: the TPM has new primary seeds, as if it had been
    /// cleared or replaced, so nothing sealed before can be loaded any more.
    pub fn wipe_and_restart(&mut self) {
        self.kill();
        let state = self.state.clone();
        fs::remove_dir_all(&state)
            .unwrap_or_else(|e| panic!("cannot remove swtpm state {}: {e}", state.display()));
        fs::create_dir_all(&state)
            .unwrap_or_else(|e| panic!("cannot create swtpm state dir {}: {e}", state.display()));
        self.spawn();
    }

    /// Extends SHA-256 PCR `pcr` with a fixed digest using `tpm2_pcrextend`, so any key bound
    /// to that PCR no longer unseals.
    ///
    /// # Panics
    /// If `tpm2_pcrextend` is missing, fails, or does not finish in time.
    pub fn pcr_extend(&self, pcr: u8) {
        let digest = "c0ffee".repeat(10) + "c0ff";
        self.run_tool(
            "tpm2_pcrextend",
            &[format!("{pcr}:sha256={digest}")],
            "apt-get install tpm2-tools",
        );
    }

    /// Runs a `tpm2-tools` command against this TPM (with `-T` and `TPM2TOOLS_TCTI` set) and
    /// returns its standard output.
    ///
    /// # Panics
    /// If the tool is missing, fails, or does not finish in time.
    pub fn tpm2_tool(&self, tool: &str, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        self.run_tool(tool, &args, "apt-get install tpm2-tools")
    }

    fn run_tool(&self, tool: &str, args: &[String], install_hint: &str) -> String {
        assert!(
            self.child.is_some(),
            "{tool}: swtpm is not running (killed and not restarted)"
        );
        let tcti = self.tcti();
        let out_path = self.root.path().join(format!("{tool}.out"));
        let err_path = self.root.path().join(format!("{tool}.err"));
        let out = File::create(&out_path).unwrap_or_else(|e| panic!("{tool}: {e}"));
        let err = File::create(&err_path).unwrap_or_else(|e| panic!("{tool}: {e}"));
        let mut child = Command::new(tool)
            .arg("-T")
            .arg(&tcti)
            .args(args)
            .env("TPM2TOOLS_TCTI", &tcti)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {tool} ({e}); install it: {install_hint}"));
        let deadline = Instant::now() + TOOL_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{tool} did not finish within {TOOL_TIMEOUT:?} against {tcti}");
                }
                Err(e) => panic!("cannot wait for {tool}: {e}"),
            }
        };
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        if !status.success() {
            let stderr = fs::read_to_string(&err_path).unwrap_or_default();
            panic!("{tool} {args:?} failed ({status}) against {tcti}: {stderr}");
        }
        stdout
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("swtpm.log")
    }

    /// Starts swtpm on the state dir, retrying on new ports if it loses a race for them.
    fn spawn(&mut self) {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port_pair();
            match self.try_spawn(port) {
                Ok(child) => {
                    self.child = Some(child);
                    self.port = port;
                    return;
                }
                Err(log) => last_log = log,
            }
        }
        panic!("swtpm did not start after {START_ATTEMPTS} attempts; its last output: {last_log}");
    }

    /// One attempt on ports `port` and `port + 1`. `Err` carries swtpm's output when it exited
    /// (typically because another process bound one of the ports first).
    fn try_spawn(&self, port: u16) -> Result<Child, String> {
        let log_path = self.log_path();
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let state = &self.state;
        let mut child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .arg("--flags")
            .arg("not-need-init,startup-clear")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run swtpm ({e}); install it: apt-get install swtpm swtpm-tools")
            });
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let mut out = String::new();
                    let _ = File::open(&log_path).and_then(|mut f| f.read_to_string(&mut out));
                    return Err(format!("swtpm exited ({status}): {}", out.trim()));
                }
                Ok(None) => {}
                Err(e) => panic!("cannot wait for swtpm: {e}"),
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let mut out = String::new();
                let _ = File::open(&log_path).and_then(|mut f| f.read_to_string(&mut out));
                panic!(
                    "swtpm did not accept connections on {addr} within {START_TIMEOUT:?}; \
                     its output: {}",
                    out.trim()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.kill();
        // `root` (a TempDir) removes the state when it drops after this.
    }
}

/// A recording TCP proxy on 127.0.0.1: forwards every connection to an upstream port on
/// 127.0.0.1 and keeps a copy of every byte that passes, both ways, so tests can check what
/// crosses the wire (for example, that no key travels in the clear to the TPM).
pub struct WireTap {
    port: u16,
    captured: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    /// Listening ports and their accept threads.
    acceptors: Vec<(u16, JoinHandle<()>)>,
}

impl WireTap {
    /// Starts a proxy for `upstream_port` on a free port.
    ///
    /// # Panics
    /// If it cannot bind a port.
    pub fn start(upstream_port: u16) -> WireTap {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a port for the wire tap: {e}"));
        WireTap::new(vec![(listener, upstream_port, true)])
    }

    /// Starts a proxy in front of `swtpm`: its command port is recorded, its control port
    /// (which the swtpm TCTI also uses, at the next port number) only forwarded. Connect with
    /// [`tcti`](Self::tcti).
    ///
    /// # Panics
    /// If it cannot bind two consecutive ports.
    pub fn for_swtpm(swtpm: &Swtpm) -> WireTap {
        for _ in 0..100 {
            let port = free_port_pair();
            let (Ok(command), Ok(control)) = (
                TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
                TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)),
            ) else {
                continue;
            };
            return WireTap::new(vec![
                (command, swtpm.port(), true),
                (control, swtpm.port() + 1, false),
            ]);
        }
        panic!("cannot bind two consecutive ports for the wire tap");
    }

    fn new(listeners: Vec<(TcpListener, u16, bool)>) -> WireTap {
        let captured = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut acceptors = Vec::new();
        for (listener, upstream_port, record) in listeners {
            let port = listener
                .local_addr()
                .unwrap_or_else(|e| panic!("wire tap: {e}"))
                .port();
            let captured = record.then(|| Arc::clone(&captured));
            let stop = Arc::clone(&stop);
            let acceptor = thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port))
                    else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    pump(&client, &server, captured.clone());
                    pump(&server, &client, captured.clone());
                }
            });
            acceptors.push((port, acceptor));
        }
        WireTap {
            port: acceptors.first().map(|(port, _)| *port).unwrap_or_default(),
            captured,
            stop,
            acceptors,
        }
    }

    /// The port to connect to instead of the upstream one.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCTI string that reaches the TPM through this tap (see [`for_swtpm`](Self::for_swtpm)).
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Everything recorded so far, in arrival order (both directions, interleaved by chunk).
    pub fn captured(&self) -> Vec<u8> {
        self.captured
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

/// Copies `from` to `to` on a thread of its own, recording every chunk.
fn pump(from: &TcpStream, to: &TcpStream, captured: Option<Arc<Mutex<Vec<u8>>>>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(Ok(mut c)) = captured.as_ref().map(|c| c.lock()) {
                        c.extend_from_slice(&buf[..n]);
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for WireTap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (port, acceptor) in self.acceptors.drain(..) {
            // Wake the acceptor so it sees the flag.
            let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
            let _ = acceptor.join();
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). For tests that start
/// other local servers; there is an unavoidable window in which another process may take it.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"))
}

/// A random base port `P` such that both `P` and `P + 1` can be bound on 127.0.0.1 right now.
fn free_port_pair() -> u16 {
    let (low, high) = PORT_RANGE;
    for _ in 0..1000 {
        let port = low + (random_u64() % u64::from(high - low)) as u16;
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        let second = TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1));
        if first.is_ok() && second.is_ok() {
            return port;
        }
    }
    panic!("found no two free consecutive ports on 127.0.0.1 in {low}..{high}");
}

/// A random number without a dependency: std's hasher keys are random per `RandomState`.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_restart_wipe_and_drop() {
        let mut tpm = Swtpm::start();
        let first = tpm.tcti();
        assert!(first.starts_with("swtpm:host=127.0.0.1,port="));
        assert!(tpm.state_dir().exists());
        let out = tpm.tpm2_tool("tpm2_getcap", &["properties-fixed"]);
        assert!(out.contains("TPM2_PT_MANUFACTURER"), "{out}");
        tpm.pcr_extend(16);
        tpm.kill();
        assert!(tpm.pid().is_none());
        tpm.restart();
        tpm.pcr_extend(16);
        tpm.wipe_and_restart();
        tpm.tpm2_tool("tpm2_getcap", &["properties-variable"]);
        let dir = tpm.state_dir().to_path_buf();
        drop(tpm);
        assert!(!dir.exists());
    }

    #[test]
    fn wire_tap_forwards_and_records() {
        let upstream = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let upstream_port = upstream.local_addr().unwrap().port();
        let echo = thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        });
        let tap = WireTap::start(upstream_port);
        let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, tap.port())).unwrap();
        client.write_all(b"hello").unwrap();
        let mut reply = [0u8; 5];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"HELLO");
        echo.join().unwrap();
        drop(client);
        assert_eq!(tap.captured(), b"helloHELLO");
    }

    #[test]
    fn two_instances_get_different_ports() {
        let a = Swtpm::start();
        let b = Swtpm::start();
        assert_ne!(a.tcti(), b.tcti());
        assert_ne!(free_port(), 0);
    }
}
