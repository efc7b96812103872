//! Turning errors into one sentence on stderr and an exit code scripts can branch on.

use coffer_core::store::StoreError;
use coffer_core::tpm::TpmError;
use coffer_core::Error;

/// Exit codes, documented in the README.
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
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::Tpm(TpmError::Unreachable { .. })
            | Error::Tpm(TpmError::ConnectionLost { .. }) => exit::TPM_UNAVAILABLE,
            Error::Tpm(TpmError::WrongPin { .. })
            | Error::Tpm(TpmError::Lockout { .. })
            | Error::Tpm(TpmError::PcrMismatch { .. })
            | Error::Tpm(TpmError::ForeignKey)
            | Error::Locked
            | Error::Recovery(_) => exit::AUTH,
            Error::Store(StoreError::Busy { .. }) => exit::BUSY,
            Error::Store(StoreError::NotFound { .. })
            | Error::SecretNotFound { .. }
            | Error::VersionNotFound { .. }
            | Error::LabelNotFound { .. }
            | Error::KeyNotFound { .. } => exit::NOT_FOUND,
            Error::SecretExists { .. }
            | Error::SecretDeleted { .. }
            | Error::SecretNotDeleted { .. }
            | Error::LabelOnOtherVersion { .. }
            | Error::LabelNotOnVersion { .. }
            | Error::CurrentCannotBeRemoved
            | Error::TokenReused { .. }
            | Error::KeyDisabled { .. }
            | Error::KeyPendingDeletion { .. }
            | Error::DefaultKeyProtected
            | Error::KeyInUse { .. }
            | Error::AliasExists { .. }
            | Error::Store(StoreError::AlreadyExists { .. }) => exit::CONFLICT,
            Error::Tampered { .. }
            | Error::KeyTampered { .. }
            | Error::AuditTampered { .. }
            | Error::CiphertextInvalid
            | Error::Store(StoreError::Corrupt { .. }) => exit::TAMPERED,
            Error::InvalidName(_)
            | Error::InvalidArgument { .. }
            | Error::PinLength { .. }
            | Error::ValueTooLarge { .. }
            | Error::EmptyValue => exit::USAGE,
            _ => exit::FAILURE,
        };
        Failure {
            message: error.to_string(),
            code,
        }
    }
}

impl From<TpmError> for Failure {
    fn from(error: TpmError) -> Self {
        Error::from(error).into()
    }
}
