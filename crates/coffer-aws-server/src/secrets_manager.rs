//! Secrets Manager operations, mapped onto the engine's requests.
//!
//! Staging labels are AWS's `AWSCURRENT`/`AWSPREVIOUS`/`AWSPENDING` on the wire and the
//! engine's `CURRENT`/`PREVIOUS`/`PENDING` inside; every other label passes unchanged.

use std::collections::BTreeMap;

use coffer_aws::AwsError;
use coffer_core::password::PasswordOptions;
use coffer_core::service::{ListRequest, Request, Response, ValueRead, WireValue};
use coffer_core::{SecretDescription, SecretValue};
use serde_json::{json, Map, Value};

use crate::arn;
use crate::call::Call;
use crate::params::{epoch, Params};
use crate::replication;
use crate::secret_body::Reply;
use zeroize::Zeroizing;

type Input = Map<String, Value>;

pub fn call(call: &mut Call<'_>, operation: &str, input: &Input) -> Result<Reply, AwsError> {
    let p = Params::new(input, call.service);
    // The two answers that carry secret values are built as Replies (see `secret_body`).
    match operation {
        "GetSecretValue" => return get_secret_value(call, &p),
        "BatchGetSecretValue" => return batch_get_secret_value(call, &p),
        _ => {}
    }
    match operation {
        "CreateSecret" => create_secret(call, &p),
        "PutSecretValue" => put_secret_value(call, &p),
        "UpdateSecret" => update_secret(call, &p),
        "DescribeSecret" => describe_secret(call, &p),
        "ListSecrets" => list_secrets(call, &p),
        "ListSecretVersionIds" => list_secret_version_ids(call, &p),
        "UpdateSecretVersionStage" => update_secret_version_stage(call, &p),
        "DeleteSecret" => delete_secret(call, &p),
        "RestoreSecret" => restore_secret(call, &p),
        "TagResource" => tag_resource(call, &p),
        "UntagResource" => untag_resource(call, &p),
        "GetRandomPassword" => get_random_password(call, &p),
        "RotateSecret" => rotate_secret(call, &p),
        "CancelRotateSecret" => cancel_rotate_secret(call, &p),
        "ValidateResourcePolicy" => validate_resource_policy(call, &p),
        "GetResourcePolicy" => get_resource_policy(call, &p),
        "PutResourcePolicy" => put_resource_policy(call, &p),
        "DeleteResourcePolicy" => delete_resource_policy(call, &p),
        "ReplicateSecretToRegions" => replication::replicate_secret_to_regions(call, &p),
        "RemoveRegionsFromReplication" => replication::remove_regions_from_replication(call, &p),
        "StopReplicationToReplica" => replication::stop_replication_to_replica(call, &p),
        other => Err(AwsError::new(
            "UnknownOperationException",
            400,
            format!("Coffer does not implement the Secrets Manager operation {other}."),
        )),
    }
    .map(Reply::from)
}

fn engine_label(label: &str) -> String {
    match label {
        "AWSCURRENT" => "CURRENT".to_owned(),
        "AWSPREVIOUS" => "PREVIOUS".to_owned(),
        "AWSPENDING" => "PENDING".to_owned(),
        other => other.to_owned(),
    }
}

fn aws_label(label: &str) -> String {
    match label {
        "CURRENT" => "AWSCURRENT".to_owned(),
        "PREVIOUS" => "AWSPREVIOUS".to_owned(),
        "PENDING" => "AWSPENDING".to_owned(),
        other => other.to_owned(),
    }
}

fn not_found() -> AwsError {
    AwsError::new(
        "ResourceNotFoundException",
        400,
        "Secrets Manager can't find the specified secret.",
    )
}

/// A secret a request names, as found in the vault.
pub(crate) struct Target {
    pub name: String,
    /// Its ARN; for a secret that does not exist, the `-??????` form requests for it are
    /// authorized on (the operation then reports it missing).
    pub arn: String,
    pub policy: Option<String>,
}

/// Looks a secret up by name: its ARN and resource policy.
pub(crate) fn lookup(call: &mut Call<'_>, name: &str) -> Result<Option<Target>, AwsError> {
    match call.vault.aws_secret(name) {
        Ok((id, policy)) => Ok(Some(Target {
            name: name.to_owned(),
            arn: arn::secret_arn(&call.region, &call.account, id, name),
            policy,
        })),
        // Missing, or not a valid name: the operation itself says which.
        Err(error) if matches!(error.code(), "secret_not_found" | "invalid_argument") => Ok(None),
        Err(error) => Err(crate::engine_errors::aws_error(call.service, &error)),
    }
}

fn missing(call: &Call<'_>, name: &str) -> Target {
    Target {
        name: name.to_owned(),
        arn: arn::unknown_secret_arn(&call.region, &call.account, name),
        policy: None,
    }
}

/// The secret a `SecretId` names: a name, a partial ARN (the name alone) or a full ARN,
/// whose six-character suffix must be this secret's (an ARN of a secret since deleted and
/// made again under its name names nothing).
pub(crate) fn resolve(call: &mut Call<'_>, p: &Params<'_>) -> Result<Target, AwsError> {
    let id = p.str("SecretId")?;
    if id.is_empty() || id.chars().count() > 2048 {
        return Err(p.invalid("SecretId must be 1 to 2048 characters long."));
    }
    let reference = arn::parse_secret_id(id);
    if let Some((base, suffix)) = &reference.full {
        if let Some(target) = lookup(call, base)? {
            if target.arn.ends_with(&format!("-{suffix}")) {
                return Ok(target);
            }
        }
    }
    match lookup(call, &reference.name)? {
        Some(target) => Ok(target),
        // A full ARN that matched no secret names nothing, even if its name exists.
        None if reference.full.is_some() => Err(not_found()),
        None => Ok(missing(call, &reference.name)),
    }
}

/// Refuses (and audits) unless the caller may do `operation` on `target`.
pub(crate) fn allow(call: &mut Call<'_>, operation: &str, target: &Target) -> Result<(), AwsError> {
    call.authorize_secret(operation, &target.arn, target.policy.as_deref())
}

/// `SecretString` or `SecretBinary`, at most one.
fn value(p: &Params<'_>) -> Result<Option<WireValue>, AwsError> {
    let string = p.opt_str("SecretString")?;
    let binary = p.opt_blob("SecretBinary")?;
    match (string, binary) {
        (Some(_), Some(_)) => Err(p.invalid(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(text), None) => {
            if text.len() > 65_536 {
                return Err(p.invalid("SecretString must be at most 65536 bytes."));
            }
            Ok(Some(WireValue::from_value(&SecretValue::text(text))))
        }
        (None, Some(bytes)) => {
            if bytes.len() > 65_536 {
                return Err(p.invalid("SecretBinary must be at most 65536 bytes."));
            }
            Ok(Some(WireValue::from_value(&SecretValue::Binary(bytes))))
        }
        (None, None) => Ok(None),
    }
}

fn client_token(p: &Params<'_>) -> Result<Option<String>, AwsError> {
    Ok(p.opt_str_len("ClientRequestToken", 32, 64)?
        .map(str::to_owned))
}

fn tags(p: &Params<'_>, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    let Some(items) = p.opt_array(name)? else {
        return Ok(out);
    };
    if items.len() > 50 {
        return Err(p.invalid("A secret can have at most 50 tags."));
    }
    for item in items {
        let key = item.get("Key").and_then(Value::as_str);
        let value = item
            .get("Value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(key) = key else {
            return Err(p.invalid("Each tag needs a Key."));
        };
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(p.invalid(
                "Tag keys must be 1 to 128 characters and values at most 256 characters.",
            ));
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

fn create_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let name = p.str("Name")?.to_owned();
    if name.is_empty() || name.chars().count() > 512 {
        return Err(p.invalid("Name must be 1 to 512 characters long."));
    }
    let description = p.opt_str_len("Description", 0, 2048)?.unwrap_or_default();
    let key = p.opt_str_len("KmsKeyId", 0, 2048)?.map(arn::key_reference);
    // Not made yet, so no suffix: IAM's documented stand-in.
    call.authorize(
        "CreateSecret",
        &arn::unknown_secret_arn(&call.region, &call.account, &name),
    )?;
    // Every replica region is checked before the secret is made.
    let replicas = replication::add_replica_regions(call, p)?;
    let request = Request::CreateSecret {
        name: name.clone(),
        description: description.to_owned(),
        key,
        tags: tags(p, "Tags")?,
        value: value(p)?,
        client_token: client_token(p)?,
    };
    match call.execute(request)? {
        Response::Written(written) => {
            let arn = match lookup(call, written.name.as_str())? {
                Some(made) => made.arn,
                None => return Err(unexpected(call)),
            };
            let mut out = json!({"ARN": arn, "Name": written.name.as_str()});
            if !written.version_id.is_nil() {
                out["VersionId"] = json!(written.version_id.to_string());
            }
            if !replicas.is_empty() {
                replication::replicate(call, written.name.as_str(), replicas)?;
                let d = describe(call, written.name.as_str())?;
                out["ReplicationStatus"] = json!(replication::status_json(d.replication.as_ref()));
            }
            Ok(out)
        }
        _ => Err(unexpected(call)),
    }
}

pub(crate) fn unexpected(call: &Call<'_>) -> AwsError {
    AwsError::new(
        call.service.internal_error_code(),
        500,
        "The engine answered with an unexpected response.",
    )
}

/// A secret value as GetSecretValue answers it; the value only ever in wiped memory.
fn value_reply(arn: &str, read: &ValueRead) -> Reply {
    let mut out: Vec<(&'static str, Reply)> = vec![
        ("ARN", json!(arn).into()),
        ("Name", json!(read.name.as_str()).into()),
        ("VersionId", json!(read.version_id.to_string()).into()),
        (
            "VersionStages",
            json!(read
                .labels
                .iter()
                .map(|l| aws_label(l.as_str()))
                .collect::<Vec<_>>())
            .into(),
        ),
    ];
    if let Ok(created) = time::OffsetDateTime::parse(
        &read.created_at,
        &time::format_description::well_known::Rfc3339,
    ) {
        out.push((
            "CreatedDate",
            json!(created.unix_timestamp_nanos() as f64 / 1e9).into(),
        ));
    }
    match (&read.value.text, &read.value.base64) {
        (Some(text), _) => out.push(("SecretString", Reply::Secret(Zeroizing::new(text.clone())))),
        (None, Some(b64)) => out.push(("SecretBinary", Reply::Secret(Zeroizing::new(b64.clone())))),
        (None, None) => {}
    }
    Reply::Object(out)
}

fn get_secret_value(call: &mut Call<'_>, p: &Params<'_>) -> Result<Reply, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let version_id = p.opt_str_len("VersionId", 32, 64)?;
    let stage = p.opt_str_len("VersionStage", 1, 256)?;
    allow(call, "GetSecretValue", &target)?;
    read_value(call, &target.arn, name, version_id, stage)
}

fn read_value(
    call: &mut Call<'_>,
    arn: &str,
    name: String,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<Reply, AwsError> {
    let version_id = version_id
        .map(|v| {
            uuid::Uuid::parse_str(v).map_err(|_| {
                AwsError::new(
                    "ResourceNotFoundException",
                    400,
                    format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {v}"
                    ),
                )
            })
        })
        .transpose()?;
    let label = match (version_id, stage) {
        (Some(_), _) => stage.map(engine_label),
        (None, Some(stage)) => Some(engine_label(stage)),
        (None, None) => None,
    };
    // AWS accepts both when they agree: read by id, then check the label is on it.
    let by_id = version_id.is_some();
    let request = Request::GetSecretValue {
        name,
        label: if by_id { None } else { label.clone() },
        version_id,
    };
    match call.execute(request)? {
        Response::Value(read) => {
            if let (true, Some(label)) = (by_id, &label) {
                if !read.labels.iter().any(|l| l.as_str() == label) {
                    return Err(AwsError::new(
                        "ResourceNotFoundException",
                        400,
                        format!(
                            "Secrets Manager can't find the specified secret value for VersionId: {} and VersionStage: {}",
                            read.version_id,
                            aws_label(label)
                        ),
                    ));
                }
            }
            Ok(value_reply(arn, &read))
        }
        _ => Err(unexpected(call)),
    }
}

fn batch_get_secret_value(call: &mut Call<'_>, p: &Params<'_>) -> Result<Reply, AwsError> {
    let ids = p.opt_strings("SecretIdList")?;
    let has_filters = p.has("Filters");
    let names: Vec<String> = match (ids, has_filters) {
        (Some(_), true) => {
            return Err(
                p.invalid("Either 'SecretIdList' or 'Filters' must be provided, but not both.")
            )
        }
        (None, false) => {
            return Err(p.invalid("Either 'SecretIdList' or 'Filters' must be provided."))
        }
        (Some(ids), false) => {
            if ids.is_empty() || ids.len() > 20 {
                return Err(p.invalid("SecretIdList must hold 1 to 20 secret ids."));
            }
            if p.has("MaxResults") {
                return Err(p.invalid("MaxResults applies only with Filters."));
            }
            ids
        }
        (None, true) => {
            let max = p.opt_int("MaxResults", 1, 20)?.unwrap_or(20) as usize;
            call.authorize("BatchGetSecretValue", "*")?;
            let listed = filtered_secrets(call, p, false)?;
            let (page, next) = paginate(p, listed, max)?;
            let mut values = Vec::new();
            let mut errors = Vec::new();
            for secret in page {
                let name = secret.name.as_str();
                match lookup(call, name) {
                    Ok(Some(target)) => fetch_one(call, target, &mut values, &mut errors),
                    Ok(None) => errors.push(batch_error(name, &not_found())),
                    Err(error) => errors.push(batch_error(name, &error)),
                }
            }
            let mut out = vec![
                ("SecretValues", Reply::Array(values)),
                ("Errors", json!(errors).into()),
            ];
            if let Some(next) = next {
                out.push(("NextToken", json!(next).into()));
            }
            return Ok(Reply::Object(out));
        }
    };
    call.authorize("BatchGetSecretValue", "*")?;
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for id in names {
        let map: Input = [("SecretId".to_owned(), json!(id))].into_iter().collect();
        let inner = Params::new(&map, call.service);
        match resolve(call, &inner) {
            Ok(target) => fetch_one(call, target, &mut values, &mut errors),
            Err(error) => errors.push(batch_error(&id, &error)),
        }
    }
    Ok(Reply::Object(vec![
        ("SecretValues", Reply::Array(values)),
        ("Errors", json!(errors).into()),
    ]))
}

fn batch_error(id: &str, error: &AwsError) -> Value {
    json!({"SecretId": id, "ErrorCode": error.code(), "Message": error.message()})
}

/// Reads one secret for BatchGetSecretValue: each needs GetSecretValue on it, as in AWS.
fn fetch_one(
    call: &mut Call<'_>,
    target: Target,
    values: &mut Vec<Reply>,
    errors: &mut Vec<Value>,
) {
    let result = allow(call, "GetSecretValue", &target)
        .and_then(|()| read_value(call, &target.arn, target.name.clone(), None, None));
    match result {
        Ok(value) => values.push(value),
        Err(error) => errors.push(batch_error(&target.name, &error)),
    }
}

fn put_secret_value(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let Some(value) = value(p)? else {
        return Err(p.invalid("You must provide either SecretString or SecretBinary."));
    };
    let stages = p.opt_strings("VersionStages")?.unwrap_or_default();
    if stages.len() > 20 {
        return Err(p.invalid("VersionStages can hold at most 20 labels."));
    }
    let arn = target.arn.clone();
    allow(call, "PutSecretValue", &target)?;
    let request = Request::PutSecretValue {
        name,
        value,
        labels: stages.iter().map(|s| engine_label(s)).collect(),
        client_token: client_token(p)?,
    };
    match call.execute(request)? {
        Response::Written(written) => Ok(json!({
            "ARN": arn,
            "Name": written.name.as_str(),
            "VersionId": written.version_id.to_string(),
            "VersionStages": written.labels.iter().map(|l| aws_label(l.as_str())).collect::<Vec<_>>(),
        })),
        _ => Err(unexpected(call)),
    }
}

fn update_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let description = p.opt_str_len("Description", 0, 2048)?.map(str::to_owned);
    let key = p.opt_str_len("KmsKeyId", 0, 2048)?.map(arn::key_reference);
    let value = value(p)?;
    let token = client_token(p)?;
    let arn = target.arn.clone();
    allow(call, "UpdateSecret", &target)?;
    if description.is_some() || key.is_some() {
        call.execute(Request::UpdateSecret {
            name: name.clone(),
            description,
            key,
        })?;
    }
    let mut out = json!({"ARN": arn, "Name": name});
    if let Some(value) = value {
        if let Response::Written(written) = call.execute(Request::PutSecretValue {
            name,
            value,
            labels: Vec::new(),
            client_token: token,
        })? {
            out["VersionId"] = json!(written.version_id.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn describe(call: &mut Call<'_>, name: &str) -> Result<SecretDescription, AwsError> {
    match call.execute(Request::DescribeSecret {
        name: name.to_owned(),
    })? {
        Response::Secret(description) => Ok(*description),
        _ => Err(unexpected(call)),
    }
}

fn description_json(call: &Call<'_>, d: &SecretDescription, list_entry: bool) -> Value {
    let mut stages = Map::new();
    for version in &d.versions {
        if !version.labels.is_empty() {
            stages.insert(
                version.version_id.to_string(),
                json!(version
                    .labels
                    .iter()
                    .map(|l| aws_label(l.as_str()))
                    .collect::<Vec<_>>()),
            );
        }
    }
    let mut out = json!({
        "ARN": arn::secret_arn(&call.region, &call.account, d.id, d.name.as_str()),
        "Name": d.name.as_str(),
        "KmsKeyId": arn::key_arn(&call.region, &call.account, &d.key_id.to_string()),
        "CreatedDate": epoch(d.created_at),
        "LastChangedDate": epoch(d.changed_at),
        "Tags": d.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        "PrimaryRegion": replication::primary_region(call, d),
    });
    // DescribeSecret's member only: ListSecrets' entries carry PrimaryRegion alone.
    let replicas = replication::status_json(d.replication.as_ref());
    if !list_entry && !replicas.is_empty() {
        out["ReplicationStatus"] = json!(replicas);
    }
    if !d.description.is_empty() {
        out["Description"] = json!(d.description);
    }
    let versions_key = if list_entry {
        "SecretVersionsToStages"
    } else {
        "VersionIdsToStages"
    };
    out[versions_key] = Value::Object(stages);
    if let Some(at) = d.last_accessed {
        out["LastAccessedDate"] = epoch(at);
    }
    if let Some(at) = d.deleted_at {
        out["DeletedDate"] = epoch(at);
    }
    match &d.rotation {
        Some(rotation) => {
            out["RotationEnabled"] = json!(rotation.enabled);
            if let Some(schedule) = &rotation.schedule {
                let mut rules = json!({"ScheduleExpression": schedule});
                if let Some(window) = &rotation.window {
                    rules["Duration"] = json!(window);
                }
                out["RotationRules"] = rules;
            }
            if let Some(at) = rotation.last_rotated {
                out["LastRotatedDate"] = epoch(at);
            }
            if let Some(at) = rotation.next_rotation {
                out["NextRotationDate"] = epoch(at);
            }
        }
        None => out["RotationEnabled"] = json!(false),
    }
    out
}

fn describe_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    allow(call, "DescribeSecret", &target)?;
    let d = describe(call, &name)?;
    Ok(description_json(call, &d, false))
}

/// One ListSecrets filter: a key and values, each value a prefix (`!` negates).
struct Filter {
    key: String,
    values: Vec<String>,
}

fn filters(p: &Params<'_>) -> Result<Vec<Filter>, AwsError> {
    let mut out = Vec::new();
    let Some(items) = p.opt_array("Filters")? else {
        return Ok(out);
    };
    if items.len() > 10 {
        return Err(p.invalid("Filters can hold at most 10 filters."));
    }
    for item in items {
        let key = item.get("Key").and_then(Value::as_str).unwrap_or_default();
        if ![
            "description",
            "name",
            "tag-key",
            "tag-value",
            "primary-region",
            "owning-service",
            "all",
        ]
        .contains(&key)
        {
            return Err(p.invalid(format!(
                "Filter key {key:?} is not valid; use description, name, tag-key, tag-value, primary-region, owning-service or all."
            )));
        }
        let values: Vec<String> = item
            .get("Values")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if values.is_empty() || values.len() > 10 {
            return Err(p.invalid("Each filter needs 1 to 10 values."));
        }
        for value in &values {
            let ok = !value.is_empty()
                && value.chars().count() <= 512
                && value
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == ' ' || "!/_+=.@-".contains(c));
            if !ok {
                return Err(p.invalid(format!(
                    "Filter value {value:?} is not valid: use 1 to 512 letters, digits, spaces or !/_+=.@-"
                )));
            }
        }
        out.push(Filter {
            key: key.to_owned(),
            values,
        });
    }
    Ok(out)
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.to_lowercase().starts_with(&prefix.to_lowercase())
}

fn matches(filter: &Filter, d: &SecretDescription, call: &Call<'_>) -> bool {
    let region = replication::primary_region(call, d);
    let (positive, negative): (Vec<&String>, Vec<&String>) =
        filter.values.iter().partition(|v| !v.starts_with('!'));
    let hit = |value: &str| -> bool {
        match filter.key.as_str() {
            "name" => starts_with_ci(d.name.as_str(), value),
            "description" => starts_with_ci(&d.description, value),
            "tag-key" => d.tags.keys().any(|k| starts_with_ci(k, value)),
            "tag-value" => d.tags.values().any(|v| starts_with_ci(v, value)),
            "primary-region" => region.eq_ignore_ascii_case(value),
            "owning-service" => false,
            _ => {
                let lower = value.to_lowercase();
                d.name.as_str().to_lowercase().contains(&lower)
                    || d.description.to_lowercase().contains(&lower)
                    || d.tags.iter().any(|(k, v)| {
                        k.to_lowercase().contains(&lower) || v.to_lowercase().contains(&lower)
                    })
            }
        }
    };
    let positive_ok = positive.is_empty() || positive.iter().any(|v| hit(v));
    let negative_ok = negative.iter().all(|v| !hit(&v[1..]));
    positive_ok && negative_ok
}

/// Every secret the filters select, oldest first (ListSecrets sorts by CreatedDate).
fn filtered_secrets(
    call: &mut Call<'_>,
    p: &Params<'_>,
    include_deleted: bool,
) -> Result<Vec<SecretDescription>, AwsError> {
    let filters = filters(p)?;
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let request = Request::ListSecrets(ListRequest {
            deleted: Some(
                if include_deleted {
                    "include"
                } else {
                    "exclude"
                }
                .to_owned(),
            ),
            limit: Some(1000),
            next_token: next_token.take(),
            ..ListRequest::default()
        });
        match call.execute(request)? {
            Response::Secrets(page) => {
                names.extend(page.items.into_iter().map(|s| s.name.as_str().to_owned()));
                match page.next_token {
                    Some(token) => next_token = Some(token),
                    None => break,
                }
            }
            _ => return Err(unexpected(call)),
        }
    }
    let mut out = Vec::new();
    for name in names {
        let d = describe(call, &name)?;
        if filters.iter().all(|f| matches(f, &d, call)) {
            out.push(d);
        }
    }
    out.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then(a.name.as_str().cmp(b.name.as_str()))
    });
    Ok(out)
}

/// Offset tokens: opaque to clients, checked on the way back.
fn paginate<T>(
    p: &Params<'_>,
    items: Vec<T>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match p.opt_str("NextToken")? {
        None => 0,
        Some(token) => token
            .strip_prefix("coffer-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                AwsError::new(
                    "InvalidNextTokenException",
                    400,
                    "The NextToken value is not valid; start again without it.",
                )
            })?,
    };
    let end = start.saturating_add(max).min(items.len());
    let next = (end < items.len()).then(|| format!("coffer-page-{end}"));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn list_secrets(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let max = p.opt_int("MaxResults", 1, 100)?.unwrap_or(100) as usize;
    let include_deleted = p.opt_bool("IncludePlannedDeletion")?.unwrap_or(false);
    let order = p.opt_str("SortOrder")?.unwrap_or("desc");
    if order != "asc" && order != "desc" {
        return Err(p.invalid("SortOrder must be asc or desc."));
    }
    call.authorize("ListSecrets", "*")?;
    let mut listed = filtered_secrets(call, p, include_deleted)?;
    if order == "desc" {
        listed.reverse();
    }
    let (page, next) = paginate(p, listed, max)?;
    let entries: Vec<Value> = page
        .iter()
        .map(|d| description_json(call, d, true))
        .collect();
    let mut out = json!({"SecretList": entries});
    if let Some(next) = next {
        out["NextToken"] = json!(next);
    }
    Ok(out)
}

fn list_secret_version_ids(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let max = p.opt_int("MaxResults", 1, 100)?.unwrap_or(100) as usize;
    let include_deprecated = p.opt_bool("IncludeDeprecated")?.unwrap_or(false);
    let arn = target.arn.clone();
    allow(call, "ListSecretVersionIds", &target)?;
    let versions = match call.execute(Request::ListSecretVersions { name: name.clone() })? {
        Response::Versions(versions) => versions,
        _ => return Err(unexpected(call)),
    };
    let versions: Vec<_> = versions
        .into_iter()
        .filter(|v| include_deprecated || !v.labels.is_empty())
        .collect();
    let (page, next) = paginate(p, versions, max)?;
    let entries: Vec<Value> = page
        .iter()
        .map(|v| {
            json!({
                "VersionId": v.version_id.to_string(),
                "VersionStages": v.labels.iter().map(|l| aws_label(l.as_str())).collect::<Vec<_>>(),
                "CreatedDate": epoch(v.created_at),
                "KmsKeyIds": [v.key_id.to_string()],
            })
        })
        .collect();
    let mut out = json!({"Versions": entries, "ARN": arn, "Name": name});
    if let Some(next) = next {
        out["NextToken"] = json!(next);
    }
    Ok(out)
}

fn version_uuid(p: &Params<'_>, name: &str) -> Result<Option<uuid::Uuid>, AwsError> {
    p.opt_str_len(name, 32, 64)?
        .map(|v| {
            uuid::Uuid::parse_str(v).map_err(|_| {
                AwsError::new(
                    "ResourceNotFoundException",
                    400,
                    format!("Secrets Manager can't find the specified secret version: {v}"),
                )
            })
        })
        .transpose()
}

fn update_secret_version_stage(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let stage = p.str("VersionStage")?;
    if stage.is_empty() || stage.chars().count() > 256 {
        return Err(p.invalid("VersionStage must be 1 to 256 characters long."));
    }
    let move_to = version_uuid(p, "MoveToVersionId")?;
    let remove_from = version_uuid(p, "RemoveFromVersionId")?;
    let arn = target.arn.clone();
    allow(call, "UpdateSecretVersionStage", &target)?;
    call.execute(Request::UpdateVersionStage {
        name: name.clone(),
        label: engine_label(stage),
        move_to,
        remove_from,
    })?;
    Ok(json!({"ARN": arn, "Name": name}))
}

fn delete_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let window = p.opt_int("RecoveryWindowInDays", 7, 30)?;
    let force = p.opt_bool("ForceDeleteWithoutRecovery")?.unwrap_or(false);
    if force && window.is_some() {
        return Err(p.invalid(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let arn = target.arn.clone();
    allow(call, "DeleteSecret", &target)?;
    // As in AWS: a primary is deleted only after its replicas are removed (a replica's
    // own deletion is refused as a write on a replica, by the engine).
    if let Ok(d) = describe(call, &name) {
        let regions = replication::replica_region_names(&d);
        if !regions.is_empty()
            && d.replication
                .as_ref()
                .is_some_and(|r| r.primary_region.is_none())
        {
            return Err(p.invalid(format!(
                "You can't delete secret {arn} that still has replica regions [{}]. Remove them first with RemoveRegionsFromReplication.",
                regions.join(", ")
            )));
        }
    }
    let recovery_window_days = if force {
        None
    } else {
        Some(window.unwrap_or(30) as u32)
    };
    match call.execute(Request::DeleteSecret {
        name: name.clone(),
        recovery_window_days,
    })? {
        Response::Deleted { purge_at } => {
            let at = purge_at
                .and_then(|t| {
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(time::OffsetDateTime::now_utc);
            Ok(
                json!({"ARN": arn, "Name": name, "DeletionDate": at.unix_timestamp_nanos() as f64 / 1e9}),
            )
        }
        _ => Err(unexpected(call)),
    }
}

fn restore_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let arn = target.arn.clone();
    allow(call, "RestoreSecret", &target)?;
    call.execute(Request::RestoreSecret { name: name.clone() })?;
    Ok(json!({"ARN": arn, "Name": name}))
}

fn tag_resource(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    if !p.has("Tags") {
        return Err(p.invalid("Tags is required."));
    }
    let tags = tags(p, "Tags")?;
    allow(call, "TagResource", &target)?;
    call.execute(Request::TagSecret { name, tags })?;
    Ok(json!({}))
}

fn untag_resource(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let Some(keys) = p.opt_strings("TagKeys")? else {
        return Err(p.invalid("TagKeys is required."));
    };
    allow(call, "UntagResource", &target)?;
    call.execute(Request::UntagSecret { name, keys })?;
    Ok(json!({}))
}

fn get_random_password(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let options = PasswordOptions {
        length: p.opt_int("PasswordLength", 1, 4096)?.unwrap_or(32) as usize,
        exclude_characters: p
            .opt_str_len("ExcludeCharacters", 0, 4096)?
            .unwrap_or_default()
            .to_owned(),
        exclude_numbers: p.opt_bool("ExcludeNumbers")?.unwrap_or(false),
        exclude_punctuation: p.opt_bool("ExcludePunctuation")?.unwrap_or(false),
        exclude_uppercase: p.opt_bool("ExcludeUppercase")?.unwrap_or(false),
        exclude_lowercase: p.opt_bool("ExcludeLowercase")?.unwrap_or(false),
        include_space: p.opt_bool("IncludeSpace")?.unwrap_or(false),
        require_each_included_type: p.opt_bool("RequireEachIncludedType")?.unwrap_or(true),
    };
    call.authorize("GetRandomPassword", "*")?;
    let password = coffer_core::password::generate_password(&options)
        .map_err(|e| crate::engine_errors::aws_error(call.service, &e))?;
    Ok(json!({"RandomPassword": password.as_str()}))
}

fn rotate_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    if p.has("RotationLambdaARN") {
        return Err(p.invalid(
            "Coffer runs no Lambda functions: configure a Coffer rotator for this secret instead (`coffer secret rotate NAME --rotator generate|command|postgres --no-rotate-immediately`), then call RotateSecret without RotationLambdaARN.",
        ));
    }
    let rules = p.opt_object("RotationRules")?;
    let immediately = p.opt_bool("RotateImmediately")?.unwrap_or(true);
    let arn = target.arn.clone();
    allow(call, "RotateSecret", &target)?;
    if let Some(rules) = rules {
        let rules = Params::new(rules, call.service);
        let days = rules.opt_int("AutomaticallyAfterDays", 1, 1000)?;
        let expression = rules.opt_str_len("ScheduleExpression", 1, 256)?;
        let window = rules.opt_str_len("Duration", 2, 3)?;
        let schedule = match (days, expression) {
            (Some(_), Some(_)) => {
                return Err(p.invalid(
                    "You can't specify both AutomaticallyAfterDays and ScheduleExpression.",
                ))
            }
            (Some(days), None) => Some(format!("rate({days} days)")),
            (None, Some(e)) => Some(e.to_owned()),
            (None, None) => None,
        };
        let current = match call.execute(Request::RotationStatus { name: name.clone() }) {
            Ok(Response::Rotation(info)) => info,
            _ => {
                return Err(AwsError::new(
                    "InvalidRequestException",
                    400,
                    "This secret has no rotator; configure one first with `coffer secret rotate NAME --rotator generate|command|postgres --no-rotate-immediately`, since Coffer runs no Lambda functions.",
                ))
            }
        };
        let settings = coffer_core::rotation::RotationSettings {
            schedule,
            window: window.map(str::to_owned),
            rotator: current.rotator.clone(),
        };
        call.execute(Request::ConfigureRotation {
            name: name.clone(),
            settings,
        })?;
    }
    let mut out = json!({"ARN": arn, "Name": name});
    if immediately {
        if let Response::Rotated(outcome) = call.execute(Request::RotateSecret {
            name,
            stop_after: None,
        })? {
            if let Some(id) = outcome.version_id {
                out["VersionId"] = json!(id.to_string());
            }
        }
    }
    Ok(out)
}

fn cancel_rotate_secret(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let arn = target.arn.clone();
    allow(call, "CancelRotateSecret", &target)?;
    call.execute(Request::CancelRotation { name: name.clone() })?;
    Ok(json!({"ARN": arn, "Name": name}))
}

fn validate_resource_policy(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let policy = p.str("ResourcePolicy")?;
    if policy.is_empty() || policy.len() > 20_480 {
        return Err(p.invalid("ResourcePolicy must be 1 to 20480 characters long."));
    }
    call.authorize("ValidateResourcePolicy", "*")?;
    let findings = resource_policy_findings(policy);
    let errors: Vec<Value> = findings
        .iter()
        .filter(|f| f.severity == coffer_aws::policy::Severity::Error)
        .map(|f| json!({"CheckName": f.code, "ErrorMessage": f.message}))
        .collect();
    Ok(json!({"PolicyValidationPassed": errors.is_empty(), "ValidationErrors": errors}))
}

/// Validation findings for a resource policy: the structural check (principals required)
/// first, then the general checks.
fn resource_policy_findings(policy: &str) -> Vec<coffer_aws::policy::Finding> {
    if let Err(error) = coffer_aws::policy::Policy::parse_resource(policy) {
        return vec![coffer_aws::policy::Finding {
            severity: coffer_aws::policy::Severity::Error,
            code: "RESOURCE_POLICY",
            path: error.path().to_owned(),
            message: error.to_string(),
        }];
    }
    coffer_aws::policy::validate(policy)
        .into_iter()
        // The general checks read it as an access-key policy, which may not name
        // principals; that finding does not apply to a resource policy.
        .filter(|f| f.code != "PARSE_ERROR")
        .collect()
}

fn get_resource_policy(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let arn = target.arn.clone();
    allow(call, "GetResourcePolicy", &target)?;
    match call.execute(Request::SecretPolicyGet { name: name.clone() })? {
        Response::SecretPolicy(policy) => {
            let mut out = json!({"ARN": arn, "Name": name});
            if let Some(policy) = policy {
                out["ResourcePolicy"] = json!(policy);
            }
            Ok(out)
        }
        _ => Err(unexpected(call)),
    }
}

fn put_resource_policy(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let policy = p.str("ResourcePolicy")?;
    if policy.is_empty() || policy.len() > 20_480 {
        return Err(p.invalid("ResourcePolicy must be 1 to 20480 characters long."));
    }
    let block_public = p.opt_bool("BlockPublicPolicy")?.unwrap_or(false);
    let arn = target.arn.clone();
    allow(call, "PutResourcePolicy", &target)?;
    match coffer_aws::policy::Policy::parse_resource(policy) {
        Err(error) => {
            return Err(AwsError::new(
                "MalformedPolicyDocumentException",
                400,
                format!("The resource policy is not valid: {error}"),
            ))
        }
        Ok(parsed) if block_public && parsed.is_public() => {
            return Err(AwsError::new(
                "PublicPolicyException",
                400,
                "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent broad access to the secret.",
            ))
        }
        Ok(_) => {}
    }
    call.execute(Request::SecretPolicyPut {
        name: name.clone(),
        policy: policy.to_owned(),
        block_public,
    })?;
    Ok(json!({"ARN": arn, "Name": name}))
}

fn delete_resource_policy(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let name = target.name.clone();
    let arn = target.arn.clone();
    allow(call, "DeleteResourcePolicy", &target)?;
    call.execute(Request::SecretPolicyDelete { name: name.clone() })?;
    Ok(json!({"ARN": arn, "Name": name}))
}
