//! AWS JSON 1.1 error responses.
//!
//! The AWS SDKs turn a failed JSON 1.1 call into a typed exception by reading
//! the error code from the `x-amzn-ErrorType` header or, failing that, from the
//! `__type` member of the body. Both are emitted so that every SDK generation
//! (including ones that only read one of them) maps Coffer's failures to the
//! same exception class it would get from AWS.

use serde::Serialize;

/// Content type of every AWS JSON 1.1 response, errors included.
pub const CONTENT_TYPE_JSON_1_1: &str = "application/x-amz-json-1.1";

/// Header the SDKs read the error code from first.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// An error as AWS reports it: an error code (the SDK exception name), an HTTP
/// status and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    code: String,
    status: u16,
    message: String,
}

/// A rendered error response: what an HTTP layer writes to the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedError {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (name, value), in the order to send them.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body `{"__type": ..., "message": ...}`.
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    message: &'a str,
}

impl AwsError {
    /// An error with the given AWS error code, HTTP status and message.
    ///
    /// Codes are the bare shape names (`InvalidSignatureException`), which is
    /// what every SDK matches on.
    pub fn new(code: impl Into<String>, status: u16, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            status,
            message: message.into(),
        }
    }

    /// `AccessDeniedException` (400 in the JSON services) for a request a
    /// policy refused, worded as IAM words it so that users recognise
    /// whether a Deny or a missing Allow is to blame.
    pub fn access_denied(
        principal: &str,
        action: &str,
        resource: &str,
        explicit_deny: bool,
    ) -> Self {
        let why = if explicit_deny {
            "with an explicit deny in an identity-based policy".to_string()
        } else {
            format!("because no identity-based policy allows the {action} action")
        };
        Self::new(
            "AccessDeniedException",
            400,
            format!("User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"),
        )
    }

    /// The AWS error code (the SDK exception name).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The HTTP status code AWS uses for this error.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body alone, `{"__type":"<code>","message":"<message>"}`.
    pub fn body_json(&self) -> Vec<u8> {
        let body = Body {
            kind: &self.code,
            message: &self.message,
        };
        // Serialising two strings into a Vec cannot fail; fall back to a fixed
        // body rather than panic if serde_json ever says otherwise.
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"__type":"InternalFailure","message":"error rendering failed"}"#.to_vec()
        })
    }

    /// The complete response: status, `x-amzn-ErrorType`, content type and
    /// the JSON body.
    pub fn render(&self) -> RenderedError {
        RenderedError {
            status: self.status,
            headers: vec![
                (ERROR_TYPE_HEADER, self.code.clone()),
                ("Content-Type", CONTENT_TYPE_JSON_1_1.to_string()),
            ],
            body: self.body_json(),
        }
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_json_1_1_shape_with_header_and_status() {
        let e = AwsError::new(
            "UnrecognizedClientException",
            400,
            "The security token included in the request is invalid.",
        );
        let r = e.render();
        assert_eq!(r.status, 400);
        assert_eq!(
            r.headers,
            vec![
                (
                    "x-amzn-ErrorType",
                    "UnrecognizedClientException".to_string()
                ),
                ("Content-Type", "application/x-amz-json-1.1".to_string()),
            ]
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["__type"], "UnrecognizedClientException");
        assert_eq!(
            v["message"],
            "The security token included in the request is invalid."
        );
        assert_eq!(v.as_object().unwrap().len(), 2);
    }

    #[test]
    fn access_denied_says_which_kind_of_deny() {
        let e = AwsError::access_denied(
            "AKIDEXAMPLE",
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:0:key/k",
            false,
        );
        assert_eq!((e.code(), e.status()), ("AccessDeniedException", 400));
        assert_eq!(e.message(), "User: AKIDEXAMPLE is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:0:key/k because no identity-based policy allows the kms:Decrypt action");
        let e = AwsError::access_denied("AKIDEXAMPLE", "kms:Decrypt", "*", true);
        assert!(e
            .message()
            .ends_with("with an explicit deny in an identity-based policy"));
    }

    #[test]
    fn escapes_message_content() {
        let e = AwsError::new("X", 400, "quote \" and newline\n and \\");
        let v: serde_json::Value = serde_json::from_slice(&e.body_json()).unwrap();
        assert_eq!(v["message"], "quote \" and newline\n and \\");
    }
}
