//! One function per command group; each parses its arguments into engine calls.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use coffer_core::password::{generate_password, PasswordOptions};
use coffer_core::tpm::{tcti_from_env, PcrBinding};
use coffer_core::vault::envelope::{self, EncryptionContext};
use coffer_core::{
    default_vault_path, DeletedFilter, Deletion, ListQuery, SecretValue, SortBy, StagingLabel,
    Vault, VersionSelector,
};
use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cli::{
    AuditCommand, Cli, Command, KeyCommand, KmsCommand, Output, PasswordArgs, SecretCommand, Sort,
    ValueSource,
};
use crate::failure::Failure;
use crate::input;
use crate::output::{self, fields, render, table};

struct Env {
    vault: PathBuf,
    tcti: String,
    output: Output,
}

impl Env {
    fn open_unlocked(&self) -> Result<Vault, Failure> {
        let mut vault = Vault::open(&self.vault)?;
        let pin = input::pin()?;
        vault.unlock(&self.tcti, &pin)?;
        Ok(vault)
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let env = Env {
        vault: cli.vault.unwrap_or_else(default_vault_path),
        tcti: cli
            .tcti
            .filter(|t| !t.is_empty())
            .unwrap_or_else(tcti_from_env),
        output: cli.output,
    };
    match cli.command {
        Command::Init { pcrs } => init(&env, pcrs),
        Command::Recover {
            recovery_code_file,
            pcrs,
        } => recover(&env, recovery_code_file, pcrs),
        Command::ChangePin => {
            let mut vault = env.open_unlocked()?;
            let new_pin = input::new_pin("COFFER_NEW_PIN_FILE")?;
            vault.change_pin(&new_pin)?;
            eprintln!("PIN changed; every key was re-sealed under the new PIN.");
            Ok(())
        }
        Command::Status => status(&env),
        Command::Secret(command) => secret(&env, command),
        Command::Key(command) => key(&env, command),
        Command::Kms(command) => kms(&env, command),
        Command::Audit(command) => audit(&env, command),
    }
}

fn parse_pcrs(text: &str) -> Result<PcrBinding, Failure> {
    text.parse::<PcrBinding>().map_err(Failure::from)
}

fn init(env: &Env, pcrs: Option<String>) -> Result<(), Failure> {
    let pcrs = pcrs
        .as_deref()
        .map(parse_pcrs)
        .transpose()?
        .unwrap_or_default();
    let pin = input::new_pin("COFFER_PIN_FILE")?;
    let created = Vault::init(&env.vault, &env.tcti, &pin, pcrs)?;
    let code = created.recovery_code.display();
    match env.output {
        Output::Json => {
            let value = json!({
                "vault": env.vault.display().to_string(),
                "vault_id": created.vault.id(),
                "recovery_code": code.as_str(),
            });
            println!("{value:#}");
        }
        Output::Table => {
            println!("Created the vault at {}.", env.vault.display());
            println!();
            println!("Recovery code (shown once; write it down and keep it offline):");
            println!();
            println!("    {}", code.as_str());
            println!();
            println!("With it, `coffer recover` brings the vault back after a TPM reset,");
            println!(
                "a new motherboard or a PCR change. Without it, such a change loses every secret."
            );
        }
    }
    Ok(())
}

fn recover(env: &Env, code_file: Option<PathBuf>, pcrs: Option<String>) -> Result<(), Failure> {
    let pcrs = pcrs.as_deref().map(parse_pcrs).transpose()?;
    let code = input::recovery_code(code_file.as_deref())?;
    let pin = input::new_pin("COFFER_NEW_PIN_FILE")?;
    let vault = Vault::recover(&env.vault, &env.tcti, &code, &pin, pcrs)?;
    eprintln!(
        "Recovered vault {}: every key is sealed in this TPM again under the new PIN.",
        vault.id()
    );
    Ok(())
}

fn status(env: &Env) -> Result<(), Failure> {
    let vault = Vault::open(&env.vault)?;
    let pcrs = vault.pcr_binding()?;
    let tpm = Vault::tpm_info(&env.tcti);
    let value = json!({
        "vault": env.vault.display().to_string(),
        "vault_id": vault.id(),
        "pcr_binding": pcrs.to_string(),
        "tcti": env.tcti,
        "tpm": tpm.as_ref().ok(),
        "tpm_error": tpm.as_ref().err().map(|e| e.to_string()),
    });
    render(env.output, &value, |_, out| {
        let mut rows = vec![
            ("vault", env.vault.display().to_string()),
            ("vault id", vault.id().to_string()),
            (
                "PCR binding",
                if pcrs.is_empty() {
                    "none".to_owned()
                } else {
                    pcrs.to_string()
                },
            ),
            ("TPM", env.tcti.clone()),
        ];
        match &tpm {
            Ok(info) => {
                let kind = if info.is_software {
                    "software TPM — NOT SECURE"
                } else {
                    "hardware TPM"
                };
                rows.push((
                    "TPM maker",
                    format!(
                        "{} {} ({kind})",
                        info.manufacturer.trim(),
                        info.vendor.trim()
                    ),
                ));
                rows.push((
                    "PIN attempts",
                    format!(
                        "{} of {} left{}",
                        info.dictionary_attack.attempts_left(),
                        info.dictionary_attack.max_auth_fail,
                        if info.dictionary_attack.in_lockout {
                            " (in lockout)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            Err(error) => rows.push(("TPM error", error.to_string())),
        }
        fields(out, &rows)
    })
}

fn password_options(args: &PasswordArgs) -> PasswordOptions {
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

fn read_value(source: &ValueSource) -> Result<SecretValue, Failure> {
    if source.generate {
        let password = generate_password(&password_options(&source.password))?;
        return Ok(SecretValue::Text(password));
    }
    input::value(source.value_file.as_deref())
}

fn pairs(items: &[String], what: &str) -> Result<BTreeMap<String, String>, Failure> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(Failure::usage(format!("{what} {item:?} is not KEY=VALUE"))),
        })
        .collect()
}

fn version_id(text: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(text).map_err(|_| {
        Failure::usage(format!(
            "{text:?} is not a version id (a UUID, as `coffer secret versions` shows)"
        ))
    })
}

fn secret(env: &Env, command: SecretCommand) -> Result<(), Failure> {
    if let SecretCommand::RandomPassword { password } = &command {
        let password = generate_password(&password_options(password))?;
        return match env.output {
            Output::Json => render(
                env.output,
                &json!({ "password": password.as_str() }),
                |_, _| Ok(()),
            ),
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
    let mut vault = env.open_unlocked()?;
    match command {
        SecretCommand::Create {
            name,
            description,
            key,
            tags,
            client_token,
            ..
        } => {
            let written = vault.create_secret(coffer_core::vault::CreateSecret {
                name,
                description,
                key,
                tags: pairs(&tags, "tag")?,
                value,
                client_token,
            })?;
            render(env.output, &written, |w, out| {
                if w.version_id.is_nil() {
                    writeln!(out, "Created secret {} (no value yet).", w.name)
                } else {
                    writeln!(
                        out,
                        "Created secret {} with version {} (CURRENT).",
                        w.name, w.version_id
                    )
                }
            })
        }
        SecretCommand::Put {
            name,
            labels,
            client_token,
            ..
        } => {
            let labels = labels
                .iter()
                .map(|l| StagingLabel::parse(l))
                .collect::<Result<Vec<_>, _>>()
                .map_err(coffer_core::Error::from)?;
            let Some(value) = value else {
                return Err(Failure::usage("no value given"));
            };
            let written = vault.put_secret_value(
                &name,
                coffer_core::vault::PutValue {
                    value,
                    labels,
                    client_token,
                },
            )?;
            render(env.output, &written, |w, out| {
                let labels: Vec<&str> = w.labels.iter().map(|l| l.as_str()).collect();
                if w.created {
                    writeln!(
                        out,
                        "Stored version {} of {} ({}).",
                        w.version_id,
                        w.name,
                        labels.join(", ")
                    )
                } else {
                    writeln!(out, "Already stored as version {} of {} (same idempotency token); nothing changed.", w.version_id, w.name)
                }
            })
        }
        SecretCommand::Get {
            name,
            label,
            version_id: id,
        } => {
            let selector = match (label, id) {
                (Some(label), _) => VersionSelector::Label(
                    StagingLabel::parse(&label).map_err(coffer_core::Error::from)?,
                ),
                (None, Some(id)) => VersionSelector::Id(version_id(&id)?),
                (None, None) => VersionSelector::default(),
            };
            let read = vault.get_secret_value(&name, &selector)?;
            // The read is on record before the value is shown.
            vault.flush_audit()?;
            match env.output {
                Output::Table => output::raw(read.value.as_bytes(), true),
                Output::Json => {
                    let mut body = json!({
                        "name": read.name,
                        "version_id": read.version_id,
                        "labels": read.labels,
                        "created_at": read.created_at,
                    });
                    let encoded: Zeroizing<String>;
                    match &read.value {
                        SecretValue::Text(text) => body["value"] = json!(text.as_str()),
                        SecretValue::Binary(bytes) => {
                            encoded = Zeroizing::new(BASE64.encode(bytes.as_slice()));
                            body["value_base64"] = json!(encoded.as_str());
                        }
                    }
                    let text = Zeroizing::new(format!("{body:#}\n"));
                    if let Some(v) = body.get_mut("value") {
                        zeroize_json(v);
                    }
                    if let Some(v) = body.get_mut("value_base64") {
                        zeroize_json(v);
                    }
                    output::raw(text.as_bytes(), false)
                }
            }
        }
        SecretCommand::Describe { name } => {
            let description = vault.describe_secret(&name)?;
            render(env.output, &description, |d, out| {
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
                writeln!(out)?;
                version_table(out, &d.versions)
            })
        }
        SecretCommand::Versions { name } => {
            let versions = vault.list_secret_versions(&name)?;
            render(env.output, &versions, |v, out| version_table(out, v))
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
            let mut query = ListQuery {
                name_prefix: prefix,
                description_contains,
                tag: tag.map(|t| match t.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (t, None),
                }),
                text: search,
                deleted: if deleted_only {
                    DeletedFilter::Only
                } else if include_deleted {
                    DeletedFilter::Include
                } else {
                    DeletedFilter::Exclude
                },
                sort: match sort {
                    Sort::Name => SortBy::Name,
                    Sort::Changed => SortBy::ChangedDesc,
                },
                limit: Some(max_results),
                next_token,
            };
            let mut page = vault.list_secrets(&query)?;
            if all {
                while let Some(token) = page.next_token.take() {
                    query.next_token = Some(token);
                    let next = vault.list_secrets(&query)?;
                    page.items.extend(next.items);
                    page.next_token = next.next_token;
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
            vault.update_secret(&name, description, key)?;
            done(env, &format!("Updated secret {name}."))
        }
        SecretCommand::UpdateVersionStage {
            name,
            label,
            move_to,
            remove_from,
        } => {
            let move_to = move_to.as_deref().map(version_id).transpose()?;
            let remove_from = remove_from.as_deref().map(version_id).transpose()?;
            vault.update_version_stage(&name, &label, move_to, remove_from)?;
            done(env, &format!("Moved label {label} of {name}."))
        }
        SecretCommand::Tag { name, tags } => {
            vault.tag_secret(&name, &pairs(&tags, "tag")?)?;
            done(env, &format!("Tagged {name}."))
        }
        SecretCommand::Untag { name, keys } => {
            vault.untag_secret(&name, &keys)?;
            done(env, &format!("Removed tags from {name}."))
        }
        SecretCommand::Delete {
            name,
            recovery_window_in_days,
            force_delete_without_recovery,
        } => {
            let deletion = if force_delete_without_recovery {
                Deletion::Force
            } else {
                Deletion::RecoveryWindow(recovery_window_in_days.unwrap_or(30))
            };
            match vault.delete_secret(&name, deletion)? {
                Some(purge_at) => done(env, &format!("Scheduled {name} for deletion on {purge_at}; `coffer secret restore {name}` undoes it until then.")),
                None => done(env, &format!("Deleted {name} for good; its data keys are destroyed.")),
            }
        }
        SecretCommand::Restore { name } => {
            vault.restore_secret(&name)?;
            done(env, &format!("Restored {name}."))
        }
        SecretCommand::BatchGet { names } => {
            let results = vault.batch_get_secret_values(&names);
            vault.flush_audit()?;
            let mut values = Vec::new();
            let mut errors = Vec::new();
            for (name, result) in results {
                match result {
                    Ok(read) => values.push(json!({
                        "name": read.name,
                        "version_id": read.version_id,
                        "labels": read.labels,
                        "value": match &read.value { SecretValue::Text(t) => json!(t.as_str()), SecretValue::Binary(_) => json!(null) },
                        "value_base64": match &read.value { SecretValue::Binary(b) => json!(BASE64.encode(b.as_slice())), SecretValue::Text(_) => json!(null) },
                    })),
                    Err(error) => errors.push(json!({ "name": name, "error": error.code(), "message": error.to_string() })),
                }
            }
            let text = Zeroizing::new(format!(
                "{:#}\n",
                json!({ "secret_values": values, "errors": errors })
            ));
            output::raw(text.as_bytes(), false)
        }
        SecretCommand::RandomPassword { .. } => Ok(()),
    }
}

/// Best effort: overwrite a JSON string that held a secret before it is dropped.
fn zeroize_json(value: &mut serde_json::Value) {
    if let serde_json::Value::String(text) = value {
        use zeroize::Zeroize;
        text.zeroize();
    }
}

fn version_table(
    out: &mut dyn Write,
    versions: &[coffer_core::SecretVersionInfo],
) -> std::io::Result<()> {
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

fn done(env: &Env, message: &str) -> Result<(), Failure> {
    render(
        env.output,
        &json!({ "ok": true, "message": message }),
        |_, out| writeln!(out, "{message}"),
    )
}

fn key(env: &Env, command: KeyCommand) -> Result<(), Failure> {
    let mut vault = env.open_unlocked()?;
    let key_table = |keys: &[coffer_core::KeyDescription], out: &mut dyn Write| {
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
    };
    match command {
        KeyCommand::Create { description, alias } => {
            let key = vault.create_key(&description, alias.as_deref())?;
            render(env.output, &key, |k, out| {
                key_table(std::slice::from_ref(k), out)
            })
        }
        KeyCommand::List => {
            let keys = vault.list_keys()?;
            render(env.output, &keys, |k, out| key_table(k, out))
        }
        KeyCommand::Describe { key } => {
            let key = vault.describe_key(&key)?;
            render(env.output, &key, |k, out| {
                key_table(std::slice::from_ref(k), out)?;
                writeln!(out)?;
                let rows: Vec<Vec<String>> = k
                    .versions
                    .iter()
                    .map(|v| vec![v.version.to_string(), v.created_at.to_string()])
                    .collect();
                table(out, &["VERSION", "CREATED"], &rows)
            })
        }
        KeyCommand::Rotate { key } => {
            let key = vault.rotate_key(&key)?;
            let newest = key.versions.last().map(|v| v.version).unwrap_or(1);
            render(env.output, &key, |k, out| {
                writeln!(
                    out,
                    "Key {} now has version {newest}; new data keys are wrapped under it.",
                    k.id
                )
            })
        }
        KeyCommand::Enable { key } => {
            vault.enable_key(&key)?;
            done(env, &format!("Enabled key {key}."))
        }
        KeyCommand::Disable { key } => {
            vault.disable_key(&key)?;
            done(env, &format!("Disabled key {key}."))
        }
        KeyCommand::ScheduleDeletion {
            key,
            pending_window_in_days,
        } => {
            let at = vault.schedule_key_deletion(&key, pending_window_in_days)?;
            done(env, &format!("Key {key} will be deleted on {at}; `coffer key cancel-deletion {key}` undoes it until then."))
        }
        KeyCommand::CancelDeletion { key } => {
            vault.cancel_key_deletion(&key)?;
            done(
                env,
                &format!(
                    "Cancelled the deletion of key {key}; it is disabled, enable it to use it."
                ),
            )
        }
        KeyCommand::CreateAlias { alias, key } => {
            vault.create_alias(&alias, &key)?;
            done(env, &format!("{alias} now points at key {key}."))
        }
        KeyCommand::DeleteAlias { alias } => {
            vault.delete_alias(&alias)?;
            done(env, &format!("Deleted alias {alias}."))
        }
    }
}

fn kms(env: &Env, command: KmsCommand) -> Result<(), Failure> {
    if let KmsCommand::GenerateRandom { number_of_bytes } = &command {
        let bytes = envelope::generate_random(*number_of_bytes)?;
        let encoded = Zeroizing::new(BASE64.encode(bytes.as_slice()) + "\n");
        return output::raw(encoded.as_bytes(), false);
    }
    let decode = |bytes: &[u8]| -> Result<Vec<u8>, Failure> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Failure::usage("the ciphertext must be base64 text"))?;
        BASE64
            .decode(text.trim())
            .map_err(|_| Failure::usage("the ciphertext is not valid base64"))
    };
    let context =
        |items: &[String]| -> Result<EncryptionContext, Failure> { pairs(items, "context pair") };
    let mut vault = env.open_unlocked()?;
    match command {
        KmsCommand::Encrypt {
            key,
            plaintext_file,
            context: ctx,
        } => {
            let plain = input::blob(&plaintext_file, envelope::MAX_ENCRYPT_LEN)?;
            let blob = vault.encrypt(&key, &plain, &context(&ctx.pairs)?)?;
            vault.flush_audit()?;
            output::raw(format!("{}\n", BASE64.encode(blob)).as_bytes(), false)
        }
        KmsCommand::Decrypt {
            ciphertext_file,
            context: ctx,
        } => {
            let blob = decode(&input::blob(&ciphertext_file, 64 * 1024)?)?;
            let (plain, _) = vault.decrypt(&blob, &context(&ctx.pairs)?)?;
            vault.flush_audit()?;
            output::raw(&plain, false)
        }
        KmsCommand::ReEncrypt {
            ciphertext_file,
            destination_key,
            source_context,
            destination_context,
        } => {
            let blob = decode(&input::blob(&ciphertext_file, 64 * 1024)?)?;
            let out = vault.re_encrypt(
                &blob,
                &context(&source_context)?,
                &destination_key,
                &context(&destination_context)?,
            )?;
            vault.flush_audit()?;
            output::raw(format!("{}\n", BASE64.encode(out)).as_bytes(), false)
        }
        KmsCommand::GenerateDataKey {
            key,
            number_of_bytes,
            context: ctx,
        } => data_key(
            &mut vault,
            &key,
            number_of_bytes,
            &context(&ctx.pairs)?,
            true,
        ),
        KmsCommand::GenerateDataKeyWithoutPlaintext {
            key,
            number_of_bytes,
            context: ctx,
        } => data_key(
            &mut vault,
            &key,
            number_of_bytes,
            &context(&ctx.pairs)?,
            false,
        ),
        KmsCommand::GenerateRandom { .. } => Ok(()),
    }
}

/// Prints a data key as JSON: the plaintext (if asked for) and ciphertext in base64.
fn data_key(
    vault: &mut Vault,
    key: &str,
    bytes: usize,
    context: &EncryptionContext,
    with_plaintext: bool,
) -> Result<(), Failure> {
    let generated = vault.generate_data_key(key, bytes, context, with_plaintext)?;
    vault.flush_audit()?;
    let plaintext = generated
        .plaintext
        .as_ref()
        .map(|p| Zeroizing::new(BASE64.encode(p.as_slice())));
    let mut body = json!({
        "key_id": generated.key_id,
        "ciphertext_blob": BASE64.encode(&generated.ciphertext),
    });
    if let Some(plaintext) = &plaintext {
        body["plaintext"] = json!(plaintext.as_str());
    }
    let text = Zeroizing::new(format!("{body:#}\n"));
    if let Some(v) = body.get_mut("plaintext") {
        zeroize_json(v);
    }
    output::raw(text.as_bytes(), false)
}

fn audit(env: &Env, command: AuditCommand) -> Result<(), Failure> {
    let mut vault = env.open_unlocked()?;
    match command {
        AuditCommand::List { secret, limit } => {
            let entries = vault.audit_list(secret.as_deref(), None, limit)?;
            match env.output {
                Output::Json => {
                    let mut text = String::new();
                    for entry in &entries {
                        text.push_str(
                            &serde_json::to_string(entry)
                                .map_err(|e| Failure::usage(e.to_string()))?,
                        );
                        text.push('\n');
                    }
                    output::raw(text.as_bytes(), false)
                }
                Output::Table => render(env.output, &entries, |entries, out| {
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| {
                            let mut at = e.at.rfc3339();
                            at.truncate(19);
                            vec![
                                e.seq.to_string(),
                                at,
                                format!("{}:{}({})", e.uid, e.process, e.pid),
                                e.operation.clone(),
                                e.secret_name.clone().unwrap_or_default(),
                                e.result.clone() + if e.chained { "" } else { " (unchained)" },
                            ]
                        })
                        .collect();
                    table(
                        out,
                        &["SEQ", "AT", "WHO", "OPERATION", "SECRET", "RESULT"],
                        &rows,
                    )
                }),
            }
        }
        AuditCommand::Verify => {
            let report = vault.audit_verify()?;
            render(env.output, &report, |r, out| {
                writeln!(
                    out,
                    "Audit log intact: {} entries, every MAC and the chain head verified.",
                    r.chained
                )?;
                if r.pending > 0 {
                    writeln!(out, "{} newer entries (failed unlocks) are not chained yet; the next unlock chains them.", r.pending)?;
                }
                Ok(())
            })
        }
    }
}
