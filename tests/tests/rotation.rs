//! Secret rotation and key re-wrapping through the real `coffer` binary: rotate, status,
//! the schedule view, the headless daemon, and a re-wrap killed with SIGKILL and resumed.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use coffer_system_tests::{exit, Env, Value};

/// Unlocks an agent for the duration of a block of quick commands; locks on drop.
struct Unlocked<'a>(&'a Env);

impl Drop for Unlocked<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(["lock"]).run();
    }
}

fn unlock(env: &Env) -> Unlocked<'_> {
    env.coffer(&["unlock", "--timeout", "10m"]).ok();
    Unlocked(env)
}

fn script(env: &Env, name: &str, body: &str) -> PathBuf {
    let path = env.file(name, format!("#!/bin/sh\n{body}\n").as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn status(env: &Env, name: &str) -> Value {
    env.coffer(&["secret", "rotation-status", name, "-o", "json"])
        .ok()
        .json()
}

#[test]
fn rotate_with_generate_moves_current_and_shows_in_describe() {
    let env = Env::new();
    env.init();
    let v1 = env.create("app/token", b"initial-token-value");
    let run = env
        .coffer(&[
            "secret",
            "rotate",
            "app/token",
            "--rotator",
            "generate",
            "--password-length",
            "40",
            "--schedule",
            "rate(30 days)",
            "--window",
            "2h",
            "-o",
            "json",
        ])
        .ok();
    let outcome = run.json();
    assert_eq!(outcome["finished"], true, "{run}");
    let v2 = outcome["version_id"].as_str().unwrap().to_owned();
    assert_eq!(env.labels_of("app/token", &v2), ["CURRENT"]);
    assert_eq!(env.labels_of("app/token", &v1), ["PREVIOUS"]);
    assert_eq!(env.get("app/token", &[]).len(), 40);
    let description = env.describe("app/token");
    let rotation = &description["rotation"];
    assert_eq!(rotation["schedule"], "rate(30 days)", "{description:#}");
    assert_eq!(rotation["window"], "2h");
    assert_eq!(rotation["state"], "scheduled");
    assert!(rotation["last_rotated"].is_string());
    assert!(rotation["next_rotation"].is_string());
    // People see it too.
    let table = env
        .coffer(&["secret", "rotation-status", "app/token"])
        .ok()
        .text();
    assert!(table.contains("next rotation:"), "{table}");
    assert!(
        table.contains("finish"),
        "history shows the finished rotation: {table}"
    );
    // Rotating again without flags reuses the saved configuration.
    env.coffer(&["secret", "rotate", "app/token"]).ok();
    assert_eq!(env.versions("app/token").len(), 3);
    // The audit log records the rotation and never the value.
    let value = env.get("app/token", &[]);
    let audit = env
        .coffer(&["audit", "list", "--secret", "app/token", "-o", "json"])
        .ok();
    assert!(audit.text().contains("rotate_secret_finish"));
    assert!(!audit.text().contains(std::str::from_utf8(&value).unwrap()));
}

#[test]
fn command_rotator_failure_keeps_current_and_is_reported_then_resumes() {
    let env = Env::new();
    env.init();
    let flag = env.dir.path().join("target-ready");
    let rotator = script(
        &env,
        "rotator.sh",
        &format!(
            "input=$(cat)\ncase \"$1\" in\n  create) echo '{{\"value\":\"rotated-by-command\"}}';;\n  test) [ -e {} ] || {{ echo \"$input\" >&2; echo '{{\"error\":\"target refused the new credentials\"}}'; exit 9; }};;\nesac",
            flag.display()
        ),
    );
    env.create("svc/key", b"kept-while-failing");
    env.sensitive(b"kept-while-failing");
    env.cmd([
        "secret",
        "rotate",
        "svc/key",
        "--rotator",
        "command",
        "--command",
    ])
    .arg(&rotator)
    .args(["--step-timeout", "5"])
    .run()
    .fails_all(
        exit::FAILURE,
        &["step test", "exited with status 9", "target refused"],
    );
    assert_eq!(env.get("svc/key", &[]), b"kept-while-failing");
    let s = status(&env, "svc/key");
    assert_eq!(s["rotation"]["state"], "failing", "{s:#}");
    assert_eq!(s["rotation"]["step"], "test");
    assert_eq!(s["rotation"]["attempts"], 1);
    assert!(s["rotation"]["next_retry"].is_string());
    // The script echoed its input (with the CURRENT value) to stderr: none of it is kept,
    // neither in the status nor anywhere in the vault's files.
    assert!(!s.to_string().contains("kept-while-failing"), "{s:#}");
    let vault_dir = env.vault.parent().unwrap();
    for entry in std::fs::read_dir(vault_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(18).any(|w| w == b"kept-while-failing"),
                "the value reached {} in plaintext",
                path.display()
            );
        }
    }
    let pending_token = s["rotation"]["token"].as_str().unwrap().to_owned();
    // The schedule view puts the failing one first.
    env.create("calm/key", b"calm");
    env.coffer(&[
        "secret",
        "rotate",
        "calm/key",
        "--rotator",
        "generate",
        "--schedule",
        "rate(90 days)",
    ])
    .ok();
    let list = env.coffer(&["rotation", "list", "-o", "json"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["secret_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["svc/key", "calm/key"]);
    let table = env.coffer(&["rotation", "list"]).ok().text();
    assert!(
        table.contains("failing") && table.contains("target refused"),
        "{table}"
    );
    // Fixed: the next attempt resumes the same rotation (same token, same PENDING).
    std::fs::write(&flag, "").unwrap();
    let outcome = env
        .coffer(&["secret", "rotate", "svc/key", "-o", "json"])
        .ok()
        .json();
    assert_eq!(outcome["token"], pending_token.as_str());
    assert_eq!(env.get("svc/key", &[]), b"rotated-by-command");
    assert_eq!(status(&env, "svc/key")["rotation"]["state"], "scheduled");
}

#[test]
fn stopped_after_each_step_then_resumed_without_losing_current() {
    let env = Env::new();
    env.init();
    for step in ["create", "set", "test"] {
        let name = format!("crash/{step}");
        env.create(&name, b"original");
        let run = env
            .coffer(&[
                "secret",
                "rotate",
                &name,
                "--rotator",
                "generate",
                "--stop-after",
                step,
                "-o",
                "json",
            ])
            .ok();
        let first = run.json();
        assert_eq!(first["finished"], false, "{run}");
        assert_eq!(env.get(&name, &[]), b"original");
        let pending = first["version_id"].as_str().unwrap().to_owned();
        assert_eq!(env.labels_of(&name, &pending), ["PENDING"]);
        let second = env
            .coffer(&["secret", "rotate", &name, "-o", "json"])
            .ok()
            .json();
        assert_eq!(second["version_id"], pending.as_str());
        assert_eq!(env.labels_of(&name, &pending), ["CURRENT"]);
    }
}

#[test]
fn bad_schedules_and_rotators_are_usage_errors() {
    let env = Env::new();
    env.init();
    env.create("x", b"value");
    env.coffer(&[
        "secret",
        "rotate",
        "x",
        "--rotator",
        "generate",
        "--schedule",
        "rate(5 weeks)",
    ])
    .fails_all(exit::USAGE, &["not a unit", "rate(30 days)"]);
    env.coffer(&[
        "secret",
        "rotate",
        "x",
        "--rotator",
        "generate",
        "--schedule",
        "cron(0 4 * * *)",
    ])
    .fails_all(exit::USAGE, &["has 5 fields", "six"]);
    env.coffer(&["secret", "rotate", "x", "--rotator", "lambda"])
        .fails_all(
            exit::USAGE,
            &["unknown rotator", "generate, command or postgres"],
        );
    env.coffer(&["secret", "rotate", "x"])
        .fails(exit::FAILURE, "no rotation configured");
    env.coffer(&["secret", "rotate", "x", "--rotator", "command"])
        .fails(exit::USAGE, "--command");
    // PostgreSQL's TLS settings: each mistake named, nothing saved.
    let garbage = env.file("ca.pem", b"this is not a certificate");
    let garbage = garbage.to_str().unwrap();
    let pg = [
        "secret",
        "rotate",
        "x",
        "--rotator",
        "postgres",
        "--no-rotate-immediately",
    ];
    env.coffer(&[&pg[..], &["--pg-ca-file", garbage]].concat())
        .fails_all(exit::USAGE, &["no certificate", "BEGIN CERTIFICATE"]);
    env.coffer(&[&pg[..], &["--pg-ca-file", "/nonexistent/ca.pem"]].concat())
        .fails(exit::USAGE, "cannot read the CA file /nonexistent/ca.pem");
    env.coffer(&[&pg[..], &["--pg-sslmode", "allow"]].concat())
        .fails_all(exit::USAGE, &["not an sslmode", "verify-full"]);
    env.coffer(&[&pg[..], &["--pg-sslmode", "verify-full"]].concat())
        .fails(exit::USAGE, "--pg-ca-file");
    env.coffer(&[
        "secret",
        "rotate",
        "x",
        "--rotator",
        "generate",
        "--pg-sslmode",
        "require",
    ])
    .fails(exit::USAGE, "applies to the postgres rotator");
    assert!(env.describe("x").get("rotation").is_none());
}

#[test]
fn daemon_once_rotates_what_is_due_and_catches_up_once() {
    let env = Env::new();
    env.init();
    env.create("due/a", b"a0");
    env.create("due/b", b"b0");
    for name in ["due/a", "due/b"] {
        env.coffer(&[
            "secret",
            "rotate",
            name,
            "--rotator",
            "generate",
            "--schedule",
            "rate(1 day)",
            "--no-rotate-immediately",
        ])
        .ok();
    }
    env.coffer(&["secret", "cancel-rotate", "due/b"]).ok();
    let now = env.coffer(&["daemon", "--once", "-o", "json"]).ok().json();
    assert_eq!(now["rotated"], serde_json::json!([]), "{now:#}");
    // Ten days later: one rotation of due/a, not ten.
    let later = time_in_days(10);
    let report = env
        .coffer(&["daemon", "--once", "--now", &later, "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        report["rotated"],
        serde_json::json!(["due/a"]),
        "{report:#}"
    );
    let again = env
        .coffer(&["daemon", "--once", "--now", &later, "-o", "json"])
        .ok()
        .json();
    assert_eq!(again["rotated"], serde_json::json!([]), "{again:#}");
    assert_eq!(env.versions("due/a").len(), 2);
    assert_eq!(env.versions("due/b").len(), 1);
    assert_eq!(env.get("due/b", &[]), b"b0");
}

fn time_in_days(days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + days * 86_400;
    // RFC 3339 from Unix seconds (UTC), without a date library.
    let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(d);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn stale_count(env: &Env) -> i64 {
    env.db()
        .query_row(
            "SELECT count(*) FROM secret_versions WHERE key_version < (SELECT max(version) FROM key_versions)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn rewrap_killed_with_sigkill_resumes_and_every_secret_stays_readable() {
    let env = Env::new();
    env.init();
    const SECRETS: usize = 150;
    {
        let _agent = unlock(&env);
        for i in 0..SECRETS {
            env.coffer_stdin(
                &["secret", "create", &format!("many/{i:04}")],
                format!("value-{i}").as_bytes(),
            )
            .ok();
        }
        for i in (0..SECRETS).step_by(3) {
            env.coffer_stdin(
                &["secret", "put", &format!("many/{i:04}")],
                format!("value-{i}-b").as_bytes(),
            )
            .ok();
        }
    }
    let total = SECRETS + SECRETS.div_ceil(3);
    let key = env.coffer(&["key", "list", "-o", "json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ciphertexts = |env: &Env| -> Vec<Vec<u8>> {
        let db = env.db();
        let mut stmt = db
            .prepare("SELECT ciphertext FROM secret_versions ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let before = ciphertexts(&env);

    let mut killed_mid_way = false;
    for _attempt in 0..5 {
        env.coffer(&["key", "rotate", &key]).ok();
        assert_eq!(stale_count(&env) as usize, total);
        env.coffer(&["key", "retire-version", &key, "1"])
            .fails(exit::CONFLICT, "coffer key rewrap");
        let mut child = env
            .cmd(["--no-agent", "key", "rewrap", &key, "--batch-size", "1"])
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let progressed = child.stderr().matches("re-wrapped").count();
            if progressed >= 10
                || child.child.try_wait().unwrap().is_some()
                || Instant::now() > deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.child.try_wait().unwrap().is_none() {
            child.sigkill();
            child.wait();
            let stale = stale_count(&env) as usize;
            if stale > 0 && stale < total {
                killed_mid_way = true;
                break;
            }
        } else {
            child.wait();
        }
    }
    assert!(killed_mid_way, "the re-wrap was never caught mid-way");
    env.db()
        .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .map(|r| assert_eq!(r, "ok"))
        .unwrap();
    // Everything reads mid-way: some data keys under the old version, some under the new.
    for i in (0..SECRETS).step_by(7) {
        let expected = if i % 3 == 0 {
            format!("value-{i}-b")
        } else {
            format!("value-{i}")
        };
        assert_eq!(env.get(&format!("many/{i:04}"), &[]), expected.as_bytes());
    }
    // Resume: the rest is done, and the values' ciphertexts were never touched.
    let run = env.coffer(&["key", "rewrap", &key, "-o", "json"]).ok();
    let resumed = run.json();
    assert_eq!(resumed["remaining"], 0, "{run}");
    assert!(
        resumed["rewrapped"].as_u64().unwrap() < total as u64,
        "{run}"
    );
    assert_eq!(stale_count(&env), 0);
    assert_eq!(ciphertexts(&env), before);
    let status = env
        .coffer(&["key", "rotation-status", &key, "-o", "json"])
        .ok()
        .json();
    assert_eq!(status["stale_data_keys"], 0, "{status:#}");
    // Retire every old version, then read every secret, CURRENT and PREVIOUS.
    let newest = status["newest_version"].as_u64().unwrap();
    for version in 1..newest {
        env.coffer(&["key", "retire-version", &key, &version.to_string()])
            .ok();
    }
    env.coffer(&["key", "retire-version", &key, &newest.to_string()])
        .fails(exit::USAGE, "newest");
    let _agent = unlock(&env);
    for i in 0..SECRETS {
        let name = format!("many/{i:04}");
        if i % 3 == 0 {
            assert_eq!(env.get(&name, &[]), format!("value-{i}-b").as_bytes());
            assert_eq!(
                env.get(&name, &["--label", "PREVIOUS"]),
                format!("value-{i}").as_bytes()
            );
        } else {
            assert_eq!(env.get(&name, &[]), format!("value-{i}").as_bytes());
        }
    }
    env.coffer(&["audit", "verify"]).ok();
}

#[test]
fn automatic_key_rotation_by_the_daemon() {
    let env = Env::new();
    env.init();
    env.create("k/one", b"one");
    let key = env.coffer(&["key", "list", "-o", "json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.coffer(&["key", "enable-rotation", &key, "--period-days", "30"])
        .ok();
    let later = time_in_days(31);
    let report = env
        .coffer(&["daemon", "--once", "--now", &later, "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        report["keys_rotated"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(report["data_keys_rewrapped"], 1);
    let status = env
        .coffer(&["key", "rotation-status", &key, "-o", "json"])
        .ok()
        .json();
    assert_eq!(status["newest_version"], 2);
    assert_eq!(status["stale_data_keys"], 0);
    assert_eq!(env.get("k/one", &[]), b"one");
}

// ---- PostgreSQL, through the CLI -----------------------------------------------------

/// A throwaway PostgreSQL cluster (initdb in a temp dir, a free port on 127.0.0.1),
/// run as the `postgres` user when the tests run as root.
struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

const PG_ADMIN: &str = "coffer_admin";
const PG_ADMIN_PASSWORD: &str = "pg-admin-Hq8w";

impl PgServer {
    fn start() -> Option<PgServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                let mut bins: Vec<PathBuf> = dirs
                    .filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("initdb").is_file())
                    .collect();
                bins.sort();
                bins.pop()
            });
        let Some(bin) = bin else {
            eprintln!("\n\n*** SKIPPING the PostgreSQL CLI test: no /usr/lib/postgresql/*/bin/initdb (apt-get install -y postgresql) ***\n");
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("coffer-pg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pwfile = dir.path().join("admin-pw");
        std::fs::write(&pwfile, PG_ADMIN_PASSWORD).unwrap();
        if as_postgres {
            let ok = std::process::Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .arg(&pwfile)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to postgres failed");
        }
        let server = PgServer {
            port: coffer_system_tests::free_port(),
            dir,
            bin,
            as_postgres,
        };
        let data = server.data();
        server.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                PG_ADMIN,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "-A",
                "scram-sha-256",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port
        );
        let log = format!("{data}/server.log");
        server.tool(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_owned()
    }

    fn tool(&self, tool: &str, args: &[&str]) {
        let mut command = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            std::process::Command::new(self.bin.join(tool))
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs SQL as `user` with `password` (given to psql in a 0600 passfile, not its
    /// environment or arguments); true if it logged in and succeeded.
    fn psql(&self, user: &str, password: &str, sql: &str) -> bool {
        let passfile = self
            .dir
            .path()
            .join(format!("pass-{}", coffer_system_tests::random_hex(6)));
        std::fs::write(
            &passfile,
            format!(
                "127.0.0.1:{}:*:{user}:{}\n",
                self.port,
                // .pgpass escapes colons and backslashes with a backslash.
                password.replace('\\', "\\\\").replace(':', "\\:")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = std::process::Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                user,
                "-d",
                "postgres",
                "-w",
                "-X",
                "-q",
                "-c",
                sql,
            ])
            .env("PGPASSFILE", &passfile)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        let _ = std::fs::remove_file(passfile);
        ok
    }

    fn secret(&self, user: &str, password: &str) -> Vec<u8> {
        serde_json::json!({
            "host": "127.0.0.1", "port": self.port, "username": user,
            "password": password, "dbname": "postgres",
        })
        .to_string()
        .into_bytes()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let mut command = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn password_in(json: &[u8]) -> String {
    let value: Value = serde_json::from_slice(json).unwrap();
    value["password"].as_str().unwrap().to_owned()
}

#[test]
fn postgres_rotator_through_the_cli() {
    let Some(pg) = PgServer::start() else { return };
    assert!(pg.psql(
        PG_ADMIN,
        PG_ADMIN_PASSWORD,
        "CREATE ROLE app LOGIN PASSWORD 'app-old-Vn4p'"
    ));
    let env = Env::new();
    env.init();
    env.sensitive("app-old-Vn4p");
    env.create("db/app", &pg.secret("app", "app-old-Vn4p"));
    env.coffer(&[
        "secret",
        "rotate",
        "db/app",
        "--rotator",
        "postgres",
        "--schedule",
        "rate(30 days)",
    ])
    .ok();
    let new_password = password_in(&env.get("db/app", &[]));
    env.sensitive(&new_password);
    assert!(
        pg.psql("app", &new_password, "SELECT 1"),
        "the new password does not work"
    );
    assert!(
        !pg.psql("app", "app-old-Vn4p", "SELECT 1"),
        "the old password still works"
    );
    assert_eq!(
        password_in(&env.get("db/app", &["--label", "PREVIOUS"])),
        "app-old-Vn4p"
    );
    // This server offers no TLS: the status says the connection may be unencrypted.
    env.coffer(&["secret", "rotation-status", "db/app"])
        .ok()
        .text()
        .contains("unencrypted if the server offers no TLS")
        .then_some(())
        .expect("rotation-status names the connection's protection");

    // A failure at test leaves CURRENT as it was, and the rotation resumes after.
    env.coffer(&["secret", "rotate", "db/app", "--stop-after", "set"])
        .ok();
    assert!(pg.psql(PG_ADMIN, PG_ADMIN_PASSWORD, "ALTER ROLE app NOLOGIN"));
    env.coffer(&["secret", "rotate", "db/app"]).fails_all(
        exit::FAILURE,
        &[
            "step test",
            "not permitted to log in",
            "CURRENT is unchanged",
        ],
    );
    assert_eq!(password_in(&env.get("db/app", &[])), new_password);
    let status = status(&env, "db/app");
    assert_eq!(status["rotation"]["state"], "failing", "{status:#}");
    assert!(pg.psql(PG_ADMIN, PG_ADMIN_PASSWORD, "ALTER ROLE app LOGIN"));
    env.coffer(&["secret", "rotate", "db/app"]).ok();
    let third = password_in(&env.get("db/app", &[]));
    assert!(pg.psql("app", &third, "SELECT 1"));
    assert!(!pg.psql("app", &new_password, "SELECT 1"));
}

#[test]
fn the_daemon_keeps_running_and_finishes_an_interrupted_rotation() {
    let env = Env::new();
    env.init();
    env.create("bg/key", b"before");
    let stopped = env
        .coffer(&[
            "secret",
            "rotate",
            "bg/key",
            "--rotator",
            "generate",
            "--stop-after",
            "set",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let pending = stopped["version_id"].as_str().unwrap().to_owned();
    let mut daemon = env.cmd(["daemon", "--max-sleep", "1s"]).spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.labels_of("bg/key", &pending) != ["CURRENT"] {
        assert!(
            Instant::now() < deadline,
            "the daemon did not finish the rotation: {}",
            daemon.stderr()
        );
        assert!(
            daemon.child.try_wait().unwrap().is_none(),
            "the daemon exited: {}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Still running after its pass; stopped by us.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "{}",
        daemon.stderr()
    );
    daemon.sigkill();
    daemon.wait();
    assert_ne!(env.get("bg/key", &[]), b"before");
}

#[test]
fn a_rotation_through_the_agent_lets_other_clients_in_while_its_rotator_runs() {
    let env = Env::new();
    env.init();
    let at_set = env.dir.path().join("at-set");
    let go_on = env.dir.path().join("go-on");
    let rotator = script(
        &env,
        "slow-target.sh",
        &format!(
            "cat > /dev/null\ncase \"$1\" in\n  create) echo '{{\"value\":\"after-rotation\"}}';;\n  set) touch {at}; while [ ! -e {go} ]; do sleep 0.05; done;;\nesac",
            at = at_set.display(),
            go = go_on.display()
        ),
    );
    env.create("slow/secret", b"before-rotation");
    env.create("other/secret", b"other-value");
    env.cmd([
        "secret",
        "rotate",
        "slow/secret",
        "--rotator",
        "command",
        "--command",
    ])
    .arg(&rotator)
    .args(["--step-timeout", "60", "--stop-after", "create"])
    .run()
    .ok();
    let _agent = unlock(&env);
    let mut rotation = env.cmd(["secret", "rotate", "slow/secret"]).spawn();
    let started = Instant::now();
    while !at_set.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the rotator never reached set: {}",
            rotation.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The rotator is blocked in `set`; the agent answers other clients meanwhile, and
    // CURRENT has not moved.
    let read = env
        .cmd(["secret", "get", "other/secret"])
        .timeout(Duration::from_secs(15))
        .run()
        .ok();
    assert_eq!(read.stdout, b"other-value");
    assert_eq!(env.get("slow/secret", &[]), b"before-rotation");
    std::fs::write(&go_on, "").unwrap();
    assert!(rotation.wait().success(), "{}", rotation.stderr());
    assert_eq!(env.get("slow/secret", &[]), b"after-rotation");
    assert_eq!(
        env.get("slow/secret", &["--label", "PREVIOUS"]),
        b"before-rotation"
    );
}

/// The README's `--step-timeout 30s` was refused ("invalid digit found in string").
#[test]
fn step_timeouts_take_units() {
    let env = Env::new();
    env.init();
    env.create("svc/key", b"svc-key-value-1");
    let script = env.file(
        "rotate.sh",
        b"#!/bin/sh\necho '{\"value\": \"rotated-value-22\"}'\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = script.display().to_string();
    env.coffer(&[
        "secret",
        "rotate",
        "svc/key",
        "--rotator",
        "command",
        "--command",
        &script,
        "--step-timeout",
        "30s",
    ])
    .ok();
    let status = env
        .coffer(&["secret", "rotation-status", "svc/key", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        status["rotation"]["rotator"]["timeout_secs"], 30,
        "{status:#}"
    );
    env.coffer(&[
        "secret",
        "rotate",
        "svc/key",
        "--rotator",
        "command",
        "--command",
        &script,
        "--step-timeout",
        "2h",
    ])
    .fails(exit::USAGE, "at most 1h");
}
