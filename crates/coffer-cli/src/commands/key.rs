//! `coffer key …`: keys, aliases, versions and states.

use std::io::Write;

use coffer_core::service::{Request, Response};
use coffer_core::KeyDescription;

use super::{done, say, unexpected, Env};
use crate::cli::KeyCommand;
use crate::failure::Failure;
use crate::output::{render, table};

fn key_table(keys: &[KeyDescription], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.aliases.join(","),
                k.state.as_str().to_owned() + if k.is_default { " (default)" } else { "" },
                k.versions.len().to_string(),
                k.description.clone(),
            ]
        })
        .collect();
    table(
        out,
        &["KEY", "ALIASES", "STATE", "VERSIONS", "DESCRIPTION"],
        &rows,
    )
}

pub fn run(env: &Env, command: KeyCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    match command {
        KeyCommand::Create { description, alias } => {
            match backend.call(Request::CreateKey { description, alias })? {
                Response::Key(k) => render(env.output, &k, |k, out| {
                    key_table(std::slice::from_ref(k), out)
                }),
                other => Err(unexpected(other)),
            }
        }
        KeyCommand::List => match backend.call(Request::ListKeys)? {
            Response::Keys(keys) => render(env.output, &keys, |k, out| key_table(k, out)),
            other => Err(unexpected(other)),
        },
        KeyCommand::Describe { key } => match backend.call(Request::DescribeKey { key })? {
            Response::Key(k) => render(env.output, &k, |k, out| {
                key_table(std::slice::from_ref(k), out)?;
                writeln!(out)?;
                let rows: Vec<Vec<String>> = k
                    .versions
                    .iter()
                    .map(|v| vec![v.version.to_string(), v.created_at.to_string()])
                    .collect();
                table(out, &["VERSION", "CREATED"], &rows)
            }),
            other => Err(unexpected(other)),
        },
        KeyCommand::Rotate { key } => match backend.call(Request::RotateKey { key })? {
            Response::Key(k) => {
                let newest = k.versions.last().map(|v| v.version).unwrap_or(1);
                render(env.output, &k, |k, out| {
                    writeln!(
                        out,
                        "Key {} now has version {newest}; new data keys are wrapped under it.",
                        k.id
                    )
                })
            }
            other => Err(unexpected(other)),
        },
        KeyCommand::Enable { key } => done(
            env,
            &mut backend,
            Request::EnableKey { key: key.clone() },
            &format!("Enabled key {key}."),
        ),
        KeyCommand::Disable { key } => done(
            env,
            &mut backend,
            Request::DisableKey { key: key.clone() },
            &format!("Disabled key {key}."),
        ),
        KeyCommand::ScheduleDeletion {
            key,
            pending_window_in_days,
        } => {
            match backend.call(Request::ScheduleKeyDeletion { key: key.clone(), days: pending_window_in_days })? {
                Response::KeyDeletion { deletion_at } => say(
                    env,
                    &format!("Key {key} will be deleted on {deletion_at}; `coffer key cancel-deletion {key}` undoes it until then."),
                ),
                other => Err(unexpected(other)),
            }
        }
        KeyCommand::CancelDeletion { key } => done(
            env,
            &mut backend,
            Request::CancelKeyDeletion { key: key.clone() },
            &format!("Cancelled the deletion of key {key}; it is disabled, enable it to use it."),
        ),
        KeyCommand::CreateAlias { alias, key } => {
            let message = format!("{alias} now points at key {key}.");
            done(
                env,
                &mut backend,
                Request::CreateAlias { alias, key },
                &message,
            )
        }
        KeyCommand::DeleteAlias { alias } => {
            let message = format!("Deleted alias {alias}.");
            done(env, &mut backend, Request::DeleteAlias { alias }, &message)
        }
        KeyCommand::Rotation(command) => super::rotation::run_key(env, &mut backend, command),
    }
}
