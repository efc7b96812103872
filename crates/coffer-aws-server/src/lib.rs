//! Coffer's AWS-compatible local API: the Secrets Manager and KMS (`TrentService`)
//! operations in the AWS JSON 1.1 protocol, on one port routed by `X-Amz-Target`, for
//! programs written against the AWS SDKs.
//!
//! Every request is checked in full with SigV4 ([`coffer_aws::sigv4`]) against an access
//! key the vault keeps sealed, then authorized by that key's IAM-like policy
//! ([`coffer_aws::policy`]), and only then mapped onto the engine's own requests
//! ([`coffer_core::service`]): this crate adds the wire format and AWS's parameter names,
//! never a vault rule of its own. It is a library so that the daemon and the desktop app
//! serve the same thing.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod arn;
mod call;
mod dispatch;
mod engine_errors;
mod kms;
mod listener;
mod params;
mod replication;
mod secret_body;
mod secrets_manager;
pub mod tls;

pub use dispatch::{Incoming, Outgoing};
pub use listener::{AwsListener, ListenError, Log, ServedVault, SessionVault, SharedVault};
