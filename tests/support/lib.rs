//! Shared helpers for the system tests: run the real `coffer` binary against a real swtpm
//! and a real vault file, each test in a world of its own.
//!
//! An [`Env`] owns one swtpm process, one temporary directory (which is also the child's
//! `HOME` and `XDG_DATA_HOME`, so the real user's files are never touched) and a vault path
//! inside it. Every child gets a cleared environment with only what Coffer needs: PIN and
//! new PIN come from files, values from files or stdin, never from arguments.
//!
//! Every run is bounded by [`TIMEOUT`]: a hung child is killed and the test fails with what it
//! printed. Every run is also checked for panics, and every *failing* run is checked for the
//! PIN, the recovery code and any value the test registered with [`Env::sensitive`], in
//! stdout and stderr alike.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub mod daemon;

pub use coffer_testkit::{free_port, Swtpm};
pub use serde_json::Value;
use tempfile::TempDir;

/// How long one `coffer` process may run before the harness kills it and fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Exit codes from `coffer --help`.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const AUTH: i32 = 3;
    pub const NOT_FOUND: i32 = 4;
    pub const CONFLICT: i32 = 5;
    pub const TAMPERED: i32 = 6;
    pub const TPM_UNAVAILABLE: i32 = 7;
    pub const BUSY: i32 = 8;
}

/// The PIN every [`Env`] starts with: distinctive, so a leak is easy to spot.
pub const PIN: &str = "pin-Qx7k-Wm3v";

/// The `coffer` binary of the current source: `<target>/debug/coffer`, next to the
/// `deps/` directory the test executable runs from, built (once per test process) by
/// `cargo build -p coffer-cli` first. `cargo test` alone does not rebuild another
/// package's binary, so without this an engine change was tested against the previous
/// binary. `COFFER_BIN` points at a binary to use as it is.
pub fn coffer_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_coffer).clone()
}

fn build_coffer() -> PathBuf {
    if let Some(bin) = std::env::var_os("COFFER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("cannot find the test executable's path");
    // target/debug/deps/<test>-<hash> -> target/debug/coffer
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is not in <target>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory is inside the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => "dev",
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "coffer-cli",
            // `coffer` hands commands that need keys in its own process to `coffer-tpm`.
            "--bins",
            "--profile",
        ])
        .arg(profile)
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("cannot run cargo to build the coffer binary");
    assert!(
        out.status.success(),
        "building the coffer binary failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join("coffer");
    assert!(bin.is_file(), "cargo built no binary at {}", bin.display());
    bin
}

/// One finished `coffer` process.
pub struct Run {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The exit code (-1 if the process died from a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// stdout as UTF-8 text.
    #[track_caller]
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone())
            .unwrap_or_else(|_| panic!("stdout is not UTF-8\n{self}"))
    }

    /// stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }

    /// stdout as JSON lines (one document per non-empty line).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {l:?} is not JSON ({e})\n{self}"))
            })
            .collect()
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code(), exit::OK, "expected success\n{self}");
        self
    }

    /// Asserts the exit code and that stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Run {
        self.fails_all(code, &[needle])
    }

    /// Asserts the exit code and that stderr contains every one of `needles`
    /// (case-insensitive).
    #[track_caller]
    pub fn fails_all(self, code: i32, needles: &[&str]) -> Run {
        assert_eq!(self.code(), code, "expected exit code {code}\n{self}");
        let stderr = self.stderr.to_lowercase();
        for needle in needles {
            assert!(
                stderr.contains(&needle.to_lowercase()),
                "expected stderr to mention {needle:?}\n{self}"
            );
        }
        self
    }

    /// Asserts the exit code and that stderr contains at least one of `needles`
    /// (case-insensitive): for messages whose wording may reasonably vary.
    #[track_caller]
    pub fn fails_any(self, code: i32, needles: &[&str]) -> Run {
        assert_eq!(self.code(), code, "expected exit code {code}\n{self}");
        let stderr = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| stderr.contains(&n.to_lowercase())),
            "expected stderr to mention one of {needles:?}\n{self}"
        );
        self
    }

    /// Asserts stderr (case-insensitive) contains `needle`.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "expected stderr to mention {needle:?}\n{self}"
        );
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- command: {}", self.cmdline)?;
        writeln!(f, "--- status: {} (after {:?})", self.status, self.elapsed)?;
        let stdout = String::from_utf8_lossy(&self.stdout);
        let shown: String = stdout.chars().take(4000).collect();
        writeln!(
            f,
            "--- stdout ({} bytes):\n{shown}{}",
            self.stdout.len(),
            if shown.len() < stdout.len() {
                "…"
            } else {
                ""
            }
        )?;
        write!(f, "--- stderr:\n{}", self.stderr)
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A `coffer` invocation being put together; see [`Env::cmd`].
pub struct Cmd<'a> {
    env: &'a Env,
    args: Vec<OsString>,
    vars: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    umask: Option<libc::mode_t>,
    program: Option<PathBuf>,
}

impl<'a> Cmd<'a> {
    /// Runs this program instead of the freshly built `coffer` (for example a copy of it
    /// somewhere else).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Runs the child under this umask.
    pub fn umask(mut self, mask: libc::mode_t) -> Self {
        self.umask = Some(mask);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets (or overrides) an environment variable of the child.
    pub fn var(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.vars
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable the harness would set.
    pub fn unset(mut self, key: impl AsRef<OsStr>) -> Self {
        self.vars.push((key.as_ref().to_owned(), None));
        self
    }

    /// Pipes these bytes to the child's stdin (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(self.program.clone().unwrap_or_else(coffer_bin));
        command.args(&self.args);
        command.env_clear();
        for (key, value) in self.env.base_vars() {
            command.env(key, value);
        }
        for (key, value) in &self.vars {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(mask) = self.umask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask(2) is async-signal-safe and touches no memory; nothing else runs
            // between fork and exec here.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        command
    }

    fn cmdline(&self) -> String {
        let mut text = String::from("coffer");
        for arg in &self.args {
            text.push(' ');
            text.push_str(&arg.to_string_lossy());
        }
        for (key, value) in &self.vars {
            match value {
                Some(v) => text.push_str(&format!(
                    " [{}={}]",
                    key.to_string_lossy(),
                    v.to_string_lossy()
                )),
                None => text.push_str(&format!(" [unset {}]", key.to_string_lossy())),
            }
        }
        if let Some(stdin) = &self.stdin {
            text.push_str(&format!(" <stdin: {} bytes>", stdin.len()));
        }
        text
    }

    /// Starts the child without waiting: stdin gets the given bytes and is closed, stdout
    /// is discarded, stderr goes to a file (see [`Spawned::stderr`]). For tests that kill
    /// the child themselves.
    pub fn spawn(self) -> Spawned {
        let cmdline = self.cmdline();
        let mut command = self.command();
        let stderr_path = self
            .env
            .dir
            .path()
            .join(format!("spawned-{}.stderr", random_hex(12)));
        let stderr = std::fs::File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let mut pipe = child.stdin.take().expect("piped stdin");
        let bytes = self.stdin.unwrap_or_default();
        // Small inputs fit the pipe buffer; the write fails harmlessly if the child is gone.
        let _ = pipe.write_all(&bytes);
        drop(pipe);
        Spawned {
            child,
            stderr_path,
            cmdline,
        }
    }

    /// Runs the child to completion (or kills it after the timeout and fails the test), and
    /// checks its output for panics and, if it failed, for leaked secrets.
    #[track_caller]
    pub fn run(self) -> Run {
        let cmdline = self.cmdline();
        let mut command = self.command();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let pid = child.id();
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = self.stdin.clone().unwrap_or_default();
        let writer = thread::spawn(move || {
            // The child may exit without reading everything (a rejected value).
            let _ = stdin.write_all(&input);
        });
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out_reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let err_reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            buf
        });
        let (done_tx, done_rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(());
            status
        });
        let timed_out = done_rx.recv_timeout(self.timeout).is_err();
        if timed_out {
            // Our own child, by its pid; it is not reaped yet, so the pid is still its own.
            // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let status = waiter
            .join()
            .expect("waiter thread")
            .unwrap_or_else(|e| panic!("cannot wait for {cmdline}: {e}"));
        let _ = writer.join();
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        let run = Run {
            cmdline,
            status,
            stdout,
            stderr,
            elapsed: started.elapsed(),
        };
        assert!(
            !timed_out,
            "coffer did not finish within {:?} and was killed (a hang)\n{run}",
            self.timeout
        );
        self.env.check_hygiene(&run);
        run
    }
}

/// A `coffer` process started by [`Cmd::spawn`].
pub struct Spawned {
    pub child: Child,
    pub cmdline: String,
    stderr_path: PathBuf,
}

impl Spawned {
    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGKILL to it (our own child, by its pid).
    pub fn sigkill(&self) {
        sigkill(&self.child);
    }

    /// Waits for it with the harness timeout, killing it (and failing) if it hangs.
    #[track_caller]
    pub fn wait(&mut self) -> ExitStatus {
        let status = wait_bounded(&mut self.child);
        let stderr = self.stderr();
        assert!(
            !stderr.contains("panicked"),
            "{} panicked: {stderr}",
            self.cmdline
        );
        status
    }
}

/// One test's world: a swtpm, a temporary directory and a vault path in it.
pub struct Env {
    pub swtpm: Swtpm,
    pub dir: TempDir,
    /// `<dir>/vault/vault.db`; Coffer creates `<dir>/vault` itself (0700).
    pub vault: PathBuf,
    pub pin_file: PathBuf,
    pub new_pin_file: PathBuf,
    /// Overrides the swtpm's TCTI when set.
    tcti: Mutex<Option<String>>,
    /// Values that must never appear in the output of a failing command.
    secrets: Mutex<Vec<Vec<u8>>>,
    /// Variables every later `coffer` process gets on top of the base ones (never the
    /// swtpm): for example a fake clock.
    extra_vars: Mutex<Vec<(OsString, OsString)>>,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// A fresh swtpm and an empty directory; no vault yet (see [`init`](Self::init)).
    pub fn new() -> Env {
        let swtpm = Swtpm::start();
        let dir = tempfile::Builder::new()
            .prefix("coffer-system-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let vault = dir.path().join("vault").join("vault.db");
        let pin_file = dir.path().join("pin");
        let new_pin_file = dir.path().join("new-pin");
        std::fs::write(&pin_file, PIN).expect("write the PIN file");
        let env = Env {
            swtpm,
            dir,
            vault,
            pin_file,
            new_pin_file,
            tcti: Mutex::new(None),
            secrets: Mutex::new(Vec::new()),
            extra_vars: Mutex::new(Vec::new()),
        };
        env.sensitive(PIN);
        env
    }

    /// The TCTI children get: the swtpm's (which changes when it restarts) unless overridden.
    pub fn tcti(&self) -> String {
        self.tcti
            .lock()
            .expect("tcti lock")
            .clone()
            .unwrap_or_else(|| self.swtpm.tcti())
    }

    /// Points every later command at another TCTI (None: back to the swtpm).
    pub fn set_tcti(&self, tcti: Option<String>) {
        *self.tcti.lock().expect("tcti lock") = tcti;
    }

    fn base_vars(&self) -> Vec<(OsString, OsString)> {
        let dir = self.dir.path().as_os_str().to_owned();
        let mut vars: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), dir.clone()),
            ("XDG_DATA_HOME".into(), dir.clone()),
            ("XDG_CONFIG_HOME".into(), dir.clone()),
            ("XDG_RUNTIME_DIR".into(), dir),
            ("COFFER_VAULT".into(), self.vault.clone().into()),
            ("COFFER_TCTI".into(), self.tcti().into()),
            ("COFFER_PIN_FILE".into(), self.pin_file.clone().into()),
            (
                "COFFER_NEW_PIN_FILE".into(),
                self.new_pin_file.clone().into(),
            ),
            ("TSS2_LOG".into(), "all+NONE".into()),
            ("RUST_BACKTRACE".into(), "0".into()),
            ("LC_ALL".into(), "C".into()),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            vars.push(("PATH".into(), path));
        }
        vars.extend(self.extra_vars.lock().expect("extra vars lock").clone());
        vars
    }

    /// Gives every later `coffer` process (commands and daemons started from now on) the
    /// variable `name`; the swtpm is not affected.
    pub fn set_var(&self, name: impl Into<OsString>, value: impl Into<OsString>) {
        let (name, value) = (name.into(), value.into());
        let mut vars = self.extra_vars.lock().expect("extra vars lock");
        vars.retain(|(n, _)| *n != name);
        vars.push((name, value));
    }

    /// Registers a value that no failing command may ever print.
    pub fn sensitive(&self, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        assert!(
            value.len() >= 8,
            "register only distinctive values (8+ bytes) as sensitive"
        );
        self.secrets
            .lock()
            .expect("secrets lock")
            .push(value.to_vec());
    }

    #[track_caller]
    fn check_hygiene(&self, run: &Run) {
        assert!(
            !run.stderr.contains("panicked"),
            "coffer panicked instead of reporting an error\n{run}"
        );
        if run.code() == 0 {
            return;
        }
        let secrets = self.secrets.lock().expect("secrets lock").clone();
        for secret in secrets.iter() {
            let shown = String::from_utf8_lossy(secret);
            assert!(
                !contains(run.stderr.as_bytes(), secret),
                "a failing command printed a secret ({shown:?}) on stderr\n{run}"
            );
            assert!(
                !contains(&run.stdout, secret),
                "a failing command printed a secret ({shown:?}) on stdout\n{run}"
            );
        }
    }

    /// A `coffer` invocation with this environment.
    pub fn cmd<I, S>(&self, args: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            env: self,
            args: Vec::new(),
            vars: Vec::new(),
            stdin: None,
            timeout: TIMEOUT,
            umask: None,
            program: None,
        }
        .args(args)
    }

    /// Runs `coffer ARGS` with empty stdin.
    #[track_caller]
    pub fn coffer(&self, args: &[&str]) -> Run {
        self.cmd(args).run()
    }

    /// Runs `coffer ARGS` with `stdin` piped in.
    #[track_caller]
    pub fn coffer_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.cmd(args).stdin(stdin).run()
    }

    /// Runs `coffer ARGS` with another PIN file's contents as the PIN.
    #[track_caller]
    pub fn coffer_with_pin(&self, pin: &str, args: &[&str]) -> Run {
        let file = self.file(&format!("pin-{}", random_hex(6)), pin.as_bytes());
        self.cmd(args).var("COFFER_PIN_FILE", file).run()
    }

    /// Writes a file in the temporary directory and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Sets the PIN later commands use.
    pub fn set_pin(&self, pin: &str) {
        std::fs::write(&self.pin_file, pin).expect("write the PIN file");
        if pin.len() >= 8 {
            self.sensitive(pin);
        }
    }

    /// Sets the new PIN for `recover` and `change-pin`.
    pub fn set_new_pin(&self, pin: &str) {
        std::fs::write(&self.new_pin_file, pin).expect("write the new-PIN file");
        if pin.len() >= 8 {
            self.sensitive(pin);
        }
    }

    /// `coffer init -o json`: creates the vault, returns the recovery code.
    #[track_caller]
    pub fn init(&self) -> String {
        self.init_with(&[])
    }

    /// `coffer init -o json EXTRA…` (e.g. `--pcrs 7`); returns the recovery code.
    #[track_caller]
    pub fn init_with(&self, extra: &[&str]) -> String {
        let mut args = vec!["init", "--output", "json"];
        args.extend_from_slice(extra);
        let run = self.coffer(&args).ok();
        let json = run.json();
        assert_eq!(
            json["vault"].as_str(),
            Some(self.vault.to_str().expect("UTF-8 path")),
            "{run}"
        );
        assert!(json["vault_id"].as_str().is_some(), "{run}");
        let code = json["recovery_code"]
            .as_str()
            .unwrap_or_else(|| panic!("no recovery_code in\n{run}"))
            .to_owned();
        self.sensitive(&code);
        code
    }

    /// Writes a recovery code to a file for `--recovery-code-file`.
    pub fn code_file(&self, code: &str) -> PathBuf {
        self.file(&format!("code-{}", random_hex(6)), code.as_bytes())
    }

    /// `secret create NAME --value-file F`; returns the new version id.
    #[track_caller]
    pub fn create(&self, name: &str, value: &[u8]) -> String {
        let file = self.file(&format!("value-{}", random_hex(6)), value);
        let run = self
            .cmd(["secret", "create", name, "--output", "json", "--value-file"])
            .arg(&file)
            .run()
            .ok();
        let _ = std::fs::remove_file(file);
        version_id_of(&run)
    }

    /// `secret put NAME` with the value on stdin; returns the new version id.
    #[track_caller]
    pub fn put(&self, name: &str, value: &[u8]) -> String {
        let run = self
            .coffer_stdin(
                &[
                    "secret",
                    "put",
                    name,
                    "--value-file",
                    "-",
                    "--output",
                    "json",
                ],
                value,
            )
            .ok();
        version_id_of(&run)
    }

    /// `secret get NAME EXTRA…`: the exact bytes printed.
    #[track_caller]
    pub fn get(&self, name: &str, extra: &[&str]) -> Vec<u8> {
        let mut args = vec!["secret", "get", name];
        args.extend_from_slice(extra);
        self.coffer(&args).ok().stdout
    }

    /// `secret describe NAME -o json`.
    #[track_caller]
    pub fn describe(&self, name: &str) -> Value {
        self.coffer(&["secret", "describe", name, "--output", "json"])
            .ok()
            .json()
    }

    /// `secret versions NAME -o json`: newest first.
    #[track_caller]
    pub fn versions(&self, name: &str) -> Vec<Value> {
        let run = self
            .coffer(&["secret", "versions", name, "--output", "json"])
            .ok();
        run.json()
            .as_array()
            .unwrap_or_else(|| panic!("versions is not a JSON array\n{run}"))
            .clone()
    }

    /// The labels of one version as `versions` shows them, sorted.
    #[track_caller]
    pub fn labels_of(&self, name: &str, version_id: &str) -> Vec<String> {
        let versions = self.versions(name);
        let version = versions
            .iter()
            .find(|v| v["version_id"] == version_id)
            .unwrap_or_else(|| panic!("no version {version_id} of {name} in {versions:#?}"));
        let mut labels: Vec<String> = version["labels"]
            .as_array()
            .expect("labels array")
            .iter()
            .map(|l| l.as_str().expect("label string").to_owned())
            .collect();
        labels.sort();
        labels
    }

    /// The names `secret list --all -o json EXTRA…` returns, in order.
    #[track_caller]
    pub fn list_names(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["secret", "list", "--all", "--output", "json"];
        args.extend_from_slice(extra);
        let run = self.coffer(&args).ok();
        names_of(&run.json())
    }

    /// `audit list --limit 10000 -o json`: newest first.
    #[track_caller]
    pub fn audit(&self) -> Vec<Value> {
        self.coffer(&["audit", "list", "--limit", "10000", "--output", "json"])
            .ok()
            .json_lines()
    }

    /// A direct SQLite connection to the vault file, as an attacker or a crash would see it.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.vault)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.vault.display()));
        conn.busy_timeout(Duration::from_secs(10))
            .expect("set busy timeout");
        conn
    }

    /// The vault file and its `-wal` (if any), as raw bytes.
    pub fn raw_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        ["", "-wal", "-shm", "-journal"]
            .iter()
            .filter_map(|suffix| {
                let mut path = self.vault.as_os_str().to_owned();
                path.push(suffix);
                let path = PathBuf::from(path);
                std::fs::read(&path).ok().map(|bytes| (path, bytes))
            })
            .collect()
    }
}

/// The `version_id` of a create/put JSON answer.
#[track_caller]
pub fn version_id_of(run: &Run) -> String {
    run.json()["version_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no version_id in\n{run}"))
        .to_owned()
}

/// The `name`s of the `items` of a list page.
#[track_caller]
pub fn names_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page:#}"))
        .iter()
        .map(|item| item["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
}

/// `n` random lowercase hex characters.
pub fn random_hex(n: usize) -> String {
    random_bytes(n.div_ceil(2))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..n]
        .to_owned()
}

/// Decodes standard base64 (with or without padding, surrounding whitespace ignored).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encodes standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends SIGKILL to a child this test started, by its pid.
pub fn sigkill(child: &Child) {
    // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions; the
    // child is not reaped yet, so its pid is still its own.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
    }
}

/// Waits for a child with the harness timeout, killing it (and failing) if it hangs.
#[track_caller]
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("coffer (pid {}) hung for {TIMEOUT:?}", child.id());
            }
            Err(e) => panic!("cannot wait for coffer: {e}"),
        }
    }
}

/// TPM2_CC_CreatePrimary.
pub const TPM2_CC_CREATE_PRIMARY: u32 = 0x0000_0131;
/// TPM2_CC_Load.
pub const TPM2_CC_LOAD: u32 = 0x0000_0157;

/// A TCP proxy in front of a swtpm that understands TPM command framing and can stop
/// answering at a chosen point: after it has relayed the response to a given command, every
/// later command is held forever (the client blocks). This puts a `coffer` process in a
/// known state (for instance, with a key loaded in the TPM) before the test kills it.
pub struct TpmProxy {
    port: u16,
    stall_after: Arc<AtomicU32>,
    stalling: Arc<AtomicBool>,
    stalled: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptors: Vec<(u16, thread::JoinHandle<()>)>,
}

impl TpmProxy {
    /// Starts a proxy for the swtpm whose command port is `upstream` (control port
    /// `upstream + 1`).
    pub fn start(upstream: u16) -> TpmProxy {
        let (command, control, port) = bind_port_pair();
        let stall_after = Arc::new(AtomicU32::new(0));
        let stalling = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut acceptors = Vec::new();
        {
            let (stall_after, stalling, stalled, stop) = (
                Arc::clone(&stall_after),
                Arc::clone(&stalling),
                Arc::clone(&stalled),
                Arc::clone(&stop),
            );
            acceptors.push((
                port,
                thread::spawn(move || {
                    for client in command.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        let (stall_after, stalling, stalled, stop) = (
                            Arc::clone(&stall_after),
                            Arc::clone(&stalling),
                            Arc::clone(&stalled),
                            Arc::clone(&stop),
                        );
                        thread::spawn(move || {
                            relay_commands(
                                client,
                                upstream,
                                &stall_after,
                                &stalling,
                                &stalled,
                                &stop,
                            )
                        });
                    }
                }),
            ));
        }
        {
            let stop = Arc::clone(&stop);
            acceptors.push((
                port + 1,
                thread::spawn(move || {
                    for client in control.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream + 1))
                        else {
                            continue;
                        };
                        pump(&client, &server);
                        pump(&server, &client);
                    }
                }),
            ));
        }
        TpmProxy {
            port,
            stall_after,
            stalling,
            stalled,
            stop,
            acceptors,
        }
    }

    /// The TCTI that reaches the TPM through this proxy.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// After the next response to `command_code`, hold every later command unanswered.
    pub fn stall_after(&self, command_code: u32) {
        self.stall_after.store(command_code, Ordering::SeqCst);
    }

    /// Waits until some client is held (true), or `timeout` passes (false).
    pub fn wait_until_stalled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stalled.load(Ordering::SeqCst) > 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Whether the proxy has started holding commands.
    pub fn is_stalling(&self) -> bool {
        self.stalling.load(Ordering::SeqCst)
    }
}

impl Drop for TpmProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (port, acceptor) in self.acceptors.drain(..) {
            let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
            let _ = acceptor.join();
        }
    }
}

/// Binds two consecutive free ports on 127.0.0.1 (below swtpm's range in the testkit).
fn bind_port_pair() -> (TcpListener, TcpListener, u16) {
    for _ in 0..1000 {
        let r = random_bytes(2);
        let port = 12_000 + u16::from_le_bytes([r[0], r[1]]) % 7_000;
        if let (Ok(a), Ok(b)) = (
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
            TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)),
        ) {
            return (a, b, port);
        }
    }
    panic!("found no two free consecutive ports on 127.0.0.1");
}

/// Reads one TPM command or response (10-byte header with the total size at bytes 2..6).
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; 10];
    stream.read_exact(&mut frame).ok()?;
    let size = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]) as usize;
    if !(10..=1 << 20).contains(&size) {
        return None;
    }
    frame.resize(size, 0);
    stream.read_exact(&mut frame[10..]).ok()?;
    Some(frame)
}

fn relay_commands(
    mut client: TcpStream,
    upstream: u16,
    stall_after: &AtomicU32,
    stalling: &AtomicBool,
    stalled: &AtomicUsize,
    stop: &AtomicBool,
) {
    let Ok(mut server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)) else {
        return;
    };
    while let Some(command) = read_frame(&mut client) {
        if stalling.load(Ordering::SeqCst) {
            stalled.fetch_add(1, Ordering::SeqCst);
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            break;
        }
        let code = u32::from_be_bytes([command[6], command[7], command[8], command[9]]);
        if server.write_all(&command).is_err() {
            break;
        }
        let Some(response) = read_frame(&mut server) else {
            break;
        };
        if client.write_all(&response).is_err() {
            break;
        }
        let trigger = stall_after.load(Ordering::SeqCst);
        if trigger != 0 && code == trigger {
            stalling.store(true, Ordering::SeqCst);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies bytes from one stream to the other on a thread of its own.
fn pump(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..40 {
            let bytes = random_bytes(n);
            let text = base64_encode(&bytes);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(base64_decode(&text).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert!(base64_decode("Zm8*").is_none());
    }

    #[test]
    fn contains_finds_needles() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(!contains(b"abcdef", b"xyz"));
        assert!(!contains(b"abc", b""));
    }
}
