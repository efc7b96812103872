//! Why a request failed verification, and how AWS reports each reason.
//!
//! The variants are fine-grained so that tests (and audit logs) can tell the
//! reasons apart; [`SigV4Error::to_aws_error`] collapses them into the handful
//! of error codes the AWS JSON services actually return, with AWS's wording
//! where AWS has a well-known one, so SDK retry and clock-skew correction
//! logic (which matches on these codes and messages) behaves as against AWS.

use crate::error::AwsError;

/// The message AWS returns for a signature mismatch.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// The message AWS returns for an unknown or disabled access key.
pub const UNRECOGNIZED_CLIENT_MESSAGE: &str =
    "The security token included in the request is invalid.";

/// A SigV4 verification failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthentication,

    /// Both an `Authorization` header and presigned query parameters.
    #[error("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")]
    AmbiguousAuthentication,

    /// The `Authorization` header or presigned parameters are malformed or
    /// incomplete (missing component, bad syntax, unsupported algorithm,
    /// missing date, unsigned `host`, ...). The string is the detail.
    #[error("{0}")]
    Incomplete(String),

    /// The credential scope is well-formed but does not fit the request:
    /// scope date differs from the request date, or the region, service or
    /// terminator is not acceptable.
    #[error("{0}")]
    BadScope(String),

    /// The request date is outside the 15-minute window (header form) or the
    /// presigned URL is not yet valid. The string is AWS's wording.
    #[error("{0}")]
    SignatureExpired(String),

    /// The presigned URL's `X-Amz-Expires` window has passed.
    #[error("{0}")]
    PresignedExpired(String),

    /// No secret for the access key id (unknown or disabled key), or the
    /// request carries a session token, which Coffer never issues.
    #[error("{}", UNRECOGNIZED_CLIENT_MESSAGE)]
    UnrecognizedClient,

    /// The signature is well-formed but wrong: some signed part of the
    /// request (method, path, query, signed header, body) or the key differs.
    #[error("{}", SIGNATURE_MISMATCH_MESSAGE)]
    SignatureMismatch,

    /// The `x-amz-content-sha256` header does not match the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,

    /// The query string has invalid percent-encoding.
    #[error("The AWS query string is malformed or does not adhere to AWS standards: {0}")]
    MalformedQuery(String),

    /// A part of the request exceeds the configured bound.
    #[error("Request too large: {0}")]
    TooLarge(&'static str),
}

impl SigV4Error {
    /// The AWS error code an SDK will map to an exception class.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::AmbiguousAuthentication | Self::Incomplete(_) => "IncompleteSignatureException",
            Self::BadScope(_)
            | Self::SignatureExpired(_)
            | Self::PresignedExpired(_)
            | Self::SignatureMismatch => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            Self::MalformedQuery(_) => "InvalidQueryParameter",
            Self::TooLarge(_) => "RequestEntityTooLarge",
        }
    }

    /// The HTTP status AWS JSON 1.1 services use for this error.
    ///
    /// JSON services answer authentication failures with 400 (unlike the
    /// query protocol's 403); only an oversized request gets 413.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooLarge(_) => 413,
            _ => 400,
        }
    }

    /// The AWS-shaped error for this failure.
    pub fn to_aws_error(&self) -> AwsError {
        AwsError::new(self.aws_code(), self.http_status(), self.to_string())
    }
}

impl From<&SigV4Error> for AwsError {
    fn from(e: &SigV4Error) -> Self {
        e.to_aws_error()
    }
}

impl From<SigV4Error> for AwsError {
    fn from(e: SigV4Error) -> Self {
        e.to_aws_error()
    }
}
