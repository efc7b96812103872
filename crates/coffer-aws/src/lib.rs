//! The pure, I/O-free core of Coffer's AWS-compatible local API.
//!
//! Coffer serves a Secrets Manager / KMS compatible endpoint (AWS JSON 1.1,
//! routed by `X-Amz-Target`) so that programs built on the AWS SDKs can point
//! their endpoint at a local vault. Everything that decides *whether* such a
//! request may proceed lives here, free of sockets, clocks and storage, so that
//! it can be tested exhaustively and fuzzed:
//!
//! * [`sigv4`] checks an AWS Signature Version 4 (Authorization header or
//!   presigned query string) in full against a secret looked up by access key.
//! * [`policy`] parses, validates and evaluates IAM-like access-key policies.
//! * [`error`] renders failures in the AWS JSON 1.1 error shape that the SDKs
//!   parse into typed exceptions.
//!
//! The crate never reads the clock: the caller passes `now`, which keeps the
//! skew and expiry logic deterministic under test.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod error;
pub mod policy;
pub mod sigv4;

pub use error::AwsError;
