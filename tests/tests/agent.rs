//! The agent (`coffer unlock` / `lock`), secret references, `coffer run`, `env` and `inject`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_system_tests::{exit, Env};

/// Locks the agent when a test ends, however it ends, so no agent outlives its test.
struct Unlocked<'a>(&'a Env);

impl Drop for Unlocked<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(["lock"]).run();
    }
}

fn unlock<'a>(env: &'a Env, timeout: &str) -> Unlocked<'a> {
    env.coffer(&["unlock", "--timeout", timeout]).ok();
    Unlocked(env)
}

/// `coffer status -o json`.
fn status(env: &Env) -> serde_json::Value {
    env.coffer(&["status", "--output", "json"]).ok().json()
}

fn agent_pid(env: &Env) -> Option<i32> {
    status(env)["agent_pid"].as_i64().map(|p| p as i32)
}

fn socket(env: &Env) -> PathBuf {
    PathBuf::from(
        status(env)["agent_socket"]
            .as_str()
            .expect("status names the agent socket"),
    )
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn after_unlock_commands_need_no_pin_until_lock() {
    let env = Env::new();
    env.init();
    env.create("app/token", b"token-value-123");
    let guard = unlock(&env, "5m");
    assert_eq!(status(&env)["agent"], "running, unlocked");
    let run = env
        .cmd(["secret", "get", "app/token"])
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    assert_eq!(run.stdout, b"token-value-123");
    // Writes go through the agent too, and the audit log names the client process.
    env.cmd(["secret", "put", "app/token", "--value-file", "-"])
        .stdin("token-value-456")
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    let entries = env.audit();
    let put = entries
        .iter()
        .find(|e| e["operation"] == "put_secret_value")
        .expect("put audited");
    assert_eq!(put["process"], "coffer");
    assert_ne!(put["pid"], serde_json::json!(agent_pid(&env).expect("pid")));
    env.coffer(&["lock"]).ok().stderr_has("");
    drop(guard);
    env.cmd(["secret", "get", "app/token"])
        .unset("COFFER_PIN_FILE")
        .run()
        .fails(exit::AUTH, "coffer unlock");
    assert_eq!(status(&env)["agent"], "not running");
    // Without an agent the CLI unseals the keys itself.
    assert_eq!(env.get("app/token", &[]), b"token-value-456");
}

#[test]
fn unlock_with_a_wrong_pin_starts_no_agent() {
    let env = Env::new();
    env.init();
    env.coffer_with_pin("not-the-pin", &["unlock"])
        .fails(exit::AUTH, "wrong PIN");
    assert_eq!(status(&env)["agent"], "not running");
    assert!(!socket(&env).exists());
}

#[test]
fn the_agent_locks_itself_after_its_idle_timeout() {
    let env = Env::new();
    env.init();
    env.create("x", b"value-for-timeout");
    let _guard = unlock(&env, "2s");
    let pid = agent_pid(&env).expect("agent pid");
    wait_until("the agent exits", Duration::from_secs(15), || {
        !process_alive(pid) || is_zombie(pid)
    });
    assert!(!socket(&env).exists(), "the socket is removed");
    env.cmd(["secret", "get", "x"])
        .unset("COFFER_PIN_FILE")
        .run()
        .fails(exit::AUTH, "coffer unlock");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

#[test]
fn a_killed_agent_is_an_error_or_a_fallback_never_a_hang() {
    let env = Env::new();
    env.init();
    env.create("k", b"value-for-kill-test");
    let _guard = unlock(&env, "5m");
    let pid = agent_pid(&env).expect("agent pid");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        // SAFETY: sending SIGKILL to the agent this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let start = Instant::now();
    let mut outcomes = Vec::new();
    while start.elapsed() < Duration::from_millis(600) {
        let run = env
            .cmd(["secret", "get", "k"])
            .timeout(Duration::from_secs(20))
            .run();
        assert!(!run.stderr.contains("panicked"), "{run}");
        outcomes.push(run.code());
        if run.code() == 0 {
            assert_eq!(run.stdout, b"value-for-kill-test");
        } else {
            assert!(
                run.stderr.contains("agent"),
                "a failure names the agent\n{run}"
            );
        }
    }
    killer.join().expect("killer thread");
    // After the kill the socket is stale: the CLI falls back to unsealing with the PIN.
    assert_eq!(env.get("k", &[]), b"value-for-kill-test");
    assert!(outcomes.len() > 2, "several requests ran: {outcomes:?}");
}

#[test]
fn a_stale_socket_does_not_stop_a_new_agent() {
    let env = Env::new();
    env.init();
    env.create("s", b"value-for-stale-socket");
    let path = socket(&env);
    std::fs::create_dir_all(path.parent().expect("socket dir")).expect("runtime dir");
    std::fs::set_permissions(
        path.parent().expect("dir"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    // A socket file nobody listens on, as a crashed agent leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind a socket"));
    assert!(path.exists());
    // Clients treat it as "no agent" …
    assert_eq!(env.get("s", &[]), b"value-for-stale-socket");
    // … and a new agent replaces it.
    let _guard = unlock(&env, "5m");
    let run = env
        .cmd(["secret", "get", "s"])
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    assert_eq!(run.stdout, b"value-for-stale-socket");
    // A second agent for the same vault is refused while the first one runs.
    env.coffer(&["agent", "--timeout", "1m"])
        .fails(exit::FAILURE, "already serves");
}

/// Creates (once) an unprivileged user for the cross-user test.
fn other_user() -> Option<(u32, u32)> {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let name = "coffer-test-other";
    let exists = Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let raced = Command::new("id")
            .arg("-u")
            .arg(name)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(made || raced, "useradd {name} failed");
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).arg(name).output().expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    Some((id("-u"), id("-g")))
}

#[test]
fn another_user_is_refused_even_if_the_socket_is_reachable() {
    let Some((uid, gid)) = other_user() else {
        panic!("this test creates a second user and must run as root (CI does)");
    };
    let env = Env::new();
    env.init();
    env.create("private", b"value-other-user-must-not-see");
    let _guard = unlock(&env, "5m");
    let path = socket(&env);
    // Simulate a misconfiguration that exposes the socket: only SO_PEERCRED stands guard.
    for dir in [
        env.dir.path().to_path_buf(),
        path.parent().expect("dir").to_path_buf(),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod socket");
    // The real client of the other user refuses to talk to an agent it does not own (see
    // the next test), so the other user speaks the frame protocol by hand: the agent's own
    // SO_PEERCRED check is what stands guard here.
    let raw_client = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = b'{"GetSecretValue":{"name":"private"}}'
try:
    s.sendall(struct.pack('>I', len(body)) + body)
except OSError:
    pass
(length,) = struct.unpack('>I', s.recv(4))
data = b''
while len(data) < length:
    chunk = s.recv(length - len(data))
    if not chunk:
        break
    data += chunk
print(data.decode())
"#;
    let out = as_user(uid, gid)
        .args(["python3", "-c", raw_client])
        .arg(&path)
        .env_clear()
        .output()
        .expect("run a raw client as another user");
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.contains(&format!("uid {uid} was refused")),
        "{reply} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!reply.contains("value-other-user-must-not-see"));
    // The other user's real client refuses the socket before sending anything.
    let out = as_user(uid, gid)
        .arg(coffer_system_tests::coffer_bin())
        .args(["secret", "get", "private"])
        .env_clear()
        .env("COFFER_AGENT_SOCKET", &path)
        .env("COFFER_VAULT", &env.vault)
        .env("TSS2_LOG", "all+NONE")
        .output()
        .expect("run a client as another user");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("not to you"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("value-other-user-must-not-see"));
    let refused = env.audit();
    assert!(
        refused.iter().any(|e| e["operation"] == "agent_connect"
            && e["result"] == "forbidden"
            && e["uid"] == uid),
        "the refusal is audited"
    );
    // The rightful user is still served.
    let run = env
        .cmd(["secret", "get", "private"])
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    assert_eq!(run.stdout, b"value-other-user-must-not-see");
}

#[test]
fn run_resolves_references_and_passes_the_exit_code_through() {
    let env = Env::new();
    env.init();
    env.create("db", br#"{"user":"app","password":"pw-first-version"}"#);
    env.put("db", br#"{"user":"app","password":"pw-second-version"}"#);
    env.create("plain", b"plain-value-xyz");
    let envfile = env.file(".env", b"# settings\nDB_USER=coffer://db#user\nOLD_PW='coffer://db?label=PREVIOUS#password'\nLITERAL=just text\n");
    let run = env
        .cmd(["run", "--env-file"])
        .arg(&envfile)
        .args(["--", "sh", "-c", "printf '%s|%s|%s|%s|%s' \"$DB_USER\" \"$OLD_PW\" \"$LITERAL\" \"$PW\" \"$PLAIN\"; exit 42"])
        .var("PW", "coffer://db#password")
        .var("PLAIN", "coffer://plain")
        .run();
    assert_eq!(run.code(), 42, "{run}");
    assert_eq!(
        run.text(),
        "app|pw-first-version|just text|pw-second-version|plain-value-xyz"
    );
}

#[test]
fn run_does_not_start_the_command_when_a_reference_fails() {
    let env = Env::new();
    env.init();
    env.create("db", br#"{"user":"app"}"#);
    let marker = env.dir.path().join("started");
    let command = format!("touch {}", marker.display());
    for (value, needle) in [
        ("coffer://missing", "no secret named"),
        ("coffer://db#password", "no field"),
        ("coffer://db?label=NOPE", "no version labelled"),
        ("coffer://bad name", "not valid"),
    ] {
        let run = env
            .cmd(["run", "--", "sh", "-c", &command])
            .var("X", value)
            .run();
        assert_ne!(run.code(), 0, "{run}");
        assert!(
            run.stderr.to_lowercase().contains(needle),
            "{needle}\n{run}"
        );
        assert!(
            run.stderr.contains("environment variable X"),
            "names the variable\n{run}"
        );
        assert!(!marker.exists(), "the command must not start");
    }
    env.cmd(["run", "--", "/nonexistent/program"])
        .run()
        .fails(127, "cannot run");
}

#[test]
fn signals_reach_the_command() {
    let env = Env::new();
    env.init();
    let child = Command::new(coffer_system_tests::coffer_bin())
        .args(["run", "--", "sleep", "30"])
        .env("COFFER_VAULT", &env.vault)
        .env("COFFER_TCTI", env.tcti())
        .env("COFFER_PIN_FILE", &env.pin_file)
        .env("XDG_RUNTIME_DIR", env.dir.path())
        .spawn()
        .expect("spawn coffer run");
    let pid = child.id() as i32;
    let mut child = child;
    // Wait until the pid runs `sleep` (coffer has exec'd it).
    wait_until("coffer execs the command", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() == "sleep")
            .unwrap_or(false)
    });
    // SAFETY: signalling the process this test spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn env_and_inject_render_references() {
    let env = Env::new();
    env.init();
    env.create("svc", br#"{"user":"svc-user","password":"it's-secret-9"}"#);
    let envfile = env.file(
        "app.env",
        b"USER=coffer://svc#user\nPASS=coffer://svc#password\n",
    );
    let run = env.cmd(["env", "--env-file"]).arg(&envfile).run().ok();
    assert_eq!(
        run.text(),
        "export USER='svc-user'\nexport PASS='it'\\''s-secret-9'\n"
    );
    let template = env.file(
        "config.tmpl",
        b"user: {{ coffer://svc#user }}\npass: {{coffer://svc#password}}\nkeep: {{ other }}\n",
    );
    let out = env.dir.path().join("config.yml");
    std::fs::write(&out, "old contents").expect("pre-existing output");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    env.cmd(["inject", "-i"])
        .arg(&template)
        .arg("-f")
        .arg(&out)
        .run()
        .ok();
    assert_eq!(
        std::fs::read_to_string(&out).expect("rendered"),
        "user: svc-user\npass: it's-secret-9\nkeep: {{ other }}\n"
    );
    assert_eq!(
        std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    // A bad reference writes nothing.
    let broken = env.file("broken.tmpl", b"a: {{ coffer://svc#nope }}\n");
    let untouched = env.dir.path().join("untouched.yml");
    env.cmd(["inject", "-i"])
        .arg(&broken)
        .arg("-f")
        .arg(&untouched)
        .run()
        .fails(exit::USAGE, "broken.tmpl:1");
    assert!(!untouched.exists());
}

#[test]
fn secret_get_takes_a_reference() {
    let env = Env::new();
    env.init();
    env.create("j", br#"{"port":5432,"host":"db.internal"}"#);
    assert_eq!(env.get("coffer://j#port", &[]), b"5432");
    assert_eq!(env.get("coffer://j#host", &[]), b"db.internal");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = env.coffer(&["completions", shell]).ok();
        assert!(
            run.text().contains("unlock"),
            "{shell} completion knows the unlock command"
        );
    }
    let man = env.coffer(&["man"]).ok();
    assert!(man.text().contains(".TH coffer"));
}

/// The review's attack: with the vault unlocked by the agent, any process of the user
/// ran `change-pin` and re-sealed every key under a PIN of its choosing. The current PIN
/// must now be proved (a TPM unseal), so without it nothing changes.
#[test]
fn change_pin_through_the_agent_needs_the_current_pin() {
    let env = Env::new();
    env.init();
    env.create("owned", b"owner-value-9876");
    let guard = unlock(&env, "5m");
    let wrong = env.file("wrong-pin", b"not-the-pin-0000");
    let attacker = env.file("attacker-pin", b"attacker-pin-1234");
    env.cmd(["change-pin"])
        .var("COFFER_PIN_FILE", &wrong)
        .var("COFFER_NEW_PIN_FILE", &attacker)
        .run()
        .fails(exit::AUTH, "wrong PIN");
    let no_pin = env
        .cmd(["change-pin"])
        .unset("COFFER_PIN_FILE")
        .var("COFFER_NEW_PIN_FILE", &attacker)
        .run();
    assert_eq!(no_pin.code(), exit::AUTH, "{no_pin}");
    assert!(no_pin.stderr.contains("current PIN"), "{no_pin}");
    drop(guard);
    // The owner's PIN still unlocks; the attacker's does not.
    assert_eq!(env.get("owned", &[]), b"owner-value-9876");
    env.coffer_with_pin("attacker-pin-1234", &["secret", "get", "owned"])
        .fails(exit::AUTH, "wrong PIN");
    // With the current PIN, the change goes through the agent as before.
    let guard = unlock(&env, "5m");
    env.set_new_pin("changed-pin-5678");
    env.coffer(&["change-pin"]).ok();
    drop(guard);
    env.set_pin("changed-pin-5678");
    assert_eq!(env.get("owned", &[]), b"owner-value-9876");
}

/// A symlink planted at `inject -f`'s target overwrote and chmodded the file it pointed
/// to; an environment variable named like a shell command became one under `eval`.
#[test]
fn inject_and_env_refuse_what_would_write_or_run_elsewhere() {
    let env = Env::new();
    env.init();
    env.create("app/user", b"app-user-value");
    let template = env.file("config.tmpl", b"user: {{ coffer://app/user }}\n");
    let victim = env.file("victim.txt", b"precious");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = victim.with_file_name("out.yml");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    env.cmd(["inject", "-i"])
        .arg(&template)
        .arg("-f")
        .arg(&out)
        .run()
        .fails(exit::USAGE, "symbolic link");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    std::fs::remove_file(&out).unwrap();
    env.cmd(["inject", "-i"])
        .arg(&template)
        .arg("-f")
        .arg(&out)
        .run()
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), b"user: app-user-value\n");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let run = env
        .cmd(["env"])
        .var("x;touch pwned;y", "coffer://app/user")
        .run()
        .fails(exit::USAGE, "not a shell variable name");
    assert!(run.stdout.is_empty(), "{run}");
    let fish = env
        .cmd(["env", "--shell", "fish"])
        .var("APP_USER", "coffer://app/user")
        .run()
        .ok();
    assert!(
        String::from_utf8_lossy(&fish.stdout).contains("set -gx APP_USER 'app-user-value'"),
        "{fish}"
    );
}

/// The client's side of the same rule: a socket in a directory others can write, or one
/// served by another user's process, is refused before a request (which may carry a value
/// or a PIN) is sent.
#[test]
fn the_client_refuses_an_agent_socket_it_cannot_trust() {
    let Some((uid, gid)) = other_user() else {
        panic!("this test creates a second user and must run as root (CI does)");
    };
    let env = Env::new();
    env.init();
    env.create("mine", b"my-value-123456");
    // A directory anyone can write: a socket there could be anyone's.
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    env.cmd(["secret", "get", "mine"])
        .var("COFFER_AGENT_SOCKET", shared.join("agent.sock"))
        .run()
        .fails_any(exit::FAILURE, &["can be written by other users"]);
    // A private directory of ours, but the socket is served by another user.
    // The fake binds in our directory as root, then becomes the other user before it
    // listens: SO_PEERCRED reports who listened.
    let private = env.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = private.join("fake-agent.sock");
    let fake = Command::new("python3")
        .args([
            "-c",
            "import os,socket,sys,time\n\
             s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])\n\
             os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[2]))\n\
             s.listen(1); print('ready', flush=True)\n\
             c,_=s.accept(); time.sleep(5)",
        ])
        .arg(&socket)
        .arg(uid.to_string())
        .arg(gid.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start a fake agent as another user");
    let mut fake = scopeguard_kill(fake);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(fake.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let run = env
        .cmd(["secret", "get", "mine"])
        .var("COFFER_AGENT_SOCKET", &socket)
        .run();
    assert!(run.stderr.contains(&format!("uid {uid}")), "{run}");
    assert!(run.stderr.contains("not by you"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
}

/// A command that runs as the test's second user (see `other_user`).
fn as_user(uid: u32, gid: u32) -> Command {
    let mut command = Command::new("setpriv");
    command.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".to_owned(),
    ]);
    command
}

/// Kills a child process when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard_kill(child: std::process::Child) -> KillOnDrop {
    KillOnDrop(child)
}

/// `coffer` serves a command through an unlocked agent by itself, without the TPM stack
/// linked in (that is what makes it start fast), and hands everything that needs keys in
/// its own process to `coffer-tpm`, before it has done anything.
#[test]
fn coffer_serves_the_agent_path_alone_and_hands_the_rest_to_coffer_tpm() {
    let env = Env::new();
    env.init();
    env.create("fast/token", b"fast-token-value-77");
    let ldd = |program: &std::path::Path| {
        let out = Command::new("ldd").arg(program).output().expect("run ldd");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coffer = coffer_system_tests::coffer_bin();
    let linked = ldd(&coffer);
    assert!(
        !linked.contains("libtss2") && !linked.contains("libcrypto"),
        "coffer links the TPM stack:\n{linked}"
    );
    let tpm = coffer.with_file_name("coffer-tpm");
    assert!(ldd(&tpm).contains("libtss2-esys"), "{}", ldd(&tpm));

    // A copy of `coffer` with no `coffer-tpm` beside it.
    let alone = env.file("coffer-alone", b"");
    std::fs::remove_file(&alone).unwrap();
    std::fs::create_dir(&alone).unwrap();
    let alone = alone.join("coffer");
    std::fs::copy(&coffer, &alone).expect("copy coffer");
    std::fs::set_permissions(&alone, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.cmd(["secret", "get", "fast/token"])
        .program(&alone)
        .run()
        .fails(exit::FAILURE, "needs coffer-tpm");

    let _guard = unlock(&env, "5m");
    let served = env
        .cmd(["secret", "get", "fast/token"])
        .program(&alone)
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    assert_eq!(served.stdout, b"fast-token-value-77");
    // Through the agent, more than one request on the connection `coffer` opened.
    let script = env
        .cmd(["run", "--", "sh", "-c", "printf %s \"$T\""])
        .program(&alone)
        .var("T", "coffer://fast/token")
        .unset("COFFER_PIN_FILE")
        .run()
        .ok();
    assert_eq!(script.stdout, b"fast-token-value-77");
    // Commands that need keys here are handed over even with an agent running.
    for args in [
        &["--no-agent", "secret", "get", "fast/token"][..],
        &["status"][..],
    ] {
        env.cmd(args)
            .program(&alone)
            .run()
            .fails(exit::FAILURE, "needs coffer-tpm");
    }
    // And the real `coffer` hands them over for real.
    assert_eq!(
        env.get("fast/token", &["--no-agent"]),
        b"fast-token-value-77"
    );
}

/// `audit.reads batched` (the default): a read's entry is committed before the agent
/// returns the value, so killing the agent right after cannot lose it.
#[test]
fn a_read_through_the_agent_stays_on_record_when_the_agent_is_killed_right_after() {
    let env = Env::new();
    env.init();
    env.create("app/token", b"token-value-123");
    assert_eq!(status(&env)["audit_reads"], "batched");
    let guard = unlock(&env, "5m");
    let pid = agent_pid(&env).expect("agent pid");
    assert_eq!(env.get("app/token", &[]), b"token-value-123");
    // SAFETY: sending SIGKILL to the agent this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_until("the agent is gone", Duration::from_secs(20), || {
        !process_alive(pid) || is_zombie(pid)
    });
    drop(guard);
    let reads = env
        .audit()
        .iter()
        .filter(|e| e["operation"] == "get_secret_value" && e["result"] == "ok")
        .count();
    assert_eq!(reads, 1);
    let verified = env.coffer(&["audit", "verify", "-o", "json"]).ok().json();
    assert_eq!(verified["pending"], 0, "{verified:#}");

    env.coffer(&["config", "set", "audit.reads", "durable"])
        .ok();
    assert_eq!(status(&env)["audit_reads"], "durable");
    let refused = env.cmd(["config", "set", "audit.reads", "sometimes"]).run();
    assert_ne!(refused.code(), 0);
    assert!(refused.stderr.contains("durable"), "{refused}");
    assert_eq!(status(&env)["audit_reads"], "durable");
}
