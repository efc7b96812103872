//! The engine's errors as each service's AWS error codes. The message is the engine's
//! own sentence (what went wrong and how to fix it); only the code is AWS's, so that an
//! SDK raises the exception class a program written against AWS already handles.

use coffer_aws::AwsError;
use coffer_core::Error;

use crate::call::Service;

pub fn aws_error(service: Service, error: &Error) -> AwsError {
    if let (
        Service::SecretsManager,
        Error::ReplicaReadOnly {
            name,
            primary_region,
        },
    ) = (service, error)
    {
        return crate::replication::replica_read_only(name, primary_region);
    }
    let message = error.to_string();
    let (code, status) = match service {
        Service::SecretsManager => secrets_manager_code(error),
        Service::Kms => kms_code(error),
    };
    AwsError::new(code, status, message)
}

fn secrets_manager_code(error: &Error) -> (&'static str, u16) {
    match error.code() {
        "secret_not_found" | "version_not_found" | "label_not_found" | "key_not_found" => {
            ("ResourceNotFoundException", 400)
        }
        "secret_exists" | "token_reused" => ("ResourceExistsException", 400),
        "region_not_found" => ("ResourceNotFoundException", 400),
        "region_conflict" => ("InvalidRequestException", 400),
        "secret_deleted" | "secret_not_deleted" | "locked" | "key_unavailable" | "key_conflict" => {
            ("InvalidRequestException", 400)
        }
        "invalid_argument" | "label_conflict" | "empty_value" => ("InvalidParameterException", 400),
        "value_too_large" => ("InvalidParameterException", 400),
        "vault_busy" => ("InternalServiceError", 500),
        _ => ("InternalServiceError", 500),
    }
}

fn kms_code(error: &Error) -> (&'static str, u16) {
    match (error, error.code()) {
        (Error::KeyDisabled { .. }, _) => ("DisabledException", 400),
        (Error::KeyPendingDeletion { .. }, _) => ("KMSInvalidStateException", 400),
        (Error::AliasExists { .. }, _) => ("AlreadyExistsException", 400),
        (_, "key_not_found") => ("NotFoundException", 400),
        (_, "ciphertext_invalid") => ("InvalidCiphertextException", 400),
        (_, "key_unavailable") => ("KMSInvalidStateException", 400),
        (_, "key_conflict") | (_, "locked") => ("KMSInvalidStateException", 400),
        (_, "invalid_argument") => ("ValidationException", 400),
        _ => ("KMSInternalException", 500),
    }
}
