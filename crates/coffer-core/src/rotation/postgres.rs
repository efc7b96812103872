//! The built-in PostgreSQL rotator, with Secrets Manager's two strategies.
//!
//! The secret is JSON `{"host", "port", "username", "password", "dbname"}`. The rotator
//! connects only to the host and port in the secret (the admin secret's credentials are
//! used against that host too), and `ALTER ROLE … PASSWORD` is sent a SCRAM-SHA-256
//! verifier computed here, so the new password never crosses the wire in clear.
//!
//! - single user: the role logs in with its CURRENT password and changes its own.
//! - alternating users: the admin alternates between `user` and `user_clone`
//!   (creating the clone as a member of the original role on first use), so the
//!   PREVIOUS credentials keep working until the next rotation.
//!
//! Every step is idempotent: `set` first tries the PENDING credentials and does nothing
//! if they already work (a retry after a crash that followed a successful `set`).

use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg_tls::{self, PgSslMode};
use super::rotator::{json_object, RotatorFailure, StepInput};
use super::{PgStrategy, RotatorConfig, Step};
use crate::model::SecretValue;
use crate::password::PasswordOptions;

const CLONE_SUFFIX: &str = "_clone";

/// How connections are protected: the rotator's sslmode and CA.
#[derive(Clone, Default)]
struct Transport {
    sslmode: PgSslMode,
    ca_pem: Option<String>,
}

/// The connection fields of a secret.
struct Credentials {
    host: String,
    port: u16,
    username: String,
    password: Zeroizing<String>,
    dbname: String,
    transport: Transport,
}

impl Credentials {
    fn from_json(map: &Map<String, Value>, which: &str) -> Result<Credentials, RotatorFailure> {
        let text = |field: &str| -> Result<String, RotatorFailure> {
            map.get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    RotatorFailure::new(format!(
                        "the {which} secret has no {field:?} field; the PostgreSQL rotator needs JSON with host, port, username, password and dbname"
                    ))
                })
        };
        let port = match map.get("port") {
            None | Some(Value::Null) => 5432,
            Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            Some(_) => 0,
        };
        if port == 0 {
            return Err(RotatorFailure::new(format!(
                "the {which} secret's \"port\" is not a port number"
            )));
        }
        Ok(Credentials {
            host: text("host")?,
            port,
            username: text("username")?,
            password: Zeroizing::new(text("password")?),
            dbname: map
                .get("dbname")
                .and_then(Value::as_str)
                .unwrap_or("postgres")
                .to_owned(),
            transport: Transport::default(),
        })
    }

    fn config(&self, timeout: Duration) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.username)
            .password(self.password.as_bytes())
            .dbname(&self.dbname)
            .connect_timeout(timeout)
            .application_name("coffer-rotation");
        config
    }

    fn connect(&self, timeout: Duration) -> Result<postgres::Client, String> {
        let mode = self.transport.sslmode;
        let mut config = self.config(timeout);
        let connected = match mode {
            PgSslMode::Disable => config
                .ssl_mode(postgres::config::SslMode::Disable)
                .connect(postgres::NoTls),
            PgSslMode::Prefer
            | PgSslMode::Require
            | PgSslMode::VerifyCa
            | PgSslMode::VerifyFull => {
                let tls = pg_tls::client_config(mode, self.transport.ca_pem.as_deref())?;
                config
                    .ssl_mode(if mode == PgSslMode::Prefer {
                        postgres::config::SslMode::Prefer
                    } else {
                        postgres::config::SslMode::Require
                    })
                    .connect(MakeRustlsConnect::new(tls))
            }
        };
        connected.map_err(|e| describe_connect(&e, mode))
    }
}

/// A connection failure in one sentence; TLS failures say what to change.
fn describe_connect(error: &postgres::Error, mode: PgSslMode) -> String {
    if error.as_db_error().is_some() {
        return describe(error);
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("server does not support tls")
        || lower.contains("server does not support ssl")
    {
        format!(
            "the server offers no TLS, which sslmode {mode} requires; turn on ssl in the server's postgresql.conf, or (only on a trusted network) use --pg-sslmode disable"
        )
    } else if lower.contains("certificate") || lower.contains("tls") {
        format!(
            "the TLS connection was refused under sslmode {mode} ({text}); check that --pg-ca-file is the CA that signed the server's certificate{}",
            if mode == PgSslMode::VerifyFull {
                " and that the secret's host is a name in that certificate"
            } else {
                ""
            }
        )
    } else {
        text
    }
}

fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1): a longer clone name
/// would silently become the live user's own name, and the rotation would change the
/// password that is in use.
const MAX_ROLE_NAME: usize = 63;

fn check_role_name(name: &str) -> Result<(), RotatorFailure> {
    if name.len() > MAX_ROLE_NAME {
        return Err(RotatorFailure::new(format!(
            "the role name {name:?} is {} bytes, more than PostgreSQL's {MAX_ROLE_NAME}: it would be cut to another role's name; use a user name of at most {} bytes for alternating users",
            name.len(),
            MAX_ROLE_NAME - CLONE_SUFFIX.len()
        )));
    }
    Ok(())
}

fn other_user(username: &str) -> String {
    match username.strip_suffix(CLONE_SUFFIX) {
        Some(base) if !base.is_empty() => base.to_owned(),
        _ => format!("{username}{CLONE_SUFFIX}"),
    }
}

pub(super) fn run_step(
    config: &RotatorConfig,
    input: &StepInput<'_>,
) -> Result<Option<SecretValue>, RotatorFailure> {
    let RotatorConfig::Postgres {
        strategy,
        timeout_secs,
        password,
        sslmode,
        ca_pem,
        ..
    } = config
    else {
        return Err(RotatorFailure::new(
            "not a PostgreSQL rotator configuration",
        ));
    };
    let timeout = Duration::from_secs(*timeout_secs);
    let transport = Transport {
        sslmode: *sslmode,
        ca_pem: ca_pem.clone(),
    };
    let current = json_object(input.current, "the PostgreSQL rotator")?;
    let mut current_creds = Credentials::from_json(&current, "rotated")?;
    current_creds.transport = transport.clone();
    if input.step == Step::Create {
        let mut options: PasswordOptions = password.clone();
        // Characters that trip up connection strings and shells, as Secrets Manager does.
        options.exclude_characters.push_str("/@\"'\\");
        let new_password = crate::password::generate_password(&options)
            .map_err(|e| RotatorFailure::new(format!("cannot generate a password: {e}")))?;
        let mut pending = current;
        if *strategy == PgStrategy::AlternatingUsers {
            let clone = other_user(&current_creds.username);
            check_role_name(&clone)?;
            pending.insert("username".into(), Value::String(clone));
        }
        pending.insert("password".into(), Value::String(new_password.to_string()));
        let text = Zeroizing::new(Value::Object(pending).to_string());
        return Ok(Some(SecretValue::text(text.as_str())));
    }
    let pending_map = json_object(input.pending, "the PostgreSQL rotator's PENDING version")?;
    let mut pending = Credentials::from_json(&pending_map, "PENDING")?;
    pending.transport = transport.clone();
    check_role_name(&pending.username)?;
    if pending.host != current_creds.host || pending.port != current_creds.port {
        return Err(RotatorFailure::new(
            "the PENDING version names another host or port than CURRENT; refusing to connect elsewhere",
        ));
    }
    let admin = match (strategy, input.step) {
        (PgStrategy::AlternatingUsers, Step::Set) => {
            let admin = json_object(input.admin, "the alternating-users strategy's admin secret")?;
            let mut admin = Credentials::from_json(&admin, "admin")?;
            // Only ever the rotated secret's host, and the same protection.
            admin.host = current_creds.host.clone();
            admin.port = current_creds.port;
            admin.transport = transport.clone();
            Some(admin)
        }
        _ => None,
    };
    let strategy = *strategy;
    let step = input.step;
    // The client blocks; a thread bounds every step by the timeout.
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = match step {
            Step::Set => set(strategy, &current_creds, &pending, admin.as_ref(), timeout),
            Step::Test => test(&pending, timeout),
            Step::Create | Step::Finish => Ok(()),
        };
        let _ = done.send(outcome);
    });
    match result.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(Ok(())) => Ok(None),
        Ok(Err(reason)) => Err(RotatorFailure::new(reason)),
        Err(_) => Err(RotatorFailure {
            reason: format!(
                "PostgreSQL did not answer step {step} within {} s",
                timeout.as_secs()
            ),
            timed_out: true,
        }),
    }
}

fn test(pending: &Credentials, timeout: Duration) -> Result<(), String> {
    let mut client = pending.connect(timeout).map_err(|e| {
        format!(
            "logging in to {}:{} as {:?} with the PENDING password failed: {e}",
            pending.host, pending.port, pending.username
        )
    })?;
    client.simple_query("SELECT 1").map_err(|e| {
        format!(
            "a query with the PENDING credentials failed: {}",
            describe(&e)
        )
    })?;
    Ok(())
}

fn set(
    strategy: PgStrategy,
    current: &Credentials,
    pending: &Credentials,
    admin: Option<&Credentials>,
    timeout: Duration,
) -> Result<(), String> {
    // Already set by an attempt that crashed before recording it.
    if pending.connect(timeout).is_ok() {
        return Ok(());
    }
    let verifier = postgres_protocol::password::scram_sha_256(pending.password.as_bytes());
    let (who, creds) = match (strategy, admin) {
        (PgStrategy::SingleUser, _) => ("the CURRENT credentials", current),
        (PgStrategy::AlternatingUsers, Some(admin)) => ("the admin credentials", admin),
        (PgStrategy::AlternatingUsers, None) => {
            return Err("the alternating-users strategy needs the admin secret".into())
        }
    };
    let mut client = creds.connect(timeout).map_err(|e| {
        format!(
            "logging in to {}:{} as {:?} with {who} failed: {e}",
            creds.host, creds.port, creds.username
        )
    })?;
    let run = |client: &mut postgres::Client, sql: &str, what: &str| {
        client
            .batch_execute(sql)
            .map_err(|e| format!("{what} failed: {}", describe(&e)))
    };
    if strategy == PgStrategy::AlternatingUsers {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_roles WHERE rolname = $1",
                &[&pending.username],
            )
            .map_err(|e| {
                format!(
                    "looking up role {:?} failed: {}",
                    pending.username,
                    describe(&e)
                )
            })?
            .is_some();
        if !exists {
            run(
                &mut client,
                &format!(
                    "CREATE ROLE {} WITH LOGIN PASSWORD '{verifier}'; GRANT {} TO {}",
                    ident(&pending.username),
                    ident(&current.username),
                    ident(&pending.username)
                ),
                &format!("creating the clone role {:?}", pending.username),
            )?;
            return Ok(());
        }
    }
    run(
        &mut client,
        &format!(
            "ALTER ROLE {} WITH PASSWORD '{verifier}'",
            ident(&pending.username)
        ),
        &format!("changing the password of role {:?}", pending.username),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_name_postgres_would_truncate_is_refused_before_anything_changes() {
        let long = "a".repeat(58);
        let clone = other_user(&long);
        assert_eq!(clone.len(), 64);
        let error = check_role_name(&clone).unwrap_err();
        assert!(error.reason.contains("63"), "{}", error.reason);
        assert!(check_role_name(&other_user(&"a".repeat(57))).is_ok());
        let config = RotatorConfig::Postgres {
            strategy: PgStrategy::AlternatingUsers,
            admin_secret: Some("admin".into()),
            timeout_secs: 5,
            password: PasswordOptions::default(),
            sslmode: PgSslMode::Disable,
            ca_pem: None,
        };
        let current = SecretValue::text(
            serde_json::json!({"host": "127.0.0.1", "port": 1, "username": long, "password": "x", "dbname": "d"})
                .to_string(),
        );
        let input = StepInput {
            step: Step::Create,
            secret_name: "db",
            token: "t",
            current: Some(&current),
            pending: None,
            admin: None,
        };
        let error = run_step(&config, &input).unwrap_err();
        assert!(
            error.reason.contains("cut to another role"),
            "{}",
            error.reason
        );
    }

    #[test]
    fn alternates_between_user_and_clone() {
        assert_eq!(other_user("app"), "app_clone");
        assert_eq!(other_user("app_clone"), "app");
        assert_eq!(other_user("_clone"), "_clone_clone");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn secrets_without_fields_are_refused_clearly() {
        let config = RotatorConfig::named("postgres").unwrap();
        let current = SecretValue::text(r#"{"host":"127.0.0.1","username":"app"}"#);
        let input = StepInput {
            step: Step::Create,
            secret_name: "db",
            token: "t",
            current: Some(&current),
            pending: None,
            admin: None,
        };
        let err = run_step(&config, &input).unwrap_err();
        assert!(err.reason.contains("\"password\""), "{}", err.reason);
    }
}
