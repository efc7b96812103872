//! `coffer access-key …` and `coffer config …`: who may use the AWS-compatible API, and
//! the account id its ARNs carry.

use std::path::Path;

use coffer_core::service::{Request, Response, WireValue};
use coffer_core::vault::access_keys::AccessKeyInfo;
use coffer_core::SecretValue;
use zeroize::Zeroizing;

use super::{say, unexpected, Env};
use crate::cli::{AccessKeyCommand, ConfigCommand};
use crate::failure::Failure;
use crate::input;
use crate::output::{render, table};

/// Policies are small JSON documents (IAM allows 6 KiB; leave room for whitespace).
const MAX_POLICY_FILE: usize = 64 * 1024;

fn policy(file: Option<&Path>) -> Result<Option<String>, Failure> {
    file.map(|path| {
        let bytes = input::blob(path, MAX_POLICY_FILE)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Failure::usage(format!("{} is not UTF-8 text", path.display())))
    })
    .transpose()
}

fn describe(key: &AccessKeyInfo, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Access key {} ({}), {}, {}.",
        key.id,
        key.name,
        if key.enabled { "enabled" } else { "disabled" },
        if key.policy.is_some() {
            "with a policy"
        } else {
            "without a policy (it may do nothing)"
        }
    )
}

pub fn run(env: &Env, command: AccessKeyCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    match command {
        AccessKeyCommand::Create { name, policy_file } => {
            let request = Request::AccessKeyCreate {
                name,
                policy: policy(policy_file.as_deref())?,
            };
            match backend.call(request)? {
                Response::AccessKeyCreated { key, secret } => {
                    let shown = serde_json::json!({
                        "access_key_id": key.id,
                        "secret_access_key": secret.text,
                        "key": key,
                    });
                    render(env.output, &shown, |_, out| {
                        describe(&key, out)?;
                        writeln!(out, "AccessKeyId:     {}", key.id)?;
                        writeln!(
                            out,
                            "SecretAccessKey: {}",
                            secret.text.as_deref().unwrap_or_default()
                        )?;
                        writeln!(out, "The secret is shown this once; store it now.")
                    })
                }
                other => Err(unexpected(other)),
            }
        }
        AccessKeyCommand::Import {
            id,
            secret_file,
            name,
            policy_file,
        } => {
            let raw = input::blob(&secret_file, 4096)?;
            let text = std::str::from_utf8(&raw)
                .map_err(|_| Failure::usage("the secret access key must be text"))?;
            let secret = Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned());
            let request = Request::AccessKeyImport {
                id,
                secret: WireValue::from_value(&SecretValue::Text(secret)),
                name,
                policy: policy(policy_file.as_deref())?,
            };
            match backend.call(request)? {
                Response::AccessKey(key) => render(env.output, &key, |k, out| describe(k, out)),
                other => Err(unexpected(other)),
            }
        }
        AccessKeyCommand::List => match backend.call(Request::AccessKeyList)? {
            Response::AccessKeys(keys) => render(env.output, &keys, |keys, out| {
                if keys.is_empty() {
                    return writeln!(
                        out,
                        "No access keys. Make one with `coffer access-key create --name NAME --policy-file POLICY.json`."
                    );
                }
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.id.clone(),
                            k.name.clone(),
                            if k.enabled { "enabled" } else { "disabled" }.into(),
                            if k.policy.is_some() { "yes" } else { "no" }.into(),
                            k.last_used_at
                                .map(|t| {
                                    format!(
                                        "{} ({})",
                                        t.rfc3339(),
                                        k.last_used_for.clone().unwrap_or_default()
                                    )
                                })
                                .unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect();
                table(out, &["ID", "NAME", "STATE", "POLICY", "LAST USED"], &rows)
            }),
            other => Err(unexpected(other)),
        },
        AccessKeyCommand::Disable { key } => set_enabled(env, &mut backend, key, false),
        AccessKeyCommand::Enable { key } => set_enabled(env, &mut backend, key, true),
        AccessKeyCommand::SetPolicy { key, policy_file } => {
            let request = Request::AccessKeySetPolicy {
                key,
                policy: policy(policy_file.as_deref())?,
            };
            match backend.call(request)? {
                Response::AccessKey(key) => render(env.output, &key, |k, out| describe(k, out)),
                other => Err(unexpected(other)),
            }
        }
        AccessKeyCommand::Delete { key } => {
            let message = format!("Access key {key} is deleted.");
            match backend.call(Request::AccessKeyDelete { key })? {
                Response::Done => say(env, &message),
                other => Err(unexpected(other)),
            }
        }
    }
}

fn set_enabled(
    env: &Env,
    backend: &mut super::Backend,
    key: String,
    enabled: bool,
) -> Result<(), Failure> {
    match backend.call(Request::AccessKeySetEnabled { key, enabled })? {
        Response::AccessKey(key) => render(env.output, &key, |k, out| describe(k, out)),
        other => Err(unexpected(other)),
    }
}

pub fn config(env: &Env, command: ConfigCommand) -> Result<(), Failure> {
    let mut backend = env.backend()?;
    let request = match command {
        ConfigCommand::Get { name } => Request::SettingGet { name },
        ConfigCommand::Set { name, value } => Request::SettingSet { name, value },
    };
    match backend.call(request)? {
        Response::Setting { name, value } => render(
            env.output,
            &serde_json::json!({ "name": name, "value": value }),
            |_, out| writeln!(out, "{name} = {value}"),
        ),
        other => Err(unexpected(other)),
    }
}
