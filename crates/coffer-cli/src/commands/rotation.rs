//! `coffer secret rotate|cancel-rotate|rotation-status`, `coffer rotation list`,
//! `coffer key rewrap|retire-version|enable-rotation|…` and `coffer daemon`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_core::rotation::{
    format_duration, parse_duration, PgSslMode, PgStrategy, RotationInfo, RotationSettings,
    RotatorConfig, Step,
};
use coffer_core::service::{Request, Response};
use coffer_core::vault::rewrap::drive_rewrap;
use coffer_core::Timestamp;
use serde_json::json;

use super::{done, unexpected, Backend, Env};
use crate::cli::{
    KeyRotationCommand, Output, RotateArgs, RotationCommand, SecretRotationCommand, StepArg,
    StrategyArg,
};
use crate::failure::Failure;
use crate::output::{fields, render, table};

fn short(time: Option<Timestamp>) -> String {
    time.map(|t| {
        let mut text = t.rfc3339();
        text.truncate(16);
        text.replace('T', " ")
    })
    .unwrap_or_else(|| "-".into())
}

fn rotation_fields(info: &RotationInfo, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![
        ("secret", info.secret_name.clone()),
        ("state", info.state.as_str().to_owned()),
        ("rotator", rotator_text(&info.rotator)),
        (
            "schedule",
            info.schedule.clone().unwrap_or_else(|| "on demand".into()),
        ),
    ];
    if let Some(window) = &info.window {
        rows.push(("window", window.clone()));
    }
    if let RotatorConfig::Postgres { sslmode, .. } = &info.rotator {
        rows.push(("connection", sslmode.describe().to_owned()));
    }
    rows.push(("last rotated", short(info.last_rotated)));
    rows.push(("next rotation", short(info.next_rotation)));
    if let (Some(token), Some(step)) = (&info.token, info.step) {
        rows.push(("in progress", format!("next step {step}, token {token}")));
    }
    if let Some(error) = &info.last_error {
        rows.push(("attempts", info.attempts.to_string()));
        rows.push(("last error", error.clone()));
        rows.push(("next retry", short(info.next_retry)));
    }
    fields(out, &rows)
}

fn rotator_text(config: &RotatorConfig) -> String {
    match config {
        RotatorConfig::Generate { field: Some(f), .. } => format!("generate (field {f})"),
        RotatorConfig::Generate { .. } => "generate".into(),
        RotatorConfig::Command {
            path, timeout_secs, ..
        } => format!("command {path} (timeout {timeout_secs}s)"),
        RotatorConfig::Postgres {
            strategy: PgStrategy::SingleUser,
            ..
        } => "postgres (single user)".into(),
        RotatorConfig::Postgres {
            strategy: PgStrategy::AlternatingUsers,
            admin_secret,
            ..
        } => format!(
            "postgres (alternating users, admin {})",
            admin_secret.as_deref().unwrap_or("?")
        ),
    }
}

fn wants_config(args: &RotateArgs) -> bool {
    args.rotator.is_some()
        || args.schedule.is_some()
        || args.window.is_some()
        || args.command_path.is_some()
        || !args.command_args.is_empty()
        || args.step_timeout.is_some()
        || args.field.is_some()
        || args.strategy.is_some()
        || args.admin_secret.is_some()
        || args.password_length.is_some()
}

/// The settings to save: the existing ones with the given flags applied.
fn settings(
    args: &RotateArgs,
    existing: Option<RotationInfo>,
) -> Result<RotationSettings, Failure> {
    let mut rotator = match (&args.rotator, &existing) {
        (Some(kind), _) => RotatorConfig::named(kind).map_err(Failure::usage)?,
        (None, Some(info)) => info.rotator.clone(),
        (None, None) => {
            return Err(Failure::usage(format!(
            "secret {:?} has no rotator yet; choose one with --rotator generate|command|postgres",
            args.name
        )))
        }
    };
    let misplaced = |flag: &str, kind: &str| {
        Failure::usage(format!(
            "{flag} applies to the {kind} rotator, not to {}",
            rotator_kind(&args.rotator, &existing)
        ))
    };
    match &mut rotator {
        RotatorConfig::Generate { field, password } => {
            if args.command_path.is_some() || !args.command_args.is_empty() {
                return Err(misplaced("--command", "command"));
            }
            if args.strategy.is_some() || args.admin_secret.is_some() {
                return Err(misplaced("--strategy/--admin-secret", "postgres"));
            }
            if args.pg_sslmode.is_some() || args.pg_ca_file.is_some() {
                return Err(misplaced("--pg-sslmode/--pg-ca-file", "postgres"));
            }
            if let Some(f) = &args.field {
                *field = Some(f.clone());
            }
            if let Some(length) = args.password_length {
                password.length = length;
            }
        }
        RotatorConfig::Command {
            path,
            args: command_args,
            timeout_secs,
        } => {
            if args.field.is_some() || args.password_length.is_some() {
                return Err(misplaced("--field/--password-length", "generate"));
            }
            if args.strategy.is_some() || args.admin_secret.is_some() {
                return Err(misplaced("--strategy/--admin-secret", "postgres"));
            }
            if args.pg_sslmode.is_some() || args.pg_ca_file.is_some() {
                return Err(misplaced("--pg-sslmode/--pg-ca-file", "postgres"));
            }
            if let Some(p) = &args.command_path {
                let absolute = std::path::Path::new(p).canonicalize().map_err(|e| {
                    Failure::usage(format!("the rotator command {p:?} cannot be found: {e}"))
                })?;
                *path = absolute.to_string_lossy().into_owned();
            }
            if !args.command_args.is_empty() {
                *command_args = args.command_args.clone();
            }
            if let Some(t) = args.step_timeout {
                *timeout_secs = t;
            }
        }
        RotatorConfig::Postgres {
            strategy,
            admin_secret,
            timeout_secs,
            password,
            sslmode,
            ca_pem,
        } => {
            if args.command_path.is_some() || !args.command_args.is_empty() {
                return Err(misplaced("--command", "command"));
            }
            if args.field.is_some() {
                return Err(misplaced("--field", "generate"));
            }
            if let Some(s) = args.strategy {
                *strategy = match s {
                    StrategyArg::SingleUser => PgStrategy::SingleUser,
                    StrategyArg::AlternatingUsers => PgStrategy::AlternatingUsers,
                };
            }
            if let Some(a) = &args.admin_secret {
                *admin_secret = Some(a.clone());
            }
            if let Some(t) = args.step_timeout {
                *timeout_secs = t;
            }
            if let Some(length) = args.password_length {
                password.length = length;
            }
            if let Some(file) = &args.pg_ca_file {
                *ca_pem = Some(read_ca_file(file)?);
                *sslmode = PgSslMode::VerifyFull;
            }
            if let Some(mode) = &args.pg_sslmode {
                *sslmode = PgSslMode::parse(mode).map_err(Failure::usage)?;
                if !sslmode.verifies() && args.pg_ca_file.is_none() {
                    // A CA kept from before would be unused under this mode.
                    *ca_pem = None;
                }
            }
        }
    }
    Ok(RotationSettings {
        schedule: args
            .schedule
            .clone()
            .or_else(|| existing.as_ref().and_then(|i| i.schedule.clone())),
        window: args
            .window
            .clone()
            .or_else(|| existing.as_ref().and_then(|i| i.window.clone())),
        rotator,
    })
}

/// The CA file's text, read whole; the engine checks that it holds certificates.
fn read_ca_file(path: &std::path::Path) -> Result<String, Failure> {
    const LIMIT: u64 = 1 << 20;
    let size = std::fs::metadata(path)
        .map_err(|e| Failure::usage(format!("cannot read the CA file {}: {e}", path.display())))?
        .len();
    if size > LIMIT {
        return Err(Failure::usage(format!(
            "the CA file {} is {size} bytes, more than a CA certificate file should be (1 MiB); give the PEM file of the CA that signed the server's certificate",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the CA file {} as text (PEM): {e}",
            path.display()
        ))
    })
}

fn rotator_kind(given: &Option<String>, existing: &Option<RotationInfo>) -> String {
    given
        .clone()
        .or_else(|| existing.as_ref().map(|i| i.rotator.kind().to_owned()))
        .unwrap_or_default()
}

pub fn run_secret(
    env: &Env,
    backend: &mut Backend,
    command: SecretRotationCommand,
) -> Result<(), Failure> {
    match command {
        SecretRotationCommand::Rotate(args) => {
            if wants_config(&args) {
                let existing = match backend.call(Request::RotationStatus {
                    name: args.name.clone(),
                }) {
                    Ok(Response::Rotation(info)) => Some(*info),
                    Ok(other) => return Err(unexpected(other)),
                    Err(_) => None,
                };
                let settings = settings(&args, existing)?;
                match backend.call(Request::ConfigureRotation {
                    name: args.name.clone(),
                    settings,
                })? {
                    Response::Rotation(info) => {
                        if args.no_rotate_immediately {
                            return render(env.output, &info, |i, out| rotation_fields(i, out));
                        }
                        if env.output == Output::Table {
                            eprintln!(
                                "coffer: rotation of {} set: {}",
                                info.secret_name,
                                rotator_text(&info.rotator)
                            );
                        }
                    }
                    other => return Err(unexpected(other)),
                }
            } else if args.no_rotate_immediately {
                return Err(Failure::usage(
                    "--no-rotate-immediately only makes sense with a rotator or schedule to save",
                ));
            }
            let stop_after = args.stop_after.map(|s| match s {
                StepArg::Create => Step::Create,
                StepArg::Set => Step::Set,
                StepArg::Test => Step::Test,
            });
            match backend.call(Request::RotateSecret {
                name: args.name.clone(),
                stop_after,
            })? {
                Response::Rotated(outcome) => render(env.output, &outcome, |o, out| {
                    let version = o.version_id.map(|v| v.to_string()).unwrap_or_default();
                    if o.finished {
                        writeln!(
                            out,
                            "Rotated {}: version {version} is CURRENT now; the old one is PREVIOUS.",
                            o.secret_name
                        )
                    } else {
                        writeln!(
                            out,
                            "Stopped rotating {} after step {}; version {version} is PENDING and CURRENT is unchanged. `coffer secret rotate {}` resumes.",
                            o.secret_name,
                            o.completed.map(|s| s.as_str()).unwrap_or("-"),
                            o.secret_name
                        )
                    }
                }),
                other => Err(unexpected(other)),
            }
        }
        SecretRotationCommand::CancelRotate { name } => {
            match backend.call(Request::CancelRotation { name: name.clone() })? {
                Response::Rotation(info) => render(env.output, &info, |i, out| {
                    writeln!(out, "Turned scheduled rotation of {name} off.")?;
                    if let Some(step) = i.step {
                        writeln!(out, "A rotation is still in progress (next step {step}); its PENDING version is kept, and `coffer secret rotate {name}` finishes it.")?;
                    }
                    Ok(())
                }),
                other => Err(unexpected(other)),
            }
        }
        SecretRotationCommand::RotationStatus { name, history } => {
            let info = match backend.call(Request::RotationStatus { name: name.clone() })? {
                Response::Rotation(info) => info,
                other => return Err(unexpected(other)),
            };
            let history = match backend.call(Request::RotationHistory {
                name,
                limit: history.max(1),
            })? {
                Response::RotationHistory(h) => h,
                other => return Err(unexpected(other)),
            };
            let body = json!({ "rotation": info, "history": history });
            render(env.output, &body, |_, out| {
                rotation_fields(&info, out)?;
                if !history.is_empty() {
                    writeln!(out)?;
                    let rows: Vec<Vec<String>> = history
                        .iter()
                        .map(|h| {
                            vec![
                                short(Some(h.at)),
                                h.step.to_string(),
                                h.result.clone(),
                                h.version_id.map(|v| v.to_string()).unwrap_or_default(),
                                h.error.clone().unwrap_or_default(),
                            ]
                        })
                        .collect();
                    table(out, &["WHEN", "STEP", "RESULT", "VERSION", "ERROR"], &rows)?;
                }
                Ok(())
            })
        }
    }
}

pub fn run_list(env: &Env, command: RotationCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    match command {
        RotationCommand::List => match backend.call(Request::ListRotations)? {
            Response::Rotations(all) => render(env.output, &all, |all, out| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|i| {
                        vec![
                            i.secret_name.clone(),
                            i.state.as_str().to_owned(),
                            short(i.next_rotation),
                            short(i.last_rotated),
                            i.rotator.kind().to_owned(),
                            i.schedule.clone().unwrap_or_else(|| "on demand".into()),
                            i.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(
                    out,
                    &[
                        "SECRET", "STATE", "NEXT", "LAST", "ROTATOR", "SCHEDULE", "ERROR",
                    ],
                    &rows,
                )
            }),
            other => Err(unexpected(other)),
        },
    }
}

pub fn run_key(
    env: &Env,
    backend: &mut Backend,
    command: KeyRotationCommand,
) -> Result<(), Failure> {
    match command {
        KeyRotationCommand::Rewrap { key, batch_size } => {
            let progress = drive_rewrap(
                || match backend.call(Request::RewrapKeyBatch {
                    key: key.clone(),
                    batch: batch_size,
                })? {
                    Response::Rewrap(p) => Ok(p),
                    other => Err(unexpected(other)),
                },
                &mut |p| {
                    let all = p.done + p.remaining;
                    let percent = (p.done * 100).checked_div(all).unwrap_or(100);
                    eprintln!(
                        "coffer: re-wrapped {} of {all} data keys under version {} ({percent}%)",
                        p.done, p.to_version
                    );
                },
            )?;
            let body = json!({
                "key_id": progress.key_id,
                "to_version": progress.to_version,
                "rewrapped": progress.done,
                "remaining": progress.remaining,
            });
            render(env.output, &body, |_, out| {
                writeln!(
                    out,
                    "Every data key of key {} is wrapped under version {} ({} re-wrapped now); older versions wrapping none can be retired.",
                    progress.key_id, progress.to_version, progress.done
                )
            })
        }
        KeyRotationCommand::RetireVersion { key, version } => done(
            env,
            backend,
            Request::RetireKeyVersion {
                key: key.clone(),
                version,
            },
            &format!("Retired version {version} of key {key}: its sealed key is deleted."),
        ),
        KeyRotationCommand::EnableRotation { key, period_days } => {
            match backend.call(Request::EnableKeyRotation { key, period_days })? {
                Response::KeyRotation(info) => render(env.output, &info, |i, out| {
                    writeln!(
                        out,
                        "Key {} rotates every {period_days} days; next on {}.",
                        i.key_id,
                        short(i.next_rotation)
                    )
                }),
                other => Err(unexpected(other)),
            }
        }
        KeyRotationCommand::DisableRotation { key } => done(
            env,
            backend,
            Request::DisableKeyRotation { key: key.clone() },
            &format!("Automatic rotation of key {key} is off."),
        ),
        KeyRotationCommand::RotationStatus { key } => {
            match backend.call(Request::KeyRotationStatus { key })? {
                Response::KeyRotation(info) => render(env.output, &info, |i, out| {
                    fields(
                        out,
                        &[
                            ("key", i.key_id.to_string()),
                            (
                                "rotation",
                                i.period_days
                                    .map(|d| format!("every {d} days"))
                                    .unwrap_or_else(|| "off".into()),
                            ),
                            ("next rotation", short(i.next_rotation)),
                            ("newest version", i.newest_version.to_string()),
                            ("to re-wrap", i.stale_data_keys.to_string()),
                        ],
                    )?;
                    writeln!(out)?;
                    let rows: Vec<Vec<String>> = i
                        .data_keys_by_version
                        .iter()
                        .map(|(v, n)| vec![v.to_string(), n.to_string()])
                        .collect();
                    table(out, &["VERSION", "DATA KEYS"], &rows)
                }),
                other => Err(unexpected(other)),
            }
        }
    }
}

/// The headless scheduler: runs what is due, sleeps until the next due time (at most
/// `max_sleep`), and again; `--once` runs one pass.
/// What `coffer daemon` was asked to do.
pub struct DaemonOptions<'a> {
    pub once: bool,
    pub max_sleep: &'a str,
    pub now: Option<&'a str>,
    pub listen: Option<&'a str>,
    pub stay_locked: bool,
    pub aws_listen: Option<&'a str>,
    pub aws_tls: AwsTls,
}

/// How the AWS-compatible API serves TLS, if it does.
pub struct AwsTls {
    /// A certificate Coffer makes (`--aws-tls`), for these extra names.
    pub generate: bool,
    pub names: Vec<String>,
    /// Where to write the generated CA certificate.
    pub ca_out: Option<std::path::PathBuf>,
    /// The user's certificate chain and key files.
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl AwsTls {
    /// The server configuration, and the line to print about it.
    fn server(
        &self,
        vault: &Arc<Mutex<coffer_core::Vault>>,
        address: &str,
    ) -> Result<Option<coffer_aws_server::tls::ServerTls>, Failure> {
        let tls = if let Some((cert, key)) = &self.cert {
            coffer_aws_server::tls::from_files(cert, key)
        } else if self.generate {
            let seed = crate::peers::lock(vault).aws_tls_seed()?;
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            if let Ok(socket) = address.parse::<std::net::SocketAddr>() {
                if !socket.ip().is_unspecified() {
                    names.push(socket.ip().to_string());
                }
            }
            names.extend(self.names.iter().cloned());
            names.sort();
            names.dedup();
            coffer_aws_server::tls::generated(&seed, &names)
        } else {
            return Ok(None);
        };
        let tls = tls.map_err(|e| Failure::usage(e.to_string()))?;
        if let (Some(path), Some(pem)) = (&self.ca_out, &tls.ca_pem) {
            std::fs::write(path, pem).map_err(|e| {
                Failure::usage(format!(
                    "cannot write the API's CA certificate to {}: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(Some(tls))
    }
}

pub fn daemon(env: &Env, options: DaemonOptions<'_>) -> Result<(), Failure> {
    let DaemonOptions {
        once,
        max_sleep,
        now,
        listen,
        stay_locked,
        aws_listen,
        aws_tls,
    } = options;
    let max_sleep =
        parse_duration(max_sleep).map_err(|e| Failure::usage(format!("--max-sleep: {e}")))?;
    let clock = now
        .map(|text| {
            serde_json::from_value::<Timestamp>(json!(text))
                .map_err(|_| Failure::usage(format!("--now {text:?} is not an RFC 3339 time")))
        })
        .transpose()?;
    let vault = Arc::new(Mutex::new(crate::in_process::open_unlocked(env)?));
    // Peers that reach the listener, for the replication thread to retry at once.
    let contacts = coffer_core::vault::replication::Contacts::new();
    // Kept alive for the daemon's life: dropping it stops listening.
    let _listener = listen
        .map(|address| crate::peers::listen(&vault, address, Arc::clone(&contacts)))
        .transpose()?;
    // Kept alive for the daemon's life: dropping it stops replicating.
    let mut _replicator = None;
    if stay_locked {
        // The listener keeps only its TLS key and what it remembered; the vault's keys go.
        crate::peers::lock(&vault).lock()?;
        eprintln!("coffer: vault locked; what peers send is kept sealed until it is next unlocked");
    } else if !once {
        _replicator = crate::peers::replicate(&vault, contacts);
        if _listener.is_some() {
            crate::peers::announce(&vault);
        }
    }
    let _aws = aws_listen
        .map(|address| {
            let log: coffer_aws_server::Log =
                std::sync::Arc::new(|line| eprintln!("coffer: aws api: {line}"));
            let tls = aws_tls.server(&vault, address)?;
            let config = tls.as_ref().map(|t| Arc::clone(&t.config));
            let listener = coffer_aws_server::AwsListener::start_with_tls(
                address,
                Arc::clone(&vault),
                log,
                config,
            )
            .map_err(|e| Failure::usage(e.to_string()))?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            eprintln!(
                "coffer: AWS-compatible API (Secrets Manager, KMS) listening on {scheme}://{}",
                listener.local_addr()
            );
            if let Some(tls) = &tls {
                let what = if tls.ca_pem.is_some() {
                    "the CA clients pin"
                } else {
                    "the server certificate"
                };
                eprintln!(
                    "coffer: AWS API TLS: SHA-256 fingerprint of {what}: {}",
                    tls.fingerprint
                );
            }
            Ok::<_, Failure>(listener)
        })
        .transpose()?;
    if env.output == Output::Table && !once {
        eprintln!(
            "coffer: daemon running for {} (checks at least every {})",
            env.vault.display(),
            format_duration(max_sleep)
        );
    }
    loop {
        let now = clock.unwrap_or_else(Timestamp::now);
        let mut vault = crate::peers::lock(&vault);
        let next = match vault.run_due(now) {
            // Held locked (--stay-locked): nothing can be rotated; the listener works on.
            _ if !vault.is_unlocked() => None,
            Ok(report) => {
                let body = json!(report);
                match env.output {
                    Output::Json => println!("{body}"),
                    Output::Table => {
                        for name in &report.rotated {
                            println!("rotated {name}");
                        }
                        for key in &report.keys_rotated {
                            println!("rotated key {key}");
                        }
                        if report.data_keys_rewrapped > 0 {
                            println!("re-wrapped {} data keys", report.data_keys_rewrapped);
                        }
                        for failure in &report.failed {
                            println!("failed {}: {}", failure.name, failure.message);
                        }
                    }
                }
                report.next_due
            }
            Err(error) => {
                eprintln!("coffer: daemon pass failed: {error}");
                None
            }
        };
        vault.flush_audit()?;
        drop(vault);
        if once {
            return Ok(());
        }
        let until_next = next
            .map(|t| t.millis() - Timestamp::now().millis())
            .unwrap_or(max_sleep)
            .clamp(1_000, max_sleep.max(1_000));
        std::thread::sleep(Duration::from_millis(until_next as u64));
    }
}
