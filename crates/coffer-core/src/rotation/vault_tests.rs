//! Rotation and re-wrap through the vault API, on a real swtpm, a real SQLite file and
//! (for the PostgreSQL rotator) a real PostgreSQL server started here.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use coffer_testkit::Swtpm;
use tempfile::TempDir;

use super::*;
use crate::model::{SecretValue, VersionSelector};
use crate::names::StagingLabel;
use crate::tpm::PcrBinding;
use crate::vault::{CreateSecret, Error, PutValue, Vault};

const PIN: &str = "test-pin-4321";

struct Fixture {
    _swtpm: Swtpm,
    dir: TempDir,
    vault: Vault,
}

impl Fixture {
    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("v/vault.db")).unwrap()
    }

    fn script(&self, name: &str, body: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn get(&mut self, name: &str, selector: VersionSelector) -> (uuid::Uuid, String) {
        let read = self.vault.get_secret_value(name, &selector).unwrap();
        (
            read.version_id,
            String::from_utf8(read.value.as_bytes().to_vec()).unwrap(),
        )
    }

    fn current(&mut self, name: &str) -> (uuid::Uuid, String) {
        self.get(name, VersionSelector::default())
    }

    fn pending(&mut self, name: &str) -> Option<uuid::Uuid> {
        self.vault
            .get_secret_value(name, &VersionSelector::Label(StagingLabel::pending()))
            .ok()
            .map(|r| r.version_id)
    }
}

fn fixture() -> Fixture {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let created = Vault::init(
        &dir.path().join("v/vault.db"),
        &swtpm.tcti(),
        PIN,
        PcrBinding::default(),
    )
    .unwrap();
    Fixture {
        _swtpm: swtpm,
        dir,
        vault: created.vault,
    }
}

fn create(vault: &mut Vault, name: &str, value: &str) {
    vault
        .create_secret(CreateSecret {
            name: name.into(),
            value: Some(SecretValue::text(value)),
            ..Default::default()
        })
        .unwrap();
}

fn settings(rotator: RotatorConfig, schedule: Option<&str>) -> RotationSettings {
    RotationSettings {
        schedule: schedule.map(str::to_owned),
        window: None,
        rotator,
    }
}

fn command(path: String, timeout_secs: u64) -> RotatorConfig {
    RotatorConfig::Command {
        path,
        args: vec![],
        timeout_secs,
    }
}

#[test]
fn generate_rotation_moves_labels() {
    let mut f = fixture();
    create(&mut f.vault, "app/key", "first-value");
    let (v1, _) = f.current("app/key");
    let info = f
        .vault
        .configure_rotation(
            "app/key",
            &settings(
                RotatorConfig::named("generate").unwrap(),
                Some("rate(30 days)"),
            ),
        )
        .unwrap();
    assert_eq!(info.state, RotationState::Scheduled);
    assert!(info.next_rotation.is_some());
    let outcome = f.vault.rotate_secret("app/key").unwrap();
    assert!(outcome.finished);
    let (v2, value) = f.current("app/key");
    assert_eq!(Some(v2), outcome.version_id);
    assert_ne!(v2, v1);
    assert_eq!(value.len(), 32);
    let (previous, old) = f.get("app/key", VersionSelector::Label(StagingLabel::previous()));
    assert_eq!((previous, old.as_str()), (v1, "first-value"));
    assert_eq!(f.pending("app/key"), None, "PENDING is removed at finish");
    let description = f.vault.describe_secret("app/key").unwrap();
    let rotation = description.rotation.unwrap();
    assert!(rotation.last_rotated.is_some());
    assert_eq!(
        rotation.next_rotation.unwrap().0 - rotation.last_rotated.unwrap().0,
        30 * 86_400_000
    );
    assert_eq!(rotation.token, None);
    let history = f.vault.rotation_history("app/key", 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].result, "ok");
    // The audit log names the steps, never the value.
    let audit = f.vault.audit_list(Some("app/key"), None, 100).unwrap();
    let ops: Vec<&str> = audit.iter().map(|e| e.operation.as_str()).collect();
    assert!(ops.contains(&"rotate_secret_finish"), "{ops:?}");
    let text = format!("{audit:?}");
    assert!(!text.contains(&value) && !text.contains("first-value"));
}

#[test]
fn a_crash_after_any_step_resumes_with_the_same_pending_version() {
    let mut f = fixture();
    let steps_log = f.dir.path().join("steps");
    let script = f.script(
        "rotator",
        &format!(
            "echo \"$1\" >> {}; cat > /dev/null; if [ \"$1\" = create ]; then echo '{{\"value\":\"from-command\"}}'; fi",
            steps_log.display()
        ),
    );
    for stop in [Step::Create, Step::Set, Step::Test] {
        let name = format!("crash/{stop}");
        create(&mut f.vault, &name, "original");
        let (v1, _) = f.current(&name);
        f.vault
            .configure_rotation(&name, &settings(command(script.clone(), 10), None))
            .unwrap();
        let first = f.vault.rotate_secret_until(&name, Some(stop)).unwrap();
        assert!(!first.finished);
        assert_eq!(first.completed, Some(stop));
        // CURRENT untouched; the PENDING version exists.
        assert_eq!(f.current(&name), (v1, "original".to_owned()));
        let pending = f.pending(&name).unwrap();
        assert_eq!(first.version_id, Some(pending));
        let info = f.vault.rotation_info(&name).unwrap();
        assert_eq!(info.state, RotationState::InProgress);
        assert_eq!(info.step, stop.next());
        // A second run (the process restarted) resumes: same token, same version.
        let second = f.vault.rotate_secret(&name).unwrap();
        assert!(second.finished);
        assert_eq!(second.token, first.token);
        assert_eq!(second.version_id, Some(pending));
        assert_eq!(f.current(&name), (pending, "from-command".to_owned()));
        assert_eq!(f.vault.list_secret_versions(&name).unwrap().len(), 2);
    }
    // A crash inside create, after the value was stored but before the step was
    // recorded: the retry finds the version by its token instead of making another.
    create(&mut f.vault, "crash/inside-create", "original");
    f.vault
        .configure_rotation(
            "crash/inside-create",
            &settings(command(script.clone(), 10), None),
        )
        .unwrap();
    let first = f
        .vault
        .rotate_secret_until("crash/inside-create", Some(Step::Create))
        .unwrap();
    f.db()
        .execute("UPDATE secret_rotation SET step = 'create'", [])
        .unwrap();
    let resumed = f.vault.rotate_secret("crash/inside-create").unwrap();
    assert_eq!(resumed.version_id, first.version_id);
    assert_eq!(
        f.vault
            .list_secret_versions("crash/inside-create")
            .unwrap()
            .len(),
        2
    );
    let log = std::fs::read_to_string(&steps_log).unwrap();
    assert_eq!(
        log.lines().filter(|l| *l == "create").count(),
        4,
        "create ran once per rotation: {log}"
    );
}

#[test]
fn failures_are_kept_retried_with_backoff_and_resumed() {
    let mut f = fixture();
    let flag = f.dir.path().join("target-ok");
    let script = f.script(
        "flaky",
        &format!(
            "cat > /dev/null; case \"$1\" in create) echo '{{\"value\":\"next\"}}';; test) [ -e {} ] || {{ echo '{{\"error\":\"login with new password refused\"}}'; exit 4; }};; esac",
            flag.display()
        ),
    );
    create(&mut f.vault, "flaky/secret", "stable");
    let (v1, _) = f.current("flaky/secret");
    f.vault
        .configure_rotation(
            "flaky/secret",
            &settings(command(script, 10), Some("rate(1 day)")),
        )
        .unwrap();
    let err = f.vault.rotate_secret("flaky/secret").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rotation(RotationError::StepFailed {
                step: Step::Test,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("exited with status 4"), "{err}");
    assert!(
        err.to_string().contains("login with new password refused"),
        "{err}"
    );
    assert_eq!(f.current("flaky/secret"), (v1, "stable".to_owned()));
    let info = f.vault.rotation_info("flaky/secret").unwrap();
    assert_eq!(info.state, RotationState::Failing);
    assert_eq!(info.attempts, 1);
    assert_eq!(info.step, Some(Step::Test));
    let retry_in = info.next_retry.unwrap().0 - info.last_error_at.unwrap().0;
    assert_eq!(retry_in, 60_000);
    let pending = f.pending("flaky/secret").unwrap();
    // Second failure: the backoff doubles.
    f.vault.rotate_secret("flaky/secret").unwrap_err();
    let info = f.vault.rotation_info("flaky/secret").unwrap();
    assert_eq!(info.attempts, 2);
    assert_eq!(
        info.next_retry.unwrap().0 - info.last_error_at.unwrap().0,
        120_000
    );
    // The scheduler leaves it alone until the retry time.
    let report = f.vault.run_due(Timestamp::now()).unwrap();
    assert!(
        report.rotated.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    // Fixed target: the retry resumes at test with the same PENDING version.
    std::fs::write(&flag, "").unwrap();
    let report = f
        .vault
        .run_due(Timestamp(Timestamp::now().0 + 121_000))
        .unwrap();
    assert_eq!(
        report.rotated,
        vec!["flaky/secret".to_owned()],
        "{report:?}"
    );
    assert_eq!(f.current("flaky/secret"), (pending, "next".to_owned()));
    let info = f.vault.rotation_info("flaky/secret").unwrap();
    assert_eq!(info.state, RotationState::Scheduled);
    assert_eq!(info.last_error, None);
    let history = f.vault.rotation_history("flaky/secret", 10).unwrap();
    let results: Vec<&str> = history.iter().map(|h| h.result.as_str()).collect();
    assert_eq!(results, ["ok", "rotation_failed", "rotation_failed"]);
}

#[test]
fn rotator_timeout_leaves_current_and_says_so() {
    let mut f = fixture();
    let script = f.script(
        "slow",
        "cat > /dev/null; if [ \"$1\" = set ]; then sleep 5; fi; if [ \"$1\" = create ]; then echo '{\"value\":\"v\"}'; fi",
    );
    create(&mut f.vault, "slow/secret", "kept");
    f.vault
        .configure_rotation("slow/secret", &settings(command(script, 1), None))
        .unwrap();
    let started = std::time::Instant::now();
    let err = f.vault.rotate_secret("slow/secret").unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        matches!(
            err,
            Error::Rotation(RotationError::Timeout {
                step: Step::Set,
                secs: 1,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(err.code(), "rotator_timeout");
    assert_eq!(f.current("slow/secret").1, "kept");
    let info = f.vault.rotation_info("slow/secret").unwrap();
    assert!(info.last_error.unwrap().contains("within 1 s"));
}

#[test]
fn bad_configurations_are_refused_before_anything_runs() {
    let mut f = fixture();
    create(&mut f.vault, "cfg", "x");
    let err = f
        .vault
        .configure_rotation(
            "cfg",
            &settings(
                RotatorConfig::named("generate").unwrap(),
                Some("rate(30 weeks)"),
            ),
        )
        .unwrap_err();
    assert!(err.to_string().contains("not a unit"), "{err}");
    assert!(err.to_string().contains("rate(30 days)"), "{err}");
    let err = f
        .vault
        .configure_rotation("cfg", &settings(command(String::new(), 5), None))
        .unwrap_err();
    assert!(err.to_string().contains("--command"), "{err}");
    let err = f.vault.rotate_secret("cfg").unwrap_err();
    assert!(
        matches!(err, Error::Rotation(RotationError::NotConfigured { .. })),
        "{err}"
    );
    let mut window = settings(
        RotatorConfig::named("generate").unwrap(),
        Some("rate(2 hours)"),
    );
    window.window = Some("3h".into());
    let err = f.vault.configure_rotation("cfg", &window).unwrap_err();
    assert!(err.to_string().contains("shorter than"), "{err}");
    // A command must be an absolute path to an executable file, checked now.
    let relative = settings(command("rotate.sh".into(), 5), None);
    let err = f.vault.configure_rotation("cfg", &relative).unwrap_err();
    assert!(err.to_string().contains("not an absolute path"), "{err}");
    let missing = settings(command("/nonexistent/rotate.sh".into(), 5), None);
    let err = f.vault.configure_rotation("cfg", &missing).unwrap_err();
    assert!(err.to_string().contains("cannot be used"), "{err}");
    let plain = f.dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let not_exec = settings(command(plain.display().to_string(), 5), None);
    let err = f.vault.configure_rotation("cfg", &not_exec).unwrap_err();
    assert!(err.to_string().contains("not an executable file"), "{err}");
    // Password options the generator cannot satisfy are refused before the first run.
    let mut generate = RotatorConfig::named("generate").unwrap();
    if let RotatorConfig::Generate { password, .. } = &mut generate {
        password.length = 0;
    }
    let err = f
        .vault
        .configure_rotation("cfg", &settings(generate, None))
        .unwrap_err();
    assert!(err.to_string().contains("password options"), "{err}");
    let mut postgres = RotatorConfig::named("postgres").unwrap();
    if let RotatorConfig::Postgres { admin_secret, .. } = &mut postgres {
        *admin_secret = Some("bad name with spaces".into());
    }
    let err = f
        .vault
        .configure_rotation("cfg", &settings(postgres, None))
        .unwrap_err();
    assert!(err.to_string().contains("admin secret"), "{err}");
    // None of it was saved.
    let err = f.vault.rotation_info("cfg").unwrap_err();
    assert!(
        matches!(err, Error::Rotation(RotationError::NotConfigured { .. })),
        "{err}"
    );
}

#[test]
fn a_schedule_preview_applies_the_rules_of_configure() {
    use crate::vault::rotation::preview_schedule;
    let from = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z, a Thursday
    let preview = preview_schedule("rate( 12  hours )", None, None, from, 3).unwrap();
    assert_eq!(preview.schedule, "rate(12 hours)");
    let next: Vec<String> = preview.next.iter().map(|t| t.rfc3339()).collect();
    assert_eq!(
        next,
        [
            "2026-01-01T12:00:00Z",
            "2026-01-02T00:00:00Z",
            "2026-01-02T12:00:00Z"
        ]
    );
    let preview = preview_schedule("cron(0 4 ? * SUN *)", Some("90m"), None, from, 2).unwrap();
    assert_eq!(preview.window.as_deref(), Some("1h30m"));
    let next: Vec<String> = preview.next.iter().map(|t| t.rfc3339()).collect();
    assert_eq!(next, ["2026-01-04T04:00:00Z", "2026-01-11T04:00:00Z"]);
    assert!(!preview.due_now);
    // Counted from the last rotation, as the scheduler does: 10 days after one 25 days
    // ago is due now, once, and the next is counted from now.
    let last = Timestamp(from.0 - 25 * 86_400_000);
    let preview = preview_schedule("rate(10 days)", None, Some(last), from, 2).unwrap();
    assert!(preview.due_now);
    assert_eq!(preview.next, [from, from.plus_days(10)]);
    let recent = Timestamp(from.0 - 86_400_000);
    let preview = preview_schedule("rate(10 days)", None, Some(recent), from, 1).unwrap();
    assert!(!preview.due_now);
    assert_eq!(preview.next, [recent.plus_days(10)]);
    // A schedule that ends lists only what is left.
    let preview = preview_schedule("cron(0 4 1 1 ? 2026)", None, None, from, 5).unwrap();
    assert_eq!(preview.next.len(), 1);
    // Errors name their field, as configure_rotation's do.
    for (schedule, window, field) in [
        ("rate(30 weeks)", None, "rotation schedule"),
        ("cron(0 4 * * * *)", None, "rotation schedule"),
        ("rate(2 hours)", Some("3h"), "rotation window"),
        ("rate(2 days)", Some("soon"), "rotation window"),
    ] {
        match preview_schedule(schedule, window, None, from, 3) {
            Err(Error::InvalidArgument { what, .. }) => assert_eq!(what, field, "{schedule}"),
            other => panic!("{schedule}: {other:?}"),
        }
    }
}

#[test]
fn scheduler_catches_up_once_after_downtime() {
    let mut f = fixture();
    create(&mut f.vault, "sched/a", "a0");
    create(&mut f.vault, "sched/b", "b0");
    let t0 = Timestamp::now();
    for name in ["sched/a", "sched/b"] {
        f.vault
            .configure_rotation(
                name,
                &settings(
                    RotatorConfig::named("generate").unwrap(),
                    Some("rate(1 hour)"),
                ),
            )
            .unwrap();
    }
    f.vault.cancel_rotation("sched/b").unwrap();
    assert_eq!(f.vault.run_due(t0).unwrap().rotated.len(), 0);
    // Five periods missed: one rotation, not five.
    let later = Timestamp(t0.0 + 5 * 3_600_000 + 60_000);
    let report = f.vault.run_due(later).unwrap();
    assert_eq!(report.rotated, vec!["sched/a".to_owned()]);
    assert_eq!(report.next_due, Some(Timestamp(later.0 + 3_600_000)));
    assert!(f
        .vault
        .run_due(Timestamp(later.0 + 60_000))
        .unwrap()
        .rotated
        .is_empty());
    assert_eq!(f.vault.list_secret_versions("sched/a").unwrap().len(), 2);
    let list = f.vault.list_rotations().unwrap();
    let states: Vec<(&str, RotationState)> = list
        .iter()
        .map(|i| (i.secret_name.as_str(), i.state))
        .collect();
    assert_eq!(
        states,
        [
            ("sched/a", RotationState::Scheduled),
            ("sched/b", RotationState::Disabled)
        ]
    );
}

#[test]
fn a_scheduled_rotation_runs_only_inside_its_window() {
    let mut f = fixture();
    create(&mut f.vault, "win/db", "v0");
    let t0 = Timestamp::now();
    f.vault
        .configure_rotation(
            "win/db",
            &RotationSettings {
                schedule: Some("rate(6 hours)".into()),
                window: Some("1h".into()),
                rotator: RotatorConfig::named("generate").unwrap(),
            },
        )
        .unwrap();
    let hour = 3_600_000;
    let first = f
        .vault
        .rotation_info("win/db")
        .unwrap()
        .next_rotation
        .unwrap();
    assert!((first.0 - (t0.0 + 6 * hour)).abs() < 60_000);
    // The machine was off through the first window: nothing runs when it wakes.
    let woke = Timestamp(first.0 + hour + 60_000);
    assert!(f.vault.due_rotations(woke).unwrap().is_empty());
    let report = f.vault.run_due(woke).unwrap();
    assert!(report.rotated.is_empty(), "{report:?}");
    // The next window, in the schedule's cadence, is when it runs.
    assert_eq!(report.next_due, Some(Timestamp(first.0 + 6 * hour)));
    assert_eq!(f.vault.list_secret_versions("win/db").unwrap().len(), 1);
    let inside = Timestamp(first.0 + 6 * hour + 30 * 60_000);
    assert_eq!(f.vault.run_due(inside).unwrap().rotated, ["win/db"]);
    assert_eq!(f.vault.list_secret_versions("win/db").unwrap().len(), 2);
    // "Rotate now" is the owner's explicit choice: the window does not hold it back.
    f.vault.rotate_secret("win/db").unwrap();
    assert_eq!(f.vault.list_secret_versions("win/db").unwrap().len(), 3);
}

#[test]
fn rewrap_moves_every_data_key_to_the_newest_version_without_touching_values() {
    let mut f = fixture();
    let requests: Vec<CreateSecret> = (0..2500)
        .map(|i| CreateSecret {
            name: format!("bulk/{i:05}"),
            value: Some(SecretValue::text(format!("value-{i}"))),
            ..Default::default()
        })
        .collect();
    f.vault.import_secrets(&requests).unwrap();
    f.vault
        .put_secret_value("bulk/00007", PutValue::new(SecretValue::text("seven-b")))
        .unwrap();
    let key = f.vault.list_keys().unwrap()[0].id.to_string();
    let ciphertexts_before: Vec<Vec<u8>> = f
        .db()
        .prepare("SELECT ciphertext FROM secret_versions ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    f.vault.rotate_key(&key).unwrap();
    let status = f.vault.key_rotation_status(&key).unwrap();
    assert_eq!(status.stale_data_keys, 2501);
    let err = f.vault.retire_key_version(&key, 1).unwrap_err();
    assert!(
        matches!(err, Error::KeyVersionInUse { count: 2501, .. }),
        "{err}"
    );
    let mut seen = Vec::new();
    let done = f
        .vault
        .rewrap_key(&key, 1000, &mut |p| seen.push((p.done, p.remaining)))
        .unwrap();
    assert_eq!(done.done, 2501);
    assert_eq!(seen, [(1000, 1501), (2000, 501), (2501, 0)]);
    let ciphertexts_after: Vec<Vec<u8>> = f
        .db()
        .prepare("SELECT ciphertext FROM secret_versions ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        ciphertexts_before, ciphertexts_after,
        "values were not re-encrypted"
    );
    let status = f.vault.key_rotation_status(&key).unwrap();
    assert_eq!(status.data_keys_by_version, [(1, 0), (2, 2501)]);
    // Readable after a fresh unlock (no KEK cached), then v1 can go.
    f.vault.lock().unwrap();
    f.vault.unlock(&f._swtpm.tcti(), PIN).unwrap();
    for i in [0, 7, 1234, 2499] {
        let name = format!("bulk/{i:05}");
        let expected = if i == 7 {
            "seven-b".to_owned()
        } else {
            format!("value-{i}")
        };
        assert_eq!(f.current(&name).1, expected);
    }
    assert_eq!(
        f.get(
            "bulk/00007",
            VersionSelector::Label(StagingLabel::previous())
        )
        .1,
        "value-7"
    );
    let err = f.vault.retire_key_version(&key, 2).unwrap_err();
    assert!(err.to_string().contains("newest"), "{err}");
    f.vault.retire_key_version(&key, 1).unwrap();
    assert_eq!(f.vault.describe_key(&key).unwrap().versions.len(), 1);
    assert_eq!(f.current("bulk/02000").1, "value-2000");
}

#[test]
fn moving_a_secret_to_another_key_rewraps_its_versions() {
    let mut f = fixture();
    create(&mut f.vault, "mover", "one");
    f.vault
        .put_secret_value("mover", PutValue::new(SecretValue::text("two")))
        .unwrap();
    let other = f.vault.create_key("other", Some("alias/other")).unwrap();
    f.vault.rotate_key("alias/other").unwrap();
    f.vault
        .update_secret("mover", None, Some("alias/other".into()))
        .unwrap();
    let description = f.vault.describe_secret("mover").unwrap();
    assert!(description
        .versions
        .iter()
        .all(|v| v.key_id == other.id && v.key_version == 2));
    assert_eq!(f.current("mover").1, "two");
    assert_eq!(
        f.get("mover", VersionSelector::Label(StagingLabel::previous()))
            .1,
        "one"
    );
    // The old (default) key protects nothing now.
    let default = f
        .vault
        .list_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.is_default)
        .unwrap();
    let status = f
        .vault
        .key_rotation_status(&default.id.to_string())
        .unwrap();
    assert!(
        status.data_keys_by_version.iter().all(|(_, n)| *n == 0),
        "{status:?}"
    );
}

#[test]
fn a_pass_can_leave_rotations_and_rewraps_to_its_caller() {
    use crate::vault::rotation::DueWork;
    let mut f = fixture();
    create(&mut f.vault, "deferred/a", "a");
    create(&mut f.vault, "deferred/b", "b");
    f.vault
        .configure_rotation(
            "deferred/b",
            &settings(
                RotatorConfig::named("generate").unwrap(),
                Some("rate(1 hour)"),
            ),
        )
        .unwrap();
    let other = f.vault.create_key("idle key", None).unwrap();
    let key = f.vault.list_keys().unwrap()[0].id.to_string();
    assert!(f.vault.keys_to_rewrap().unwrap().is_empty());
    f.vault.rotate_key(&key).unwrap();
    f.vault.rotate_key(&other.id.to_string()).unwrap();
    // Only the key with data keys under an older version needs a re-wrap.
    let pending = f.vault.keys_to_rewrap().unwrap();
    assert_eq!(pending.len(), 1);
    assert_ne!(pending[0], other.id);
    let later = Timestamp(Timestamp::now().0 + 2 * 3_600_000);
    let report = f.vault.run_due_with(later, DueWork::KeysOnly).unwrap();
    assert_eq!(report.data_keys_rewrapped, 0);
    assert!(report.rotated.is_empty(), "{report:?}");
    assert_eq!(f.vault.due_rotations(later).unwrap(), ["deferred/b"]);
    assert_eq!(
        f.vault.key_rotation_status(&key).unwrap().stale_data_keys,
        2
    );
    let report = f.vault.run_due(later).unwrap();
    assert_eq!(report.data_keys_rewrapped, 2);
    assert_eq!(report.rotated, ["deferred/b"]);
    assert!(f.vault.keys_to_rewrap().unwrap().is_empty());
    assert!(f.vault.due_rotations(later).unwrap().is_empty());
    assert_eq!(f.current("deferred/a").1, "a");
}

#[test]
fn a_shared_vault_is_free_while_a_rotator_runs() {
    use crate::vault::rotation::{drive_rotation, VaultAccess};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// Takes the vault for each piece of work, as the app does.
    struct Shared<'a, 'v>(&'a Mutex<&'v mut Vault>);
    impl VaultAccess for Shared<'_, '_> {
        type Error = Error;
        fn with<T>(
            &mut self,
            op: impl FnOnce(&mut Vault) -> crate::vault::Result<T>,
        ) -> crate::vault::Result<T> {
            op(&mut self.0.lock().unwrap())
        }
    }

    let mut f = fixture();
    let at_set = f.dir.path().join("at-set");
    let go_on = f.dir.path().join("go-on");
    let script = f.script(
        "slow-target",
        &format!(
            "cat > /dev/null; case \"$1\" in create) echo '{{\"value\":\"after\"}}';; set) touch {at}; while [ ! -e {go} ]; do sleep 0.05; done;; esac",
            at = at_set.display(),
            go = go_on.display()
        ),
    );
    create(&mut f.vault, "slow/secret", "before");
    create(&mut f.vault, "other", "untouched");
    f.vault
        .configure_rotation("slow/secret", &settings(command(script, 30), None))
        .unwrap();
    let shared = Mutex::new(&mut f.vault);
    std::thread::scope(|scope| {
        let rotation = scope
            .spawn(|| drive_rotation(&mut Shared(&shared), "slow/secret", None, Timestamp::now()));
        let started = Instant::now();
        while !at_set.exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "set never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The rotator is blocked inside `set`: the vault is free for everyone else.
        {
            let mut vault = shared
                .try_lock()
                .expect("the vault is held while the rotator runs");
            let read = vault
                .get_secret_value("other", &VersionSelector::default())
                .unwrap();
            assert_eq!(read.value.as_bytes(), b"untouched");
            let read = vault
                .get_secret_value("slow/secret", &VersionSelector::default())
                .unwrap();
            assert_eq!(
                read.value.as_bytes(),
                b"before",
                "CURRENT moved before finish"
            );
        }
        std::fs::write(&go_on, "").unwrap();
        let outcome = rotation.join().unwrap().unwrap();
        assert!(outcome.finished);
    });
    assert_eq!(f.current("slow/secret").1, "after");
    assert_eq!(
        f.get(
            "slow/secret",
            VersionSelector::Label(StagingLabel::previous())
        )
        .1,
        "before"
    );
}

#[test]
fn automatic_key_rotation_runs_when_due() {
    let mut f = fixture();
    create(&mut f.vault, "k/secret", "value");
    let key = f.vault.list_keys().unwrap()[0].id.to_string();
    let status = f.vault.enable_key_rotation(&key, 365).unwrap();
    assert_eq!(status.period_days, Some(365));
    let now = Timestamp::now();
    assert!(f.vault.run_due(now).unwrap().keys_rotated.is_empty());
    let report = f.vault.run_due(now.plus_days(400)).unwrap();
    assert_eq!(report.keys_rotated.len(), 1);
    assert_eq!(report.data_keys_rewrapped, 1);
    let status = f.vault.key_rotation_status(&key).unwrap();
    assert_eq!(status.newest_version, 2);
    assert_eq!(status.stale_data_keys, 0);
    assert_eq!(
        status.next_rotation,
        Some(now.plus_days(400).plus_days(365))
    );
    assert!(f
        .vault
        .run_due(now.plus_days(401))
        .unwrap()
        .keys_rotated
        .is_empty());
    assert_eq!(f.current("k/secret").1, "value");
    assert!(f.vault.enable_key_rotation(&key, 0).is_err());
}

// ---- PostgreSQL ------------------------------------------------------------------

/// A throwaway PostgreSQL cluster: initdb into a temp dir, a free port on 127.0.0.1.
struct PgServer {
    _dir: TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

const PG_ADMIN: &str = "coffer_admin";
const PG_ADMIN_PASSWORD: &str = "admin-pass-Zk2";

fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// A CA and a server certificate it signed for 127.0.0.1, made at test time.
struct TestPki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Coffer test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        }
    }
}

impl PgServer {
    fn start() -> Option<PgServer> {
        Self::start_with(None)
    }

    /// With `tls`, the server has `ssl = on` with that certificate and key.
    fn start_with(tls: Option<&TestPki>) -> Option<PgServer> {
        let Some(bin) = pg_bin() else {
            eprintln!(
                "\n\n*** SKIPPING the PostgreSQL rotator test: no /usr/lib/postgresql/*/bin/initdb \
                 (apt-get install -y postgresql) ***\n"
            );
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("coffer-pg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PG_ADMIN_PASSWORD).unwrap();
        if as_postgres_user {
            let status = Command::new("chown")
                .args([
                    "postgres:",
                    dir.path().to_str().unwrap(),
                    pwfile.to_str().unwrap(),
                ])
                .status()
                .unwrap();
            assert!(status.success());
        }
        let server = PgServer {
            _dir: dir,
            data,
            bin,
            port: coffer_testkit::free_port(),
            as_postgres_user,
        };
        server.run(
            "initdb",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-U",
                PG_ADMIN,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "-A",
                "scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port,
            server.data.display()
        );
        if let Some(pki) = tls {
            // PostgreSQL wants its key private and owned by the server's user.
            let cert = server.data.join("server.crt");
            let key = server.data.join("server.key");
            std::fs::write(&cert, &pki.server_cert_pem).unwrap();
            std::fs::write(&key, &pki.server_key_pem).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            if server.as_postgres_user {
                let status = Command::new("chown")
                    .args(["postgres:", cert.to_str().unwrap(), key.to_str().unwrap()])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        let log = server.data.join("server.log");
        server.run(
            "pg_ctl",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        Some(server)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let output = if self.as_postgres_user {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap();
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn connect(&self, user: &str, password: &str) -> Result<::postgres::Client, ::postgres::Error> {
        ::postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect(::postgres::NoTls)
    }

    fn secret_json(&self, user: &str, password: &str) -> String {
        serde_json::json!({
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": self.port,
            "username": user,
            "password": password,
            "dbname": "postgres",
        })
        .to_string()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap_or_default().to_owned();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres_user {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

fn pg_rotator(sslmode: PgSslMode, ca_pem: Option<&str>) -> RotatorConfig {
    RotatorConfig::Postgres {
        strategy: PgStrategy::SingleUser,
        admin_secret: None,
        timeout_secs: 10,
        password: crate::password::PasswordOptions::default(),
        sslmode,
        ca_pem: ca_pem.map(str::to_owned),
    }
}

#[test]
fn postgres_rotator_over_tls_verifies_the_server() {
    let pki = TestPki::new();
    let Some(pg) = PgServer::start_with(Some(&pki)) else {
        return;
    };
    let mut admin = pg.connect(PG_ADMIN, PG_ADMIN_PASSWORD).unwrap();
    admin
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'app-old-pass-1'")
        .unwrap();
    let mut f = fixture();
    create(
        &mut f.vault,
        "db/app",
        &pg.secret_json("app", "app-old-pass-1"),
    );
    let configure = |f: &mut Fixture, rotator: RotatorConfig| {
        f.vault
            .configure_rotation("db/app", &settings(rotator, None))
            .unwrap()
    };

    // The right CA and the host in the certificate: rotated over verified TLS.
    configure(&mut f, pg_rotator(PgSslMode::VerifyFull, Some(&pki.ca_pem)));
    f.vault.rotate_secret("db/app").unwrap();
    let (_, first) = password_of(&mut f, "db/app", VersionSelector::default());
    assert_ne!(first, "app-old-pass-1");
    pg.connect("app", &first).unwrap();

    // Another CA: refused, with what to check, and CURRENT untouched.
    let stranger = TestPki::new();
    configure(
        &mut f,
        pg_rotator(PgSslMode::VerifyFull, Some(&stranger.ca_pem)),
    );
    let err = f.vault.rotate_secret("db/app").unwrap_err().to_string();
    assert!(err.contains("--pg-ca-file"), "{err}");
    assert!(!err.contains(&first), "the error shows a password: {err}");
    f.vault.cancel_rotation("db/app").unwrap();
    assert_eq!(
        password_of(&mut f, "db/app", VersionSelector::default()).1,
        first
    );

    // A host name the certificate does not have: verify-full refuses, verify-ca (chain
    // only) accepts.
    admin
        .batch_execute("CREATE ROLE named LOGIN PASSWORD 'named-old-pass-1'")
        .unwrap();
    let by_name = pg
        .secret_json("named", "named-old-pass-1")
        .replace("\"127.0.0.1\"", "\"localhost\"");
    create(&mut f.vault, "db/named", &by_name);
    f.vault
        .configure_rotation(
            "db/named",
            &settings(pg_rotator(PgSslMode::VerifyFull, Some(&pki.ca_pem)), None),
        )
        .unwrap();
    let err = f.vault.rotate_secret("db/named").unwrap_err().to_string();
    assert!(err.contains("host is a name in that certificate"), "{err}");
    f.vault.cancel_rotation("db/named").unwrap();
    f.vault
        .configure_rotation(
            "db/named",
            &settings(pg_rotator(PgSslMode::VerifyCa, Some(&pki.ca_pem)), None),
        )
        .unwrap();
    f.vault.rotate_secret("db/named").unwrap();
    let (_, second) = password_of(&mut f, "db/named", VersionSelector::default());
    assert_ne!(second, "named-old-pass-1");
    pg.connect("named", &second).unwrap();
}

#[test]
fn postgres_rotator_without_tls_on_the_server() {
    let Some(pg) = PgServer::start() else { return };
    let mut admin = pg.connect(PG_ADMIN, PG_ADMIN_PASSWORD).unwrap();
    admin
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'app-old-pass-2'")
        .unwrap();
    let mut f = fixture();
    create(
        &mut f.vault,
        "db/app",
        &pg.secret_json("app", "app-old-pass-2"),
    );
    // require: refused with what to change.
    f.vault
        .configure_rotation(
            "db/app",
            &settings(pg_rotator(PgSslMode::Require, None), None),
        )
        .unwrap();
    let err = f.vault.rotate_secret("db/app").unwrap_err().to_string();
    assert!(err.contains("offers no TLS"), "{err}");
    f.vault.cancel_rotation("db/app").unwrap();
    // prefer (the default, as libpq's): falls back to plain text, and says it may.
    let prefer = RotatorConfig::named("postgres").unwrap();
    f.vault
        .configure_rotation("db/app", &settings(prefer, None))
        .unwrap();
    f.vault.rotate_secret("db/app").unwrap();
    let (_, new) = password_of(&mut f, "db/app", VersionSelector::default());
    pg.connect("app", &new).unwrap();
    let info = f.vault.rotation_info("db/app").unwrap();
    let RotatorConfig::Postgres { sslmode, .. } = info.rotator else {
        panic!("not postgres")
    };
    assert!(sslmode.describe().starts_with("unencrypted if"));
}

fn password_of(f: &mut Fixture, name: &str, selector: VersionSelector) -> (String, String) {
    let (_, text) = f.get(name, selector);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        json["username"].as_str().unwrap().to_owned(),
        json["password"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn postgres_rotator_against_a_real_server() {
    let Some(pg) = PgServer::start() else { return };
    let mut admin = pg.connect(PG_ADMIN, PG_ADMIN_PASSWORD).unwrap();
    admin
        .batch_execute(
            "CREATE ROLE app LOGIN PASSWORD 'app-old-pass'; CREATE ROLE svc LOGIN PASSWORD 'svc-old-pass';
             CREATE TABLE t (x int); GRANT SELECT ON t TO svc;",
        )
        .unwrap();
    let mut f = fixture();

    // Single user: the role changes its own password.
    create(
        &mut f.vault,
        "db/app",
        &pg.secret_json("app", "app-old-pass"),
    );
    f.vault
        .configure_rotation(
            "db/app",
            &settings(
                RotatorConfig::named("postgres").unwrap(),
                Some("rate(30 days)"),
            ),
        )
        .unwrap();
    let outcome = f.vault.rotate_secret("db/app").unwrap();
    assert!(outcome.finished);
    let (user, new_password) = password_of(&mut f, "db/app", VersionSelector::default());
    assert_eq!(user, "app");
    assert!(
        pg.connect("app", "app-old-pass").is_err(),
        "the old password still works"
    );
    pg.connect("app", &new_password)
        .unwrap()
        .simple_query("SELECT 1")
        .unwrap();

    // A failure at test leaves CURRENT as it was: break the PENDING login by revoking
    // LOGIN between set and test.
    f.vault
        .rotate_secret_until("db/app", Some(Step::Set))
        .unwrap();
    admin.batch_execute("ALTER ROLE app NOLOGIN").unwrap();
    let err = f.vault.rotate_secret("db/app").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rotation(RotationError::StepFailed {
                step: Step::Test,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not permitted to log in"), "{err}");
    assert_eq!(
        password_of(&mut f, "db/app", VersionSelector::default()).1,
        new_password
    );
    admin.batch_execute("ALTER ROLE app LOGIN").unwrap();
    f.vault.rotate_secret("db/app").unwrap();
    let (_, third) = password_of(&mut f, "db/app", VersionSelector::default());
    assert_ne!(third, new_password);
    pg.connect("app", &third).unwrap();
    assert!(pg.connect("app", &new_password).is_err());

    // Alternating users: the admin secret clones svc as svc_clone; the previous
    // credentials keep working.
    create(
        &mut f.vault,
        "db/admin",
        &pg.secret_json(PG_ADMIN, PG_ADMIN_PASSWORD),
    );
    create(
        &mut f.vault,
        "db/svc",
        &pg.secret_json("svc", "svc-old-pass"),
    );
    f.vault
        .configure_rotation(
            "db/svc",
            &settings(
                RotatorConfig::Postgres {
                    strategy: PgStrategy::AlternatingUsers,
                    admin_secret: Some("db/admin".into()),
                    timeout_secs: 10,
                    password: crate::password::PasswordOptions::default(),
                    sslmode: PgSslMode::Disable,
                    ca_pem: None,
                },
                None,
            ),
        )
        .unwrap();
    f.vault.rotate_secret("db/svc").unwrap();
    let (user, password) = password_of(&mut f, "db/svc", VersionSelector::default());
    assert_eq!(user, "svc_clone");
    let mut clone = pg.connect("svc_clone", &password).unwrap();
    clone.simple_query("SELECT * FROM t").unwrap();
    pg.connect("svc", "svc-old-pass").unwrap();
    f.vault.rotate_secret("db/svc").unwrap();
    let (user, password2) = password_of(&mut f, "db/svc", VersionSelector::default());
    assert_eq!(user, "svc");
    pg.connect("svc", &password2).unwrap();
    assert!(pg.connect("svc", "svc-old-pass").is_err());
    pg.connect("svc_clone", &password).unwrap();
}

#[test]
fn an_idle_scheduler_pass_writes_nothing() {
    let mut f = fixture();
    create(&mut f.vault, "idle", "x");
    f.vault
        .configure_rotation(
            "idle",
            &settings(
                RotatorConfig::named("generate").unwrap(),
                Some("rate(10 days)"),
            ),
        )
        .unwrap();
    f.vault.flush_audit().unwrap();
    let count = |f: &Fixture| -> i64 {
        f.db()
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
            .unwrap()
    };
    let before = count(&f);
    for _ in 0..3 {
        let report = f.vault.run_due(Timestamp::now()).unwrap();
        assert!(report.rotated.is_empty() && report.failed.is_empty());
    }
    f.vault.flush_audit().unwrap();
    assert_eq!(count(&f), before);
}

#[test]
fn an_edited_rotator_configuration_is_refused_not_run() {
    let mut f = fixture();
    let marker = f.dir.path().join("evil-ran");
    let evil = f.script(
        "evil",
        &format!("cat > {}; echo '{{\"value\":\"x\"}}'", marker.display()),
    );
    create(&mut f.vault, "guarded", "the-value");
    f.vault
        .configure_rotation(
            "guarded",
            &settings(RotatorConfig::named("generate").unwrap(), None),
        )
        .unwrap();
    // Someone with write access to the file, but no audit key, swaps the rotator.
    let json = serde_json::to_string(&command(evil, 5)).unwrap();
    f.db()
        .execute("UPDATE secret_rotation SET rotator = ?1", [json])
        .unwrap();
    let err = f.vault.rotate_secret("guarded").unwrap_err();
    assert!(
        matches!(err, Error::Rotation(RotationError::ConfigTampered { .. })),
        "{err}"
    );
    assert_eq!(err.code(), "tampered");
    assert!(
        !marker.exists(),
        "the swapped rotator ran and saw the value"
    );
    assert_eq!(f.current("guarded").1, "the-value");
    // Setting it again through Coffer makes it usable again.
    f.vault
        .configure_rotation(
            "guarded",
            &settings(RotatorConfig::named("generate").unwrap(), None),
        )
        .unwrap();
    f.vault.rotate_secret("guarded").unwrap();
}
