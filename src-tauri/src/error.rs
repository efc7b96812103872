//! The one error type that crosses IPC: a stable `code` the UI branches on, a message in
//! plain words (the engine's, which never contains a secret), and structured hints.

use coffer_core::rotation::RotationError;
use coffer_core::tpm::TpmError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppError {
    /// Machine-readable, e.g. `wrong_pin`, `secret_exists`, `invalid_argument`.
    pub code: String,
    /// One human sentence.
    pub message: String,
    /// The input the error is about (`"secret name"`, `"PIN"`…), so the UI can show it there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Wrong PINs the TPM still accepts, after a wrong PIN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// Seconds until the TPM accepts a PIN again, during a lockout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u32>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AppError {
            code: code.to_owned(),
            message: message.into(),
            field: None,
            attempts_left: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError {
            field: Some(field.to_owned()),
            ..AppError::new("invalid_argument", message)
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AppError::new("internal", message)
    }

    pub fn locked() -> Self {
        AppError::from(coffer_core::Error::Locked)
    }
}

impl From<coffer_core::Error> for AppError {
    fn from(error: coffer_core::Error) -> Self {
        use coffer_core::Error as E;
        let mut mapped = AppError::new(error.code(), error.to_string());
        match &error {
            E::Tpm(TpmError::WrongPin { attempts_left }) => {
                mapped.code = "wrong_pin".to_owned();
                mapped.field = Some("PIN".to_owned());
                mapped.attempts_left = *attempts_left;
            }
            E::Tpm(TpmError::Lockout { retry_after_secs }) => {
                mapped.code = "lockout".to_owned();
                mapped.field = Some("PIN".to_owned());
                mapped.retry_after_secs = *retry_after_secs;
            }
            E::Tpm(TpmError::PcrMismatch { .. }) => mapped.code = "pcr_mismatch".to_owned(),
            E::Tpm(TpmError::ForeignKey) => mapped.code = "foreign_tpm".to_owned(),
            E::Tpm(TpmError::Unreachable { .. }) => mapped.code = "tpm_unreachable".to_owned(),
            E::InvalidName(name) => mapped.field = Some(name.what.to_owned()),
            E::InvalidArgument { what, .. } => mapped.field = Some((*what).to_owned()),
            E::PinLength { .. } | E::PinTooShortForTpm { .. } => {
                mapped.field = Some("PIN".to_owned())
            }
            E::Recovery(_) => mapped.field = Some("recovery code".to_owned()),
            E::SecretExists { .. } => mapped.field = Some("secret name".to_owned()),
            E::EmptyValue | E::ValueTooLarge { .. } => mapped.field = Some("value".to_owned()),
            E::AliasExists { .. } => mapped.field = Some("alias".to_owned()),
            E::Rotation(RotationError::InvalidConfig { .. }) => {
                mapped.field = Some("rotator".to_owned())
            }
            _ => {}
        }
        mapped
    }
}

impl From<tauri::Error> for AppError {
    fn from(error: tauri::Error) -> Self {
        AppError::internal(format!("the app failed internally: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_pin_keeps_attempts_left() {
        let error = AppError::from(coffer_core::Error::Tpm(TpmError::WrongPin {
            attempts_left: Some(2),
        }));
        assert_eq!(error.code, "wrong_pin");
        assert_eq!(error.attempts_left, Some(2));
        assert_eq!(error.field.as_deref(), Some("PIN"));
    }

    #[test]
    fn lockout_carries_the_wait() {
        let error = AppError::from(coffer_core::Error::Tpm(TpmError::Lockout {
            retry_after_secs: Some(600),
        }));
        assert_eq!(error.code, "lockout");
        assert_eq!(error.retry_after_secs, Some(600));
    }

    #[test]
    fn a_bad_rotator_is_shown_at_the_rotator_field() {
        let error = AppError::from(coffer_core::Error::Rotation(RotationError::InvalidConfig {
            reason: "the step timeout must be 1 to 3600 seconds".into(),
        }));
        assert_eq!(error.code, "invalid_argument");
        assert_eq!(error.field.as_deref(), Some("rotator"));
        assert!(error.message.contains("3600"), "{}", error.message);
    }

    #[test]
    fn engine_codes_pass_through() {
        let error = AppError::from(coffer_core::Error::Locked);
        assert_eq!(error.code, "locked");
        assert!(!error.message.is_empty());
        let json = serde_json::to_value(&error).unwrap();
        assert!(json.get("attempts_left").is_none());
    }
}
