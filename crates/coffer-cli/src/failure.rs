//! Turning errors into one sentence on stderr and an exit code scripts can branch on.

use coffer_core::agent::AgentError;
use coffer_core::Error;

/// Exit codes, documented in the README and `coffer --help`.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const AUTH: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const TAMPERED: u8 = 6;
    pub const TPM_UNAVAILABLE: u8 = 7;
    pub const BUSY: u8 = 8;
}

#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: exit::USAGE,
        }
    }

    /// An error reported by the engine, here or in the agent, by its code.
    pub fn engine(code: &str, message: String) -> Self {
        Failure {
            message,
            code: exit_code(code),
        }
    }
}

/// The exit code for an engine error code (`coffer_core::Error::code`).
fn exit_code(code: &str) -> u8 {
    match code {
        "tpm_unreachable" => exit::TPM_UNAVAILABLE,
        "wrong_pin" | "tpm_lockout" | "pcr_mismatch" | "foreign_tpm" | "locked"
        | "recovery_code" | "forbidden" => exit::AUTH,
        "vault_busy" | "tpm_busy" => exit::BUSY,
        "vault_not_found" | "secret_not_found" | "version_not_found" | "label_not_found"
        | "key_not_found" | "region_not_found" | "team_not_found" => exit::NOT_FOUND,
        "vault_exists" | "secret_exists" | "secret_deleted" | "secret_not_deleted"
        | "label_conflict" | "token_reused" | "key_unavailable" | "key_conflict"
        | "region_conflict" | "replica_read_only" | "team_conflict" => exit::CONFLICT,
        "tampered" | "audit_tampered" | "ciphertext_invalid" | "vault_corrupt" | "rollback"
        | "peer_untrusted" => exit::TAMPERED,
        "invalid_argument" | "value_too_large" | "empty_value" => exit::USAGE,
        _ => exit::FAILURE,
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::engine(error.code(), error.to_string())
    }
}

impl From<coffer_core::tpm::TpmError> for Failure {
    fn from(error: coffer_core::tpm::TpmError) -> Self {
        Error::from(error).into()
    }
}

impl From<coffer_core::names::NameError> for Failure {
    fn from(error: coffer_core::names::NameError) -> Self {
        Error::from(error).into()
    }
}

impl From<AgentError> for Failure {
    fn from(error: AgentError) -> Self {
        match error {
            AgentError::Remote { code, message } => Failure::engine(&code, message),
            other => Failure {
                message: other.to_string(),
                code: exit::FAILURE,
            },
        }
    }
}
