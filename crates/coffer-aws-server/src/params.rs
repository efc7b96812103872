//! Reading an operation's JSON input with AWS's two kinds of refusal: a member of the
//! wrong JSON type is a `SerializationException` (the SDKs never send one), a value that
//! breaks a documented constraint is the service's validation error.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use coffer_aws::AwsError;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::call::Service;

pub struct Params<'a> {
    map: &'a Map<String, Value>,
    service: Service,
}

fn wrong_type(name: &str, expected: &str) -> AwsError {
    AwsError::new(
        "SerializationException",
        400,
        format!("{name} must be {expected}."),
    )
}

impl<'a> Params<'a> {
    pub fn new(map: &'a Map<String, Value>, service: Service) -> Self {
        Params { map, service }
    }

    pub fn invalid(&self, message: impl Into<String>) -> AwsError {
        AwsError::new(self.service.invalid_parameter_code(), 400, message)
    }

    fn missing(&self, name: &str) -> AwsError {
        match self.service {
            Service::SecretsManager => AwsError::new(
                "InvalidParameterException",
                400,
                format!("{name} is required."),
            ),
            Service::Kms => AwsError::new(
                "ValidationException",
                400,
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name)),
            ),
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    pub fn str(&self, name: &str) -> Result<&'a str, AwsError> {
        self.opt_str(name)?.ok_or_else(|| self.missing(name))
    }

    /// A string whose length must be within `min..=max` characters.
    pub fn opt_str_len(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<&'a str>, AwsError> {
        let value = self.opt_str(name)?;
        if let Some(v) = value {
            let len = v.chars().count();
            if len < min || len > max {
                return Err(self.invalid(format!("{name} must be {min} to {max} characters long.")));
            }
        }
        Ok(value)
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    /// An integer that must lie within `min..=max`.
    pub fn opt_int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let v = n.as_i64().ok_or_else(|| wrong_type(name, "an integer"))?;
                if v < min || v > max {
                    Err(self.invalid(format!(
                        "{name} must be between {min} and {max}; it was {v}."
                    )))
                } else {
                    Ok(Some(v))
                }
            }
            Some(_) => Err(wrong_type(name, "an integer")),
        }
    }

    /// A base64 blob member, decoded.
    pub fn opt_blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, AwsError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => BASE64
                .decode(text)
                .map(|b| Some(Zeroizing::new(b)))
                .map_err(|_| wrong_type(name, "base64-encoded binary data")),
        }
    }

    pub fn opt_array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(name, "a list")),
        }
    }

    /// A list of strings.
    pub fn opt_strings(&self, name: &str) -> Result<Option<Vec<String>>, AwsError> {
        self.opt_array(name)?
            .map(|items| {
                items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| wrong_type(name, "a list of strings"))
                    })
                    .collect()
            })
            .transpose()
    }

    pub fn opt_object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(wrong_type(name, "an object")),
        }
    }

    /// A map of strings to strings (KMS encryption contexts).
    pub fn string_map(
        &self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(object) = self.opt_object(name)? {
            for (k, v) in object {
                let v = v
                    .as_str()
                    .ok_or_else(|| wrong_type(name, "a map of strings"))?;
                out.insert(k.clone(), v.to_owned());
            }
        }
        Ok(out)
    }
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Seconds since the epoch, as the JSON protocols write timestamps.
pub fn epoch(timestamp: coffer_core::Timestamp) -> Value {
    serde_json::json!(timestamp.millis() as f64 / 1000.0)
}
