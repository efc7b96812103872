//! The rotators: what each step does to the target system.
//!
//! The vault hands a rotator the values it needs for a step ([`StepInput`]) and stores
//! what `create` returns as the PENDING version itself, so a rotator never writes to the
//! vault. Values reach a `command` rotator over its stdin as JSON and come back on its
//! stdout, never in its arguments or environment.

use std::time::Duration;

use serde_json::{json, Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::process::{self, Outcome};
use super::{RotatorConfig, Step};
use crate::model::SecretValue;
use crate::password::{generate_password, PasswordOptions};

/// What a step gets: the secret's CURRENT value, the PENDING one (from `set` on), and for
/// the alternating-users PostgreSQL strategy the admin secret's CURRENT value.
pub struct StepInput<'a> {
    pub step: Step,
    pub secret_name: &'a str,
    pub token: &'a str,
    pub current: Option<&'a SecretValue>,
    pub pending: Option<&'a SecretValue>,
    pub admin: Option<&'a SecretValue>,
}

/// Why a rotator failed; never contains a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatorFailure {
    pub reason: String,
    pub timed_out: bool,
}

impl RotatorFailure {
    pub fn new(reason: impl Into<String>) -> Self {
        RotatorFailure {
            reason: reason.into(),
            timed_out: false,
        }
    }
}

/// Runs one step. `create` returns the new value; the other steps return `None`.
pub fn run_step(
    config: &RotatorConfig,
    input: &StepInput<'_>,
) -> Result<Option<SecretValue>, RotatorFailure> {
    match config {
        RotatorConfig::Generate { field, password } => match input.step {
            Step::Create => generate_value(input.current, field.as_deref(), password).map(Some),
            _ => Ok(None),
        },
        RotatorConfig::Command {
            path,
            args,
            timeout_secs,
        } => run_command(path, args, Duration::from_secs(*timeout_secs), input),
        RotatorConfig::Postgres { .. } => super::postgres::run_step(config, input),
    }
}

/// A fresh password, or for a JSON secret, the current JSON with `field` replaced.
pub fn generate_value(
    current: Option<&SecretValue>,
    field: Option<&str>,
    options: &PasswordOptions,
) -> Result<SecretValue, RotatorFailure> {
    let password = generate_password(options)
        .map_err(|e| RotatorFailure::new(format!("cannot generate a password: {e}")))?;
    let Some(field) = field else {
        return Ok(SecretValue::Text(password));
    };
    let mut object = json_object(current, "the generate rotator with a field")?;
    object.insert(field.to_owned(), Value::String(password.to_string()));
    let text = Zeroizing::new(Value::Object(object).to_string());
    Ok(SecretValue::text(text.as_str()))
}

/// The CURRENT value as a JSON object (for field rotation and the PostgreSQL rotator).
pub fn json_object(
    value: Option<&SecretValue>,
    who: &str,
) -> Result<Map<String, Value>, RotatorFailure> {
    let value = value
        .ok_or_else(|| RotatorFailure::new(format!("{who} needs a CURRENT value to start from")))?;
    match serde_json::from_slice::<Value>(value.as_bytes()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(RotatorFailure::new(format!(
            "{who} needs the secret's value to be a JSON object"
        ))),
    }
}

fn value_fields(body: &mut Map<String, Value>, name: &str, value: Option<&SecretValue>) {
    use base64::Engine as _;
    match value {
        Some(SecretValue::Text(text)) => {
            body.insert(name.to_owned(), Value::String(text.to_string()));
        }
        Some(SecretValue::Binary(bytes)) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes.as_slice());
            body.insert(format!("{name}_base64"), Value::String(encoded));
        }
        None => {
            body.insert(name.to_owned(), Value::Null);
        }
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Most bytes read from a rotator's stdout.
const MAX_OUTPUT: usize = 1024 * 1024;

fn run_command(
    path: &str,
    args: &[String],
    timeout: Duration,
    input: &StepInput<'_>,
) -> Result<Option<SecretValue>, RotatorFailure> {
    let mut body = Map::new();
    body.insert("step".into(), json!(input.step.as_str()));
    body.insert("secret_name".into(), json!(input.secret_name));
    body.insert("token".into(), json!(input.token));
    value_fields(&mut body, "current", input.current);
    value_fields(&mut body, "pending", input.pending);
    let mut body = Value::Object(body);
    let request = Zeroizing::new(format!("{body}\n"));
    wipe(&mut body);

    // Checked again at every step: ownership and modes may have changed since it was saved.
    super::executable::check(path).map_err(RotatorFailure::new)?;
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend([input.step.as_str(), input.secret_name, input.token]);
    let outcome =
        process::run(path, &argv, request.as_bytes(), timeout, MAX_OUTPUT).map_err(|e| {
            RotatorFailure::new(format!("cannot start the rotator command {path:?}: {e}"))
        })?;
    let (status, stdout) = match outcome {
        Outcome::Exited { status, stdout } => (status, stdout),
        Outcome::TimedOut => {
            return Err(RotatorFailure {
                reason: format!(
                "the rotator command {path:?} did not finish step {} within {} s and was killed",
                input.step,
                timeout.as_secs()
            ),
                timed_out: true,
            })
        }
    };
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        // The one channel for a reason is a JSON `error` on stdout. Stderr is discarded,
        // never quoted: a script that echoes its input there would otherwise put a value
        // into the rotation status, which is stored and shown in plaintext.
        return Err(match reported_error(&stdout) {
            Some(reason) => RotatorFailure::new(format!(
                "the rotator command {path:?} {how}: {reason}"
            )),
            None => RotatorFailure::new(format!(
                "the rotator command {path:?} {how} without a reason (print {{\"error\": \"…\"}} on stdout to give one; stderr is discarded because it could hold values)"
            )),
        });
    }
    parse_reply(path, input.step, &stdout)
}

/// The reason a rotator that exited non-zero gave as `{"error": "…"}` on stdout.
fn reported_error(stdout: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(stdout).ok()?.trim();
    let mut reply: Value = serde_json::from_str(text).ok()?;
    let reason = error_of(&reply);
    wipe(&mut reply);
    reason
}

/// A reply's `error`, shortened for the rotation status it becomes.
fn error_of(reply: &Value) -> Option<String> {
    reply
        .get("error")
        .and_then(Value::as_str)
        .map(|e| e.chars().take(300).collect())
}

fn parse_reply(
    path: &str,
    step: Step,
    stdout: &[u8],
) -> Result<Option<SecretValue>, RotatorFailure> {
    use base64::Engine as _;
    let text = std::str::from_utf8(stdout).unwrap_or("").trim();
    if text.is_empty() {
        return if step == Step::Create {
            Err(RotatorFailure::new(format!(
                "the rotator command {path:?} printed nothing at step create; it must print a JSON object like {{\"value\": \"…\"}}"
            )))
        } else {
            Ok(None)
        };
    }
    let mut reply: Value = serde_json::from_str(text).map_err(|e| {
        RotatorFailure::new(format!(
            "the rotator command {path:?} printed something that is not JSON ({e}); print one JSON object like {{\"value\": \"…\"}}"
        ))
    })?;
    let result = (|| {
        let Value::Object(map) = &reply else {
            return Err(RotatorFailure::new(format!(
                "the rotator command {path:?} printed JSON that is not an object"
            )));
        };
        if let Some(error) = error_of(&reply) {
            return Err(RotatorFailure::new(format!(
                "the rotator command {path:?} reported an error: {error}"
            )));
        }
        if step != Step::Create {
            return Ok(None);
        }
        match (map.get("value"), map.get("value_base64")) {
            (Some(Value::String(text)), None) => Ok(Some(SecretValue::text(text.as_str()))),
            (None, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(|bytes| Some(SecretValue::binary(bytes)))
                .map_err(|_| {
                    RotatorFailure::new(format!(
                        "the rotator command {path:?} printed a value_base64 that is not base64"
                    ))
                }),
            _ => Err(RotatorFailure::new(format!(
                "the rotator command {path:?} must print {{\"value\": \"…\"}} (or {{\"value_base64\": \"…\"}}) at step create"
            ))),
        }
    })();
    wipe(&mut reply);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn script(dir: &std::path::Path, body: &str) -> String {
        let path = dir.join(format!("rotator-{}", rand::random::<u32>()));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn input<'a>(step: Step, current: Option<&'a SecretValue>) -> StepInput<'a> {
        StepInput {
            step,
            secret_name: "app/db",
            token: "tok-1",
            current,
            pending: None,
            admin: None,
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
    fn command_gets_values_on_stdin_only_and_returns_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // Records its arguments and environment, echoes a value derived from stdin.
        let path = script(
            dir.path(),
            &format!(
                "echo \"$@\" > {log}; env >> {log}; read line; case \"$line\" in *old-secret*) echo '{{\"value\":\"new-secret\"}}';; *) exit 3;; esac",
                log = log.display()
            ),
        );
        let current = SecretValue::text("old-secret");
        let out = run_step(&command(path, 5), &input(Step::Create, Some(&current)))
            .unwrap()
            .unwrap();
        assert_eq!(out.as_bytes(), b"new-secret");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.starts_with("create app/db tok-1"), "{logged}");
        assert!(!logged.contains("old-secret"), "value leaked into args/env");
    }

    #[test]
    fn command_failures_are_specific() {
        let dir = tempfile::tempdir().unwrap();
        let current = SecretValue::text("x");
        let cases = [
            (
                "echo 'boom: target refused' >&2; exit 7",
                "exited with status 7 without a reason",
                "",
            ),
            (
                "echo '{\"error\":\"target refused\"}'; exit 7",
                "exited with status 7: target refused",
                "",
            ),
            ("echo not-json", "not JSON", "value"),
            ("echo '[1]'", "not an object", "[1]"),
            ("echo '{\"other\":1}'", "must print", "value"),
            (
                "echo '{\"error\":\"db down\"}'",
                "reported an error",
                "db down",
            ),
        ];
        for (body, needle, needle2) in cases {
            let err = run_step(
                &command(script(dir.path(), body), 5),
                &input(Step::Create, Some(&current)),
            )
            .unwrap_err();
            assert!(err.reason.contains(needle), "{body}: {}", err.reason);
            let _ = needle2;
            assert!(!err.timed_out);
        }
        let err = run_step(
            &command("/nonexistent/rotator".into(), 5),
            &input(Step::Set, None),
        )
        .unwrap_err();
        assert!(err.reason.contains("cannot be used"), "{}", err.reason);
        // Steps other than create may print nothing.
        assert!(run_step(
            &command(script(dir.path(), "true"), 5),
            &input(Step::Test, None)
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn stderr_is_never_quoted_in_a_failure() {
        // A careless script echoes the value it was handed to stderr, then fails: the
        // reason (stored as the rotation status) must not carry it.
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "cat >&2; echo 'current was hunter2-secret' >&2; exit 1",
        );
        let current = SecretValue::text("hunter2-secret");
        let err = run_step(&command(path, 5), &input(Step::Create, Some(&current))).unwrap_err();
        assert!(
            err.reason.contains("exited with status 1"),
            "{}",
            err.reason
        );
        assert!(!err.reason.contains("hunter2"), "{}", err.reason);
    }

    #[test]
    fn command_timeout_kills_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let path = script(dir.path(), &format!("sleep 3; touch {}", marker.display()));
        let started = Instant::now();
        let err = run_step(&command(path, 1), &input(Step::Set, None)).unwrap_err();
        assert!(err.timed_out, "{}", err.reason);
        assert!(err.reason.contains("within 1 s"), "{}", err.reason);
        assert!(started.elapsed() < Duration::from_millis(2500));
        std::thread::sleep(Duration::from_millis(2800));
        assert!(!marker.exists(), "the timed-out child was not killed");
    }

    #[test]
    fn generate_replaces_a_json_field() {
        let current = SecretValue::text(r#"{"user":"app","password":"old"}"#);
        let out = generate_value(
            Some(&current),
            Some("password"),
            &PasswordOptions::default(),
        )
        .unwrap();
        let json: Value = serde_json::from_slice(out.as_bytes()).unwrap();
        assert_eq!(json["user"], "app");
        assert_eq!(json["password"].as_str().unwrap().len(), 32);
        let err = generate_value(
            Some(&SecretValue::text("plain")),
            Some("password"),
            &PasswordOptions::default(),
        )
        .unwrap_err();
        assert!(err.reason.contains("JSON object"), "{}", err.reason);
    }
}
