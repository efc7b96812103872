//! `coffer secret …`: secrets, versions, labels, tags, deletion.

use std::io::Write;

use coffer_core::password::{generate_password, PasswordOptions};
use coffer_core::reference::SecretReference;
use coffer_core::service::{ListRequest, Request, Response, ValueRead, WireValue};
use coffer_core::{SecretValue, SecretVersionInfo, VersionSelector};
use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{done, pairs, say, unexpected, Env};
use crate::cli::{Output, PasswordArgs, SecretCommand, Sort, ValueSource};
use crate::failure::Failure;
use crate::input;
use crate::output::{self, fields, render, table};

pub fn password_options(args: &PasswordArgs) -> PasswordOptions {
    PasswordOptions {
        length: args.length,
        exclude_characters: args.exclude_characters.clone(),
        exclude_numbers: args.exclude_numbers,
        exclude_punctuation: args.exclude_punctuation,
        exclude_uppercase: args.exclude_uppercase,
        exclude_lowercase: args.exclude_lowercase,
        include_space: args.include_space,
        require_each_included_type: !args.no_require_each_included_type,
    }
}

fn read_value(source: &ValueSource) -> Result<WireValue, Failure> {
    let value = if source.generate {
        SecretValue::Text(generate_password(&password_options(&source.password))?)
    } else {
        input::value(source.value_file.as_deref())?
    };
    Ok(WireValue::from_value(&value))
}

fn version_id(text: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(text).map_err(|_| {
        Failure::usage(format!(
            "{text:?} is not a version id (a UUID, as `coffer secret versions` shows)"
        ))
    })
}

/// A value read as JSON: text in `value`, binary in `value_base64`.
fn value_json(read: &ValueRead) -> serde_json::Value {
    let mut body = json!({
        "name": read.name,
        "version_id": read.version_id,
        "labels": read.labels,
        "created_at": read.created_at,
    });
    match (&read.value.text, &read.value.base64) {
        (Some(text), _) => body["value"] = json!(text),
        (_, Some(encoded)) => body["value_base64"] = json!(encoded),
        _ => {}
    }
    body
}

/// Best effort: overwrite JSON strings that held values before they are dropped.
fn wipe(value: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Prints a value read as the bare value, or JSON.
fn print_value(env: &Env, read: &ValueRead) -> Result<(), Failure> {
    match env.output {
        Output::Table => {
            let value = read.value.to_value()?;
            output::raw(value.as_bytes(), true)
        }
        Output::Json => {
            let mut body = value_json(read);
            let text = Zeroizing::new(format!("{body:#}\n"));
            wipe(&mut body);
            output::raw(text.as_bytes(), false)
        }
    }
}

fn version_table(out: &mut dyn Write, versions: &[SecretVersionInfo]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let labels: Vec<&str> = v.labels.iter().map(|l| l.as_str()).collect();
            let mut created = v.created_at.rfc3339();
            created.truncate(19);
            vec![
                v.version_id.to_string(),
                created,
                format!("{}/v{}", v.key_id, v.key_version),
                labels.join(","),
            ]
        })
        .collect();
    table(out, &["VERSION", "CREATED", "KEY", "LABELS"], &rows)
}

pub fn run(env: &Env, command: SecretCommand) -> Result<(), Failure> {
    if let SecretCommand::RandomPassword { password } = &command {
        let password = generate_password(&password_options(password))?;
        return match env.output {
            Output::Json => {
                let text =
                    Zeroizing::new(format!("{:#}\n", json!({ "password": password.as_str() })));
                output::raw(text.as_bytes(), false)
            }
            Output::Table => output::raw(password.as_bytes(), true),
        };
    }
    // Read the value before unlocking, so a bad value file costs no TPM round trip.
    let value = match &command {
        SecretCommand::Create {
            source,
            no_value: false,
            ..
        } => Some(read_value(source)?),
        SecretCommand::Put { source, .. } => Some(read_value(source)?),
        _ => None,
    };
    let mut backend = env.backend()?;
    match command {
        SecretCommand::Create {
            name,
            description,
            key,
            tags,
            client_token,
            ..
        } => {
            let request = Request::CreateSecret {
                name,
                description,
                key,
                tags: pairs(&tags, "tag")?,
                value,
                client_token,
            };
            match backend.call(request)? {
                Response::Written(w) => render(env.output, &w, |w, out| {
                    if !w.created {
                        writeln!(out, "Already created as version {} of {} (same idempotency token); nothing changed.", w.version_id, w.name)
                    } else if w.version_id.is_nil() {
                        writeln!(out, "Created secret {} (no value yet).", w.name)
                    } else {
                        writeln!(
                            out,
                            "Created secret {} with version {} (CURRENT).",
                            w.name, w.version_id
                        )?;
                        applied_by(out, w)
                    }
                }),
                other => Err(unexpected(other)),
            }
        }
        SecretCommand::Put {
            name,
            labels,
            client_token,
            ..
        } => {
            let value = value.ok_or_else(|| Failure::usage("no value given"))?;
            match backend.call(Request::PutSecretValue {
                name,
                value,
                labels,
                client_token,
            })? {
                Response::Written(w) => render(env.output, &w, |w, out| {
                    let labels: Vec<&str> = w.labels.iter().map(|l| l.as_str()).collect();
                    if w.created {
                        writeln!(
                            out,
                            "Stored version {} of {} ({}).",
                            w.version_id,
                            w.name,
                            labels.join(", ")
                        )?;
                        applied_by(out, w)
                    } else {
                        writeln!(out, "Already stored as version {} of {} (same idempotency token); nothing changed.", w.version_id, w.name)
                    }
                }),
                other => Err(unexpected(other)),
            }
        }
        SecretCommand::Get {
            name,
            label,
            version_id: id,
        } => {
            // NAME may also be a reference: `coffer secret get coffer://db#password`.
            let reference = if SecretReference::looks_like(&name) {
                Some(SecretReference::parse(&name)?)
            } else {
                None
            };
            let (name, mut label, mut id) = match &reference {
                Some(r) => match &r.selector {
                    VersionSelector::Label(l) if label.is_none() && id.is_none() => {
                        (r.name.to_string(), Some(l.to_string()), None)
                    }
                    VersionSelector::Id(v) if label.is_none() && id.is_none() => {
                        (r.name.to_string(), None, Some(v.to_string()))
                    }
                    _ => (r.name.to_string(), label, id),
                },
                None => (name, label, id),
            };
            if label.as_deref() == Some("CURRENT") && id.is_some() {
                label = None;
            }
            let version_id = id.take().as_deref().map(version_id).transpose()?;
            let read = match backend.call(Request::GetSecretValue {
                name,
                label,
                version_id,
            })? {
                Response::Value(read) => read,
                other => return Err(unexpected(other)),
            };
            match reference.filter(|r| r.field.is_some()) {
                Some(reference) => {
                    let text = reference.extract(&read.value.to_value()?)?;
                    output::raw(text.as_bytes(), true)
                }
                None => print_value(env, &read),
            }
        }
        SecretCommand::Describe { name } => match backend.call(Request::DescribeSecret { name })? {
            Response::Secret(d) => render(env.output, &d, |d, out| {
                let tags: Vec<String> = d.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                fields(
                    out,
                    &[
                        ("name", d.name.to_string()),
                        ("id", d.id.to_string()),
                        ("description", d.description.clone()),
                        (
                            "key",
                            if d.key_aliases.is_empty() {
                                d.key_id.to_string()
                            } else {
                                format!("{} ({})", d.key_id, d.key_aliases.join(", "))
                            },
                        ),
                        ("tags", tags.join(", ")),
                        ("created", d.created_at.to_string()),
                        ("changed", d.changed_at.to_string()),
                        (
                            "last accessed",
                            d.last_accessed
                                .map(|t| t.rfc3339()[..10].to_owned())
                                .unwrap_or_else(|| "never".into()),
                        ),
                        (
                            "deletion",
                            d.purge_at
                                .map(|t| format!("scheduled, purged on {t}"))
                                .unwrap_or_else(|| "-".into()),
                        ),
                        ("versions", d.versions.len().to_string()),
                    ],
                )?;
                if let Some(replication) = &d.replication {
                    replication_fields(out, replication)?;
                }
                writeln!(out)?;
                version_table(out, &d.versions)
            }),
            other => Err(unexpected(other)),
        },
        SecretCommand::Versions { name } => {
            match backend.call(Request::ListSecretVersions { name })? {
                Response::Versions(v) => render(env.output, &v, |v, out| version_table(out, v)),
                other => Err(unexpected(other)),
            }
        }
        SecretCommand::List {
            prefix,
            tag,
            description_contains,
            search,
            include_deleted,
            deleted_only,
            sort,
            max_results,
            next_token,
            all,
        } => {
            let (tag_key, tag_value) = match tag {
                Some(t) => match t.split_once('=') {
                    Some((k, v)) => (Some(k.to_owned()), Some(v.to_owned())),
                    None => (Some(t), None),
                },
                None => (None, None),
            };
            let mut request = ListRequest {
                name_prefix: prefix,
                description_contains,
                tag_key,
                tag_value,
                text: search,
                deleted: Some(
                    if deleted_only {
                        "only"
                    } else if include_deleted {
                        "include"
                    } else {
                        "exclude"
                    }
                    .to_owned(),
                ),
                sort: Some(
                    match sort {
                        Sort::Name => "name",
                        Sort::Changed => "changed",
                    }
                    .to_owned(),
                ),
                limit: Some(max_results),
                next_token,
            };
            let mut page = match backend.call(Request::ListSecrets(request.clone()))? {
                Response::Secrets(page) => page,
                other => return Err(unexpected(other)),
            };
            if all {
                while let Some(token) = page.next_token.take() {
                    request.next_token = Some(token);
                    match backend.call(Request::ListSecrets(request.clone()))? {
                        Response::Secrets(next) => {
                            page.items.extend(next.items);
                            page.next_token = next.next_token;
                        }
                        other => return Err(unexpected(other)),
                    }
                }
            }
            render(env.output, &page, |p, out| {
                let rows: Vec<Vec<String>> = p
                    .items
                    .iter()
                    .map(|s| {
                        let tags: Vec<String> =
                            s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        let mut changed = s.changed_at.rfc3339();
                        changed.truncate(19);
                        if let Some(purge) = s.purge_at {
                            changed = format!("{changed} (purge {})", &purge.rfc3339()[..10]);
                        }
                        vec![
                            s.name.to_string(),
                            changed,
                            tags.join(","),
                            s.description.clone(),
                        ]
                    })
                    .collect();
                table(out, &["NAME", "CHANGED", "TAGS", "DESCRIPTION"], &rows)?;
                if let Some(token) = &p.next_token {
                    writeln!(out, "\nMore: --next-token {token}")?;
                }
                Ok(())
            })
        }
        SecretCommand::Update {
            name,
            description,
            key,
        } => {
            if description.is_none() && key.is_none() {
                return Err(Failure::usage(
                    "nothing to update: give --description and/or --key",
                ));
            }
            let message = format!("Updated secret {name}.");
            done(
                env,
                &mut backend,
                Request::UpdateSecret {
                    name,
                    description,
                    key,
                },
                &message,
            )
        }
        SecretCommand::UpdateVersionStage {
            name,
            label,
            move_to,
            remove_from,
        } => {
            let move_to = move_to.as_deref().map(version_id).transpose()?;
            let remove_from = remove_from.as_deref().map(version_id).transpose()?;
            let message = match move_to {
                Some(to) => format!("Moved label {label} of {name} to version {to}."),
                None => format!("Removed label {label} from {name}."),
            };
            done(
                env,
                &mut backend,
                Request::UpdateVersionStage {
                    name,
                    label,
                    move_to,
                    remove_from,
                },
                &message,
            )
        }
        SecretCommand::Tag { name, tags } => {
            let message = format!("Tagged {name}.");
            done(
                env,
                &mut backend,
                Request::TagSecret {
                    name,
                    tags: pairs(&tags, "tag")?,
                },
                &message,
            )
        }
        SecretCommand::Untag { name, keys } => {
            let message = format!("Removed tags from {name}.");
            done(
                env,
                &mut backend,
                Request::UntagSecret { name, keys },
                &message,
            )
        }
        SecretCommand::Delete {
            name,
            recovery_window_in_days,
            force_delete_without_recovery,
        } => {
            let recovery_window_days = if force_delete_without_recovery {
                None
            } else {
                Some(recovery_window_in_days.unwrap_or(30))
            };
            match backend.call(Request::DeleteSecret { name: name.clone(), recovery_window_days })? {
                Response::Deleted { purge_at: Some(at) } => say(env, &format!("Scheduled {name} for deletion on {at}; `coffer secret restore {name}` undoes it until then.")),
                Response::Deleted { purge_at: None } => say(env, &format!("Deleted {name} for good; its data keys are destroyed.")),
                other => Err(unexpected(other)),
            }
        }
        SecretCommand::Restore { name } => {
            let message = format!("Restored {name}.");
            done(env, &mut backend, Request::RestoreSecret { name }, &message)
        }
        SecretCommand::Replicate { name, region, key } => {
            match backend.call(Request::ReplicateSecret {
                name: name.clone(),
                region,
                key,
            })? {
                Response::Replication(r) => render(env.output, &r, |r, out| {
                    writeln!(out, "{name} is replicated to:")?;
                    replication_fields(out, r)
                }),
                other => Err(unexpected(other)),
            }
        }
        SecretCommand::RemoveRegion { name, region } => {
            let message = format!(
                "{name} is no longer replicated to {region}; its copy there is deleted when the daemon next reaches it."
            );
            done(
                env,
                &mut backend,
                Request::RemoveSecretRegion { name, region },
                &message,
            )
        }
        SecretCommand::Promote { name } => {
            let message = format!(
                "{name} is now a secret of its own here and no longer follows its primary region."
            );
            done(env, &mut backend, Request::PromoteSecret { name }, &message)
        }
        SecretCommand::BatchGet { names } => {
            match backend.call(Request::BatchGetSecretValues { names })? {
                Response::Values { values, errors } => {
                    let mut body = json!({
                        "secret_values": values.iter().map(value_json).collect::<Vec<_>>(),
                        "errors": errors,
                    });
                    let text = Zeroizing::new(format!("{body:#}\n"));
                    wipe(&mut body);
                    output::raw(text.as_bytes(), false)
                }
                other => Err(unexpected(other)),
            }
        }
        SecretCommand::RandomPassword { .. } => Ok(()),
        SecretCommand::Rotation(command) => super::rotation::run_secret(env, &mut backend, command),
    }
}

/// The replica regions of a secret and their status, or the primary it follows.
fn replication_fields(
    out: &mut dyn std::io::Write,
    replication: &coffer_core::vault::replication::SecretReplication,
) -> std::io::Result<()> {
    if let Some(primary) = &replication.primary_region {
        let applied = replication
            .last_applied
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".into());
        writeln!(
            out,
            "replica of: region {primary} (read-only here), last applied {applied}"
        )?;
    }
    for region in &replication.regions {
        let status = match region.status {
            coffer_core::vault::replication::ReplicationStatus::InSync => "InSync".to_owned(),
            coffer_core::vault::replication::ReplicationStatus::InProgress => {
                format!("InProgress ({} pending)", region.pending)
            }
            coffer_core::vault::replication::ReplicationStatus::Failed => format!(
                "Failed: {}",
                region.message.as_deref().unwrap_or("no reason given")
            ),
        };
        let synced = region
            .last_synced
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".into());
        writeln!(
            out,
            "replica:    {} key={} status={status} last synced {synced}",
            region.region,
            region.key.as_deref().unwrap_or("default")
        )?;
    }
    Ok(())
}

/// For a write a team folder's primary stored: where it went, and when the copy here
/// follows.
fn applied_by(
    out: &mut dyn std::io::Write,
    written: &coffer_core::model::VersionWritten,
) -> std::io::Result<()> {
    match &written.applied_by {
        Some(primary) => writeln!(
            out,
            "Stored on region {primary}, the team folder's primary; the copy here follows with its next replication."
        ),
        None => Ok(()),
    }
}
