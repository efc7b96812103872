//! KMS (`TrentService`) operations on symmetric keys, mapped onto the engine's keys.
//!
//! A ciphertext blob is the engine's own envelope, so a blob made here decrypts with
//! `coffer kms decrypt` and the other way round (both carry it as base64).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use coffer_aws::AwsError;
use coffer_core::model::{KeyDescription, KeyState};
use coffer_core::service::{Blob, Request, Response, WireValue};
use coffer_core::SecretValue;
use serde_json::{json, Map, Value};

use crate::arn;
use crate::call::Call;
use crate::params::{epoch, Params};
use crate::secret_body::Reply;
use zeroize::Zeroizing;

type Input = Map<String, Value>;

const SYMMETRIC: &str = "SYMMETRIC_DEFAULT";

pub fn call(call: &mut Call<'_>, operation: &str, input: &Input) -> Result<Reply, AwsError> {
    let p = Params::new(input, call.service);
    // The answers that carry plaintext are built as Replies (see `secret_body`).
    match operation {
        "Decrypt" => return decrypt(call, &p),
        "GenerateDataKey" => return generate_data_key(call, &p, true),
        "GenerateDataKeyWithoutPlaintext" => return generate_data_key(call, &p, false),
        "GenerateRandom" => return generate_random(call, &p),
        _ => {}
    }
    match operation {
        "CreateKey" => create_key(call, &p),
        "DescribeKey" => describe_key(call, &p),
        "ListKeys" => list_keys(call, &p),
        "EnableKey" => key_state(call, &p, "EnableKey"),
        "DisableKey" => key_state(call, &p, "DisableKey"),
        "ScheduleKeyDeletion" => schedule_key_deletion(call, &p),
        "CancelKeyDeletion" => cancel_key_deletion(call, &p),
        "CreateAlias" => create_alias(call, &p),
        "UpdateAlias" => update_alias(call, &p),
        "DeleteAlias" => delete_alias(call, &p),
        "ListAliases" => list_aliases(call, &p),
        "Encrypt" => encrypt(call, &p),
        "ReEncrypt" => re_encrypt(call, &p),
        "EnableKeyRotation" => enable_key_rotation(call, &p),
        "DisableKeyRotation" => disable_key_rotation(call, &p),
        "GetKeyRotationStatus" => get_key_rotation_status(call, &p),
        "RotateKeyOnDemand" => rotate_key_on_demand(call, &p),
        "ListKeyRotations" => list_key_rotations(call, &p),
        "UpdateKeyDescription" => update_key_description(call, &p),
        "TagResource" => tag_resource(call, &p),
        "UntagResource" => untag_resource(call, &p),
        "ListResourceTags" => list_resource_tags(call, &p),
        "GetKeyPolicy" => get_key_policy(call, &p),
        "PutKeyPolicy" => put_key_policy(call, &p),
        "ListKeyPolicies" => list_key_policies(call, &p),
        "Sign"
        | "Verify"
        | "GetPublicKey"
        | "GenerateMac"
        | "VerifyMac"
        | "GenerateDataKeyPair"
        | "GenerateDataKeyPairWithoutPlaintext"
        | "DeriveSharedSecret" => Err(unsupported()),
        other => Err(AwsError::new(
            "UnknownOperationException",
            400,
            format!("Coffer does not implement the KMS operation {other}."),
        )),
    }
    .map(Reply::from)
}

fn unsupported() -> AwsError {
    AwsError::new(
        "UnsupportedOperationException",
        400,
        "Coffer supports symmetric encryption keys only (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT, Origin AWS_KMS); asymmetric, HMAC and imported keys are not available.",
    )
}

fn unexpected(call: &Call<'_>) -> AwsError {
    AwsError::new(
        call.service.internal_error_code(),
        500,
        "The engine answered with an unexpected response.",
    )
}

fn key_id_param<'p>(p: &Params<'p>, name: &str) -> Result<&'p str, AwsError> {
    let id = p.str(name)?;
    if id.is_empty() || id.chars().count() > 2048 {
        return Err(p.invalid(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and 2048",
            name
        )));
    }
    Ok(id)
}

fn describe(call: &mut Call<'_>, reference: &str) -> Result<KeyDescription, AwsError> {
    match call.execute(Request::DescribeKey {
        key: reference.to_owned(),
    })? {
        Response::Key(key) => Ok(*key),
        _ => Err(unexpected(call)),
    }
}

/// The key a `KeyId` names, described and authorized for `operation`.
fn authorized_key(
    call: &mut Call<'_>,
    key_id: &str,
    operation: &str,
) -> Result<KeyDescription, AwsError> {
    let key = describe(call, &arn::key_reference(key_id))?;
    call.authorize_key(operation, &key.id.to_string())?;
    Ok(key)
}

fn key_arn(call: &Call<'_>, key: &KeyDescription) -> String {
    arn::key_arn(&call.region, &call.account, &key.id.to_string())
}

fn metadata(call: &Call<'_>, key: &KeyDescription) -> Value {
    let state = match key.state {
        KeyState::Enabled => "Enabled",
        KeyState::Disabled => "Disabled",
        KeyState::PendingDeletion => "PendingDeletion",
    };
    let mut out = json!({
        "AWSAccountId": call.account,
        "KeyId": key.id.to_string(),
        "Arn": key_arn(call, key),
        "CreationDate": epoch(key.created_at),
        "Enabled": key.state == KeyState::Enabled,
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": state,
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": SYMMETRIC,
        "KeySpec": SYMMETRIC,
        "EncryptionAlgorithms": [SYMMETRIC],
        "MultiRegion": false,
    });
    if let Some(at) = key.deletion_at {
        out["DeletionDate"] = epoch(at);
    }
    out
}

fn create_key(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let description = p.opt_str_len("Description", 0, 8192)?.unwrap_or_default();
    for (name, allowed) in [
        ("KeySpec", SYMMETRIC),
        ("CustomerMasterKeySpec", SYMMETRIC),
        ("KeyUsage", "ENCRYPT_DECRYPT"),
        ("Origin", "AWS_KMS"),
    ] {
        if let Some(value) = p.opt_str(name)? {
            if value != allowed {
                return Err(unsupported());
            }
        }
    }
    if p.opt_bool("MultiRegion")?.unwrap_or(false) {
        return Err(unsupported());
    }
    let tags = kms_tags(p)?;
    let policy = p.opt_str_len("Policy", 1, 32_768)?;
    if let Some(policy) = policy {
        check_key_policy(policy)?;
    }
    let resource = format!("arn:aws:kms:{}:{}:key/*", call.region, call.account);
    call.authorize("CreateKey", &resource)?;
    match call.execute(Request::CreateKey {
        description: description.to_owned(),
        alias: None,
    })? {
        Response::Key(key) => {
            let id = key.id.to_string();
            if !tags.is_empty() {
                call.execute(Request::TagKey {
                    key: id.clone(),
                    tags,
                })?;
            }
            if let Some(policy) = policy {
                call.execute(Request::KeyPolicyPut {
                    key: id,
                    policy: policy.to_owned(),
                })?;
            }
            Ok(json!({"KeyMetadata": metadata(call, &key)}))
        }
        _ => Err(unexpected(call)),
    }
}

fn describe_key(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "DescribeKey")?;
    Ok(json!({"KeyMetadata": metadata(call, &key)}))
}

fn all_keys(call: &mut Call<'_>) -> Result<Vec<KeyDescription>, AwsError> {
    match call.execute(Request::ListKeys)? {
        Response::Keys(keys) => Ok(keys),
        _ => Err(unexpected(call)),
    }
}

/// KMS's `Limit`/`Marker` pagination over a listing.
fn page<T>(p: &Params<'_>, items: Vec<T>) -> Result<(Vec<T>, Option<String>), AwsError> {
    let limit = p.opt_int("Limit", 1, 1000)?.unwrap_or(100) as usize;
    let start = match p.opt_str("Marker")? {
        None => 0,
        Some(marker) => marker
            .strip_prefix("coffer-marker-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                AwsError::new(
                    "InvalidMarkerException",
                    400,
                    "The Marker is not valid; start again without it.",
                )
            })?,
    };
    let end = start.saturating_add(limit).min(items.len());
    let next = (end < items.len()).then(|| format!("coffer-marker-{end}"));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn paged(mut out: Value, next: Option<String>) -> Value {
    out["Truncated"] = json!(next.is_some());
    if let Some(next) = next {
        out["NextMarker"] = json!(next);
    }
    out
}

fn list_keys(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    call.authorize("ListKeys", "*")?;
    let keys = all_keys(call)?;
    let (keys, next) = page(p, keys)?;
    let entries: Vec<Value> = keys
        .iter()
        .map(|k| json!({"KeyId": k.id.to_string(), "KeyArn": key_arn(call, k)}))
        .collect();
    Ok(paged(json!({"Keys": entries}), next))
}

fn key_state(call: &mut Call<'_>, p: &Params<'_>, operation: &str) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, operation)?;
    let id = key.id.to_string();
    let request = if operation == "EnableKey" {
        Request::EnableKey { key: id }
    } else {
        Request::DisableKey { key: id }
    };
    call.execute(request)?;
    Ok(json!({}))
}

fn schedule_key_deletion(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let days = p.opt_int("PendingWindowInDays", 7, 30)?.unwrap_or(30);
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "ScheduleKeyDeletion")?;
    match call.execute(Request::ScheduleKeyDeletion {
        key: key.id.to_string(),
        days: days as u32,
    })? {
        Response::KeyDeletion { deletion_at } => {
            let at = time::OffsetDateTime::parse(
                &deletion_at,
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
            .unwrap_or_default();
            Ok(json!({
                "KeyId": key_arn(call, &key),
                "DeletionDate": at,
                "KeyState": "PendingDeletion",
                "PendingWindowInDays": days,
            }))
        }
        _ => Err(unexpected(call)),
    }
}

fn cancel_key_deletion(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "CancelKeyDeletion")?;
    call.execute(Request::CancelKeyDeletion {
        key: key.id.to_string(),
    })?;
    Ok(json!({"KeyId": key_arn(call, &key)}))
}

fn alias_name<'p>(p: &Params<'p>) -> Result<&'p str, AwsError> {
    let alias = p.str("AliasName")?;
    if alias.is_empty() || alias.chars().count() > 256 {
        return Err(p.invalid("AliasName must be 1 to 256 characters long."));
    }
    if !alias.starts_with("alias/") {
        return Err(AwsError::new(
            "ValidationException",
            400,
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
        ));
    }
    if alias.starts_with("alias/aws/") {
        return Err(AwsError::new(
            "NotAuthorizedException",
            400,
            "Aliases beginning with alias/aws/ are reserved for AWS managed keys.",
        ));
    }
    Ok(alias)
}

fn create_alias(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let alias = alias_name(p)?;
    let key = authorized_key(call, key_id_param(p, "TargetKeyId")?, "CreateAlias")?;
    let alias_arn = arn::alias_arn(&call.region, &call.account, alias);
    call.authorize("CreateAlias", &alias_arn)?;
    call.execute(Request::CreateAlias {
        alias: alias.to_owned(),
        key: key.id.to_string(),
    })?;
    Ok(json!({}))
}

fn update_alias(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let alias = alias_name(p)?;
    let current = describe(call, alias)?;
    let key = authorized_key(call, key_id_param(p, "TargetKeyId")?, "UpdateAlias")?;
    let alias_arn = arn::alias_arn(&call.region, &call.account, alias);
    call.authorize("UpdateAlias", &alias_arn)?;
    call.authorize_key("UpdateAlias", &current.id.to_string())?;
    call.execute(Request::DeleteAlias {
        alias: alias.to_owned(),
    })?;
    let created = call.execute(Request::CreateAlias {
        alias: alias.to_owned(),
        key: key.id.to_string(),
    });
    if created.is_err() {
        // Put the alias back where it was rather than leave it missing.
        let _ = call.execute(Request::CreateAlias {
            alias: alias.to_owned(),
            key: current.id.to_string(),
        });
    }
    created.map(|_| json!({}))
}

fn delete_alias(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let alias = alias_name(p)?;
    let key = describe(call, alias)?;
    let alias_arn = arn::alias_arn(&call.region, &call.account, alias);
    call.authorize("DeleteAlias", &alias_arn)?;
    call.authorize_key("DeleteAlias", &key.id.to_string())?;
    call.execute(Request::DeleteAlias {
        alias: alias.to_owned(),
    })?;
    Ok(json!({}))
}

fn list_aliases(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let only = p.opt_str("KeyId")?.map(arn::key_reference);
    call.authorize("ListAliases", "*")?;
    let keys = match only {
        Some(reference) => vec![describe(call, &reference)?],
        None => all_keys(call)?,
    };
    let mut aliases = Vec::new();
    for key in &keys {
        for alias in &key.aliases {
            aliases.push(json!({
                "AliasName": alias,
                "AliasArn": arn::alias_arn(&call.region, &call.account, alias),
                "TargetKeyId": key.id.to_string(),
            }));
        }
    }
    let (aliases, next) = page(p, aliases)?;
    Ok(paged(json!({"Aliases": aliases}), next))
}

fn algorithm(p: &Params<'_>, name: &str) -> Result<(), AwsError> {
    match p.opt_str(name)? {
        None | Some(SYMMETRIC) => Ok(()),
        Some(_) => Err(AwsError::new(
            "InvalidKeyUsageException",
            400,
            "Coffer keys are symmetric: the only encryption algorithm is SYMMETRIC_DEFAULT.",
        )),
    }
}

fn grant_tokens(p: &Params<'_>) -> Result<(), AwsError> {
    if let Some(tokens) = p.opt_strings("GrantTokens")? {
        if tokens.len() > 10 {
            return Err(p.invalid("GrantTokens can hold at most 10 tokens."));
        }
    }
    Ok(())
}

/// A plaintext member, only ever in wiped memory (see `secret_body`).
fn plaintext_reply(bytes: &WireValue) -> Reply {
    Reply::Secret(Zeroizing::new(match (&bytes.base64, &bytes.text) {
        (Some(b64), _) => b64.clone(),
        (None, Some(text)) => BASE64.encode(text.as_bytes()),
        (None, None) => String::new(),
    }))
}

fn encrypt(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    let Some(plaintext) = p.opt_blob("Plaintext")? else {
        return Err(p.invalid("1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null"));
    };
    if plaintext.is_empty() || plaintext.len() > 4096 {
        return Err(p.invalid("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096"));
    }
    let context = p.string_map("EncryptionContext")?;
    algorithm(p, "EncryptionAlgorithm")?;
    grant_tokens(p)?;
    let key = authorized_key(call, key_id, "Encrypt")?;
    match call.execute(Request::Encrypt {
        key: key.id.to_string(),
        plaintext: WireValue::from_value(&SecretValue::Binary(plaintext)),
        context,
    })? {
        Response::Ciphertext(blob) => Ok(json!({
            "CiphertextBlob": blob.0,
            "KeyId": key_arn(call, &key),
            "EncryptionAlgorithm": SYMMETRIC,
        })),
        _ => Err(unexpected(call)),
    }
}

fn ciphertext(p: &Params<'_>, name: &str) -> Result<Blob, AwsError> {
    match p.opt_blob(name)? {
        Some(bytes) if !bytes.is_empty() && bytes.len() <= 6144 => Ok(Blob::encode(&bytes)),
        Some(_) => Err(p.invalid(format!("1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and 6144", lower(name)))),
        None => Err(p.invalid(format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower(name)))),
    }
}

fn lower(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The key a ciphertext names, read from its header, for authorization before opening.
fn key_of_ciphertext(call: &mut Call<'_>, blob: &Blob) -> Result<KeyDescription, AwsError> {
    let bytes = blob.decode().map_err(|_| {
        AwsError::new(
            "InvalidCiphertextException",
            400,
            "The ciphertext is not valid.",
        )
    })?;
    let key_id = coffer_core::vault::envelope::ciphertext_key(&bytes).ok_or_else(|| {
        AwsError::new(
            "InvalidCiphertextException",
            400,
            "The ciphertext was not made by this vault, or it was altered.",
        )
    })?;
    describe(call, &key_id.to_string()).map_err(|e| {
        if e.code() == "NotFoundException" {
            AwsError::new(
                "InvalidCiphertextException",
                400,
                "The ciphertext refers to a key this vault does not have.",
            )
        } else {
            e
        }
    })
}

fn decrypt(call: &mut Call<'_>, p: &Params<'_>) -> Result<Reply, AwsError> {
    let blob = ciphertext(p, "CiphertextBlob")?;
    let context = p.string_map("EncryptionContext")?;
    algorithm(p, "EncryptionAlgorithm")?;
    grant_tokens(p)?;
    let key = key_of_ciphertext(call, &blob)?;
    if let Some(expected) = p.opt_str("KeyId")? {
        let wanted = describe(call, &arn::key_reference(expected))?;
        if wanted.id != key.id {
            return Err(AwsError::new(
                "IncorrectKeyException",
                400,
                "The key ID in the request does not identify a KMS key that can perform this operation.",
            ));
        }
    }
    let arn = key_arn(call, &key);
    call.authorize_key("Decrypt", &key.id.to_string())?;
    match call.execute(Request::Decrypt {
        ciphertext: blob,
        context,
    })? {
        Response::Plaintext { plaintext, .. } => Ok(Reply::Object(vec![
            ("Plaintext", plaintext_reply(&plaintext)),
            ("KeyId", json!(arn).into()),
            ("EncryptionAlgorithm", json!(SYMMETRIC).into()),
        ])),
        _ => Err(unexpected(call)),
    }
}

fn re_encrypt(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let blob = ciphertext(p, "CiphertextBlob")?;
    let source_context = p.string_map("SourceEncryptionContext")?;
    let destination_context = p.string_map("DestinationEncryptionContext")?;
    algorithm(p, "SourceEncryptionAlgorithm")?;
    algorithm(p, "DestinationEncryptionAlgorithm")?;
    grant_tokens(p)?;
    let destination_id = key_id_param(p, "DestinationKeyId")?;
    let source = key_of_ciphertext(call, &blob)?;
    if let Some(expected) = p.opt_str("SourceKeyId")? {
        let wanted = describe(call, &arn::key_reference(expected))?;
        if wanted.id != source.id {
            return Err(AwsError::new(
                "IncorrectKeyException",
                400,
                "The source key ID in the request does not identify the key the ciphertext was encrypted under.",
            ));
        }
    }
    let source_arn = key_arn(call, &source);
    call.authorize_key("ReEncryptFrom", &source.id.to_string())?;
    let destination = authorized_key(call, destination_id, "ReEncryptTo")?;
    match call.execute(Request::ReEncrypt {
        ciphertext: blob,
        source_context,
        destination_key: destination.id.to_string(),
        destination_context,
    })? {
        Response::Ciphertext(out) => Ok(json!({
            "CiphertextBlob": out.0,
            "SourceKeyId": source_arn,
            "KeyId": key_arn(call, &destination),
            "SourceEncryptionAlgorithm": SYMMETRIC,
            "DestinationEncryptionAlgorithm": SYMMETRIC,
        })),
        _ => Err(unexpected(call)),
    }
}

fn generate_data_key(
    call: &mut Call<'_>,
    p: &Params<'_>,
    with_plaintext: bool,
) -> Result<Reply, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    let spec = p.opt_str("KeySpec")?;
    let number = p.opt_int("NumberOfBytes", 1, 1024)?;
    let bytes = match (spec, number) {
        (Some(_), Some(_)) => {
            return Err(p.invalid("Please specify either number of bytes or key spec."))
        }
        (None, None) => return Err(p.invalid("Please specify either number of bytes or key spec.")),
        (Some("AES_256"), None) => 32,
        (Some("AES_128"), None) => 16,
        (Some(other), None) => {
            return Err(p.invalid(format!(
                "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
            )))
        }
        (None, Some(n)) => n as usize,
    };
    let context = p.string_map("EncryptionContext")?;
    grant_tokens(p)?;
    let operation = if with_plaintext {
        "GenerateDataKey"
    } else {
        "GenerateDataKeyWithoutPlaintext"
    };
    let key = authorized_key(call, key_id, operation)?;
    match call.execute(Request::GenerateDataKey {
        key: key.id.to_string(),
        bytes,
        context,
        with_plaintext,
    })? {
        Response::DataKey(material) => {
            let mut out = vec![
                ("CiphertextBlob", json!(material.ciphertext.0).into()),
                ("KeyId", json!(key_arn(call, &key)).into()),
            ];
            if let Some(plain) = &material.plaintext {
                out.push(("Plaintext", plaintext_reply(plain)));
            }
            Ok(Reply::Object(out))
        }
        _ => Err(unexpected(call)),
    }
}

fn generate_random(call: &mut Call<'_>, p: &Params<'_>) -> Result<Reply, AwsError> {
    let bytes = p.opt_int("NumberOfBytes", 1, 1024)?.unwrap_or(32) as usize;
    if p.has("CustomKeyStoreId") {
        return Err(AwsError::new(
            "CustomKeyStoreNotFoundException",
            400,
            "Coffer has no custom key stores.",
        ));
    }
    call.authorize("GenerateRandom", "*")?;
    let random = coffer_core::vault::envelope::generate_random(bytes)
        .map_err(|e| crate::engine_errors::aws_error(call.service, &e))?;
    Ok(Reply::Object(vec![(
        "Plaintext",
        Reply::Secret(Zeroizing::new(BASE64.encode(random.as_slice()))),
    )]))
}

fn enable_key_rotation(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let days = p.opt_int("RotationPeriodInDays", 90, 2560)?.unwrap_or(365);
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "EnableKeyRotation")?;
    call.execute(Request::EnableKeyRotation {
        key: key.id.to_string(),
        period_days: days as u32,
    })?;
    Ok(json!({}))
}

fn disable_key_rotation(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "DisableKeyRotation")?;
    call.execute(Request::DisableKeyRotation {
        key: key.id.to_string(),
    })?;
    Ok(json!({}))
}

fn get_key_rotation_status(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "GetKeyRotationStatus")?;
    match call.execute(Request::KeyRotationStatus {
        key: key.id.to_string(),
    })? {
        Response::KeyRotation(info) => {
            let mut out = json!({
                "KeyRotationEnabled": info.period_days.is_some(),
                "KeyId": key.id.to_string(),
            });
            if let Some(days) = info.period_days {
                out["RotationPeriodInDays"] = json!(days);
            }
            if let Some(at) = info.next_rotation {
                out["NextRotationDate"] = epoch(at);
            }
            Ok(out)
        }
        _ => Err(unexpected(call)),
    }
}

fn rotate_key_on_demand(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "RotateKeyOnDemand")?;
    call.execute(Request::RotateKey {
        key: key.id.to_string(),
    })?;
    Ok(json!({"KeyId": key.id.to_string()}))
}

/// KMS tags: `[{"TagKey": ..., "TagValue": ...}]`.
fn kms_tags(p: &Params<'_>) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut out = std::collections::BTreeMap::new();
    let Some(items) = p.opt_array("Tags")? else {
        return Ok(out);
    };
    for item in items {
        let key = item.get("TagKey").and_then(Value::as_str);
        let value = item.get("TagValue").and_then(Value::as_str);
        let (Some(key), Some(value)) = (key, value) else {
            return Err(p.invalid("Each tag needs a TagKey and a TagValue."));
        };
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(AwsError::new(
                "TagException",
                400,
                "Tag keys must be 1 to 128 characters and values at most 256.",
            ));
        }
        if key.starts_with("aws:") {
            return Err(AwsError::new(
                "TagException",
                400,
                "Tag keys beginning with aws: are reserved.",
            ));
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

fn check_key_policy(policy: &str) -> Result<(), AwsError> {
    coffer_aws::policy::Policy::parse_resource(policy)
        .map(|_| ())
        .map_err(|e| {
            AwsError::new(
                "MalformedPolicyDocumentException",
                400,
                format!("The key policy is not valid: {e}"),
            )
        })
}

/// The policy a key has until PutKeyPolicy: KMS's default, which delegates to the
/// account's own (here: the access keys') policies.
fn default_key_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
    .to_string()
}

fn policy_name(p: &Params<'_>, required: bool) -> Result<(), AwsError> {
    let name = if required {
        Some(p.str("PolicyName")?)
    } else {
        p.opt_str("PolicyName")?
    };
    match name {
        None | Some("default") => Ok(()),
        Some(_) => Err(AwsError::new(
            "NotFoundException",
            400,
            "A key has one policy, named default.",
        )),
    }
}

fn list_key_rotations(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "ListKeyRotations")?;
    let id = key.id.to_string();
    let rotations: Vec<Value> = key
        .versions
        .iter()
        .filter(|v| v.version > 1)
        .map(|v| json!({"KeyId": id, "RotationDate": epoch(v.created_at)}))
        .collect();
    let (rotations, next) = page(p, rotations)?;
    Ok(paged(json!({"Rotations": rotations}), next))
}

fn update_key_description(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    let description = p.opt_str_len("Description", 0, 8192)?;
    let Some(description) = description else {
        return Err(p.invalid("1 validation error detected: Value null at 'description' failed to satisfy constraint: Member must not be null"));
    };
    let key = authorized_key(call, key_id, "UpdateKeyDescription")?;
    call.execute(Request::UpdateKeyDescription {
        key: key.id.to_string(),
        description: description.to_owned(),
    })?;
    Ok(json!({}))
}

fn tag_resource(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    if !p.has("Tags") {
        return Err(p.invalid("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null"));
    }
    let tags = kms_tags(p)?;
    let key = authorized_key(call, key_id, "TagResource")?;
    call.execute(Request::TagKey {
        key: key.id.to_string(),
        tags,
    })?;
    Ok(json!({}))
}

fn untag_resource(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    let Some(keys) = p.opt_strings("TagKeys")? else {
        return Err(p.invalid("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"));
    };
    let key = authorized_key(call, key_id, "UntagResource")?;
    call.execute(Request::UntagKey {
        key: key.id.to_string(),
        keys,
    })?;
    Ok(json!({}))
}

fn list_resource_tags(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key = authorized_key(call, key_id_param(p, "KeyId")?, "ListResourceTags")?;
    match call.execute(Request::KeyTags {
        key: key.id.to_string(),
    })? {
        Response::Tags(tags) => {
            let tags: Vec<Value> = tags
                .iter()
                .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
                .collect();
            let (tags, next) = page(p, tags)?;
            Ok(paged(json!({"Tags": tags}), next))
        }
        _ => Err(unexpected(call)),
    }
}

fn get_key_policy(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    policy_name(p, false)?;
    let key = authorized_key(call, key_id, "GetKeyPolicy")?;
    match call.execute(Request::KeyPolicyGet {
        key: key.id.to_string(),
    })? {
        Response::KeyPolicy(policy) => Ok(json!({
            "Policy": policy.unwrap_or_else(|| default_key_policy(&call.account)),
            "PolicyName": "default",
        })),
        _ => Err(unexpected(call)),
    }
}

fn put_key_policy(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let key_id = key_id_param(p, "KeyId")?;
    policy_name(p, false)?;
    let policy = p.str("Policy")?;
    if policy.is_empty() || policy.len() > 32_768 {
        return Err(p.invalid("Policy must be 1 to 32768 characters long."));
    }
    check_key_policy(policy)?;
    let key = authorized_key(call, key_id, "PutKeyPolicy")?;
    call.execute(Request::KeyPolicyPut {
        key: key.id.to_string(),
        policy: policy.to_owned(),
    })?;
    Ok(json!({}))
}

fn list_key_policies(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    authorized_key(call, key_id_param(p, "KeyId")?, "ListKeyPolicies")?;
    Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
}
