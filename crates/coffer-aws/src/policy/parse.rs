//! Parsing policy documents with errors that say exactly what is wrong and
//! where (`Statement[1].Action[0]`), since a policy author has to fix it by
//! hand.
//!
//! The JSON is read with duplicate keys rejected: with two `Effect` members,
//! different JSON parsers keep different ones, and a policy must mean the
//! same thing to every tool that reads it.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Effect, PatternSet, Policy, Statement, POLICY_VERSION};

/// Largest policy document accepted (the Secrets Manager resource policy
/// limit).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Why a policy document was rejected. `path` locates the problem, e.g.
/// `Statement[2].Resource[0]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not valid JSON, or a JSON object with a repeated key.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser objected to.
        message: String,
    },
    /// The document exceeds [`MAX_POLICY_BYTES`].
    #[error("policy is {len} bytes; the limit is {max}")]
    TooLarge {
        /// Document size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A required member is absent.
    #[error("{path}: missing required field '{field}'")]
    MissingField {
        /// Where.
        path: String,
        /// Which member.
        field: &'static str,
    },
    /// An IAM member this policy language deliberately does not support.
    #[error("{path}: unsupported field '{field}': {reason}")]
    UnsupportedField {
        /// Where.
        path: String,
        /// Which member.
        field: String,
        /// Why it is not supported.
        reason: &'static str,
    },
    /// A member that IAM policies do not have (often a typo).
    #[error("{path}: unknown field '{field}'")]
    UnknownField {
        /// Where.
        path: String,
        /// Which member.
        field: String,
    },
    /// Two mutually exclusive members, e.g. `Action` and `NotAction`.
    #[error("{path}: '{first}' and '{second}' cannot both be present")]
    Conflicting {
        /// Where.
        path: String,
        /// One member.
        first: &'static str,
        /// The other member.
        second: &'static str,
    },
    /// A value of the wrong JSON type or with an invalid value.
    #[error("{path}: {message}")]
    InvalidValue {
        /// Where.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl PolicyError {
    /// Where in the document the problem is (empty for whole-document
    /// problems).
    pub fn path(&self) -> &str {
        match self {
            Self::Json { .. } | Self::TooLarge { .. } => "",
            Self::MissingField { path, .. }
            | Self::UnsupportedField { path, .. }
            | Self::UnknownField { path, .. }
            | Self::Conflicting { path, .. }
            | Self::InvalidValue { path, .. } => path,
        }
    }
}

/// A JSON value read with duplicate object keys rejected.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key '{key}'")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(path: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::InvalidValue {
        path: path.to_string(),
        message: message.into(),
    }
}

fn as_object<'v>(v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, PolicyError> {
    v.as_object()
        .ok_or_else(|| invalid(path, format!("expected an object, found {}", type_name(v))))
}

fn optional_string(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, PolicyError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(
            &format!("{path}.{field}"),
            format!("expected a string, found {}", type_name(v)),
        )),
    }
}

/// Parses a policy document.
pub(crate) fn parse(json: &str) -> Result<Policy, PolicyError> {
    parse_kind(json, Kind::Identity)
}

/// Parses a resource policy: statements name principals.
pub(crate) fn parse_resource(json: &str) -> Result<Policy, PolicyError> {
    parse_kind(json, Kind::Resource)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Identity,
    Resource,
}

fn parse_kind(json: &str, kind: Kind) -> Result<Policy, PolicyError> {
    if json.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            len: json.len(),
            max: MAX_POLICY_BYTES,
        });
    }
    let Strict(doc) = serde_json::from_str(json).map_err(|e| PolicyError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let top = as_object(&doc, "Policy")?;
    for key in top.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            return Err(PolicyError::UnknownField {
                path: "Policy".into(),
                field: key.clone(),
            });
        }
    }
    match top.get("Version") {
        None => {
            return Err(PolicyError::MissingField {
                path: "Policy".into(),
                field: "Version",
            })
        }
        Some(Value::String(v)) if v == POLICY_VERSION => {}
        Some(v) => {
            return Err(invalid(
                "Version",
                format!("must be \"{POLICY_VERSION}\", found {v}"),
            ))
        }
    }
    let id = optional_string(top, "Id", "Policy")?;
    let statements = match top.get("Statement") {
        None => {
            return Err(PolicyError::MissingField {
                path: "Policy".into(),
                field: "Statement",
            })
        }
        // IAM accepts a single statement object in place of a list.
        Some(v @ Value::Object(_)) => vec![parse_statement(v, "Statement", kind)?],
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(invalid("Statement", "must contain at least one statement"))
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_statement(v, &format!("Statement[{i}]"), kind))
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(invalid(
                "Statement",
                format!(
                    "expected an object or an array of objects, found {}",
                    type_name(v)
                ),
            ))
        }
    };
    Ok(Policy { id, statements })
}

fn parse_statement(v: &Value, path: &str, kind: Kind) -> Result<Statement, PolicyError> {
    let obj = as_object(v, path)?;
    for key in obj.keys() {
        let reason = match key.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" => continue,
            "Principal" | "NotPrincipal" if kind == Kind::Resource => continue,
            "Principal" | "NotPrincipal" => {
                "access-key policies apply to the key they are attached to; principals are not supported"
            }
            "Condition" => {
                "conditions are not supported, and ignoring one would grant more than intended"
            }
            _ => {
                return Err(PolicyError::UnknownField {
                    path: path.to_string(),
                    field: key.clone(),
                })
            }
        };
        return Err(PolicyError::UnsupportedField {
            path: path.to_string(),
            field: key.clone(),
            reason,
        });
    }
    let sid = optional_string(obj, "Sid", path)?;
    let effect = match obj.get("Effect") {
        None => {
            return Err(PolicyError::MissingField {
                path: path.to_string(),
                field: "Effect",
            })
        }
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(v) => {
            return Err(invalid(
                &format!("{path}.Effect"),
                format!("must be \"Allow\" or \"Deny\", found {v}"),
            ))
        }
    };
    let actions = pattern_set(obj, path, "Action", "NotAction", check_action)?;
    let resources = pattern_set(obj, path, "Resource", "NotResource", check_resource)?;
    let principals = match kind {
        Kind::Identity => None,
        Kind::Resource => Some(principal_set(obj, path)?),
    };
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        principals,
    })
}

/// `Principal`/`NotPrincipal`: `"*"`, or `{"AWS": "*" | ARN | account id | [...]}`.
fn principal_set(obj: &Map<String, Value>, path: &str) -> Result<PatternSet, PolicyError> {
    type Make = fn(Vec<String>) -> PatternSet;
    let (field, value, make): (&str, &Value, Make) =
        match (obj.get("Principal"), obj.get("NotPrincipal")) {
            (Some(_), Some(_)) => {
                return Err(PolicyError::Conflicting {
                    path: path.to_string(),
                    first: "Principal",
                    second: "NotPrincipal",
                })
            }
            (Some(v), None) => ("Principal", v, PatternSet::Any),
            (None, Some(v)) => ("NotPrincipal", v, PatternSet::NoneOf),
            (None, None) => {
                return Err(PolicyError::MissingField {
                    path: path.to_string(),
                    field: "Principal",
                })
            }
        };
    let at = format!("{path}.{field}");
    let values: Vec<String> = match value {
        Value::String(s) if s == "*" => vec!["*".to_owned()],
        Value::Object(map) => {
            let mut out = Vec::new();
            for (kind, v) in map {
                if kind != "AWS" {
                    return Err(PolicyError::UnsupportedField {
                        path: at.clone(),
                        field: kind.clone(),
                        reason: "only AWS principals (access keys of this vault, as IAM user ARNs or the account) exist in Coffer",
                    });
                }
                match v {
                    Value::String(s) => out.push(s.clone()),
                    Value::Array(items) if !items.is_empty() => {
                        for item in items {
                            match item {
                                Value::String(s) => out.push(s.clone()),
                                other => {
                                    return Err(invalid(
                                        &at,
                                        format!("expected strings, found {}", type_name(other)),
                                    ))
                                }
                            }
                        }
                    }
                    other => {
                        return Err(invalid(
                            &at,
                            format!(
                                "expected a string or a non-empty array, found {}",
                                type_name(other)
                            ),
                        ))
                    }
                }
            }
            out
        }
        other => {
            return Err(invalid(
                &at,
                format!(
                    "expected \"*\" or {{\"AWS\": ...}}, found {}",
                    type_name(other)
                ),
            ))
        }
    };
    if values.is_empty() {
        return Err(invalid(&at, "names no principal"));
    }
    for v in &values {
        let account = v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit());
        if !(v == "*" || account || v.starts_with("arn:aws:iam::")) {
            return Err(invalid(
                &at,
                format!("'{v}' is not a principal: use \"*\", an account id or arn:aws:iam::ACCOUNT:user/NAME"),
            ));
        }
    }
    Ok(make(values))
}

fn pattern_set(
    obj: &Map<String, Value>,
    path: &str,
    direct: &'static str,
    negated: &'static str,
    check: fn(&str) -> Result<(), String>,
) -> Result<PatternSet, PolicyError> {
    type Make = fn(Vec<String>) -> PatternSet;
    let (field, value, make): (&str, &Value, Make) = match (obj.get(direct), obj.get(negated)) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::Conflicting {
                path: path.to_string(),
                first: direct,
                second: negated,
            })
        }
        (Some(v), None) => (direct, v, PatternSet::Any),
        (None, Some(v)) => (negated, v, PatternSet::NoneOf),
        (None, None) => {
            return Err(PolicyError::MissingField {
                path: path.to_string(),
                field: direct,
            })
        }
    };
    let field_path = format!("{path}.{field}");
    let items: Vec<(String, &Value)> = match value {
        Value::String(_) => vec![(field_path.clone(), value)],
        Value::Array(a) if a.is_empty() => {
            return Err(invalid(&field_path, "must not be an empty list"))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{field_path}[{i}]"), v))
            .collect(),
        v => {
            return Err(invalid(
                &field_path,
                format!(
                    "expected a string or an array of strings, found {}",
                    type_name(v)
                ),
            ))
        }
    };
    let mut patterns = Vec::with_capacity(items.len());
    for (item_path, v) in items {
        let Value::String(s) = v else {
            return Err(invalid(
                &item_path,
                format!("expected a string, found {}", type_name(v)),
            ));
        };
        check(s).map_err(|m| invalid(&item_path, m))?;
        patterns.push(s.clone());
    }
    Ok(make(patterns))
}

/// `*`, or `service:Action`: a service prefix of letters, digits and `-`
/// and an action of letters, digits and wildcards (IAM compares both
/// case-insensitively).
fn check_action(a: &str) -> Result<(), String> {
    if a == "*" {
        return Ok(());
    }
    let ok = a.split_once(':').is_some_and(|(service, name)| {
        !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{a}' is not an action: expected '*' or 'service:ActionName' such as 'secretsmanager:GetSecretValue'"
        ))
    }
}

/// `*`, or an ARN `arn:partition:service:region:account:resource` (any part
/// may hold wildcards; the resource part may itself contain `:`).
fn check_resource(r: &str) -> Result<(), String> {
    if r == "*" {
        return Ok(());
    }
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && !parts[2].is_empty()
        && !parts[5].is_empty()
        && !r.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{r}' is not a resource: expected '*' or an ARN 'arn:partition:service:region:account:resource'"
        ))
    }
}
