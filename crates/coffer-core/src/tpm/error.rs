//! What can go wrong talking to the TPM, and how raw TSS response codes map onto it.
//!
//! Every message is one sentence that says what happened and what to do about it. None of them
//! contains a PIN, an auth value or key material: the variants carry no such data.

use std::fmt;

use super::pcr::PcrBinding;

/// An error from [`Tpm`](super::Tpm) or from decoding a stored sealed key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    /// No TPM could be opened at the TCTI (missing device, no permission, nothing listening,
    /// or an unparsable TCTI string).
    #[error(
        "cannot reach a TPM at \"{tcti}\" ({reason}); set COFFER_TCTI to where your TPM is \
         (for a software TPM something like `swtpm:host=127.0.0.1,port=2321`) or make sure /dev/tpmrm0 \
         exists and your user may open it (usually by joining the `tss` group)"
    )]
    Unreachable {
        /// The TCTI string that was tried.
        tcti: String,
        /// Why it failed, as the TSS reported it.
        reason: String,
    },

    /// Something accepted the connection at a TCP TCTI but did not answer a TPM command.
    #[error(
        "the TPM at \"{tcti}\" accepted the connection but did not answer within {millis} ms; \
         check that a TPM simulator (not some other program) listens there and is not stuck, \
         or raise COFFER_TPM_TIMEOUT_MS"
    )]
    NoAnswer { tcti: String, millis: u64 },

    /// The TPM went away in the middle of an operation (device error, simulator killed).
    #[error(
        "lost the connection to the TPM at \"{tcti}\" while trying to {operation}; check that \
         the TPM (or the swtpm process) is still running and try again"
    )]
    ConnectionLost {
        /// The TCTI string of the connection that died.
        tcti: String,
        /// What was being done.
        operation: &'static str,
    },

    /// The PIN was wrong (TPM_RC_AUTH_FAIL / TPM_RC_BAD_AUTH on the sealed key).
    #[error("{}", wrong_pin_message(*.attempts_left))]
    WrongPin {
        /// Wrong PINs the TPM still accepts before it locks out (TPM_PT_MAX_AUTH_FAIL minus
        /// TPM_PT_LOCKOUT_COUNTER, read after the failure), if the TPM told us.
        attempts_left: Option<u32>,
    },

    /// The TPM's dictionary-attack protection refuses PIN attempts for now (TPM_RC_LOCKOUT, or
    /// the wrong PIN that just used up the last attempt).
    #[error(
        "the TPM is refusing PIN attempts after too many wrong PINs; wait {} and try again, or \
         unlock with `coffer recover` and your recovery key",
        wait_message(*.retry_after_secs)
    )]
    Lockout {
        /// Roughly how long until the TPM accepts one more attempt (one failure is forgiven
        /// every TPM_PT_LOCKOUT_INTERVAL seconds), if the TPM told us.
        retry_after_secs: Option<u32>,
    },

    /// The key is bound to PCR values that have changed since it was sealed.
    #[error(
        "the TPM refused to unseal the vault key because the measured boot state (SHA-256 PCRs \
         {pcrs}) changed since it was sealed, as after a firmware, bootloader or Secure Boot \
         update; unlock with `coffer recover` and your recovery key, which seals the key again \
         to the current state"
    )]
    PcrMismatch {
        /// The PCRs the key is bound to.
        pcrs: PcrBinding,
    },

    /// The sealed key was made by another TPM, or this TPM was cleared since (new seeds).
    #[error(
        "this TPM cannot load the sealed vault key: it was sealed by a different TPM, or this \
         TPM has been cleared or replaced since; unlock with `coffer recover` and your recovery \
         key to seal it to this TPM"
    )]
    ForeignKey,

    /// A stored sealed-key blob does not decode.
    #[error(
        "the stored sealed vault key is malformed ({reason}); the vault database may be \
         damaged, so restore it from a backup or unlock with `coffer recover`"
    )]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },

    /// A PCR selection that is not a list of SHA-256 PCR indexes 0..=23.
    #[error(
        "invalid PCR selection \"{input}\" ({reason}); give SHA-256 PCR indexes from 0 to 23 \
         separated by commas, such as \"7\" or \"0,2,7\""
    )]
    InvalidPcr {
        /// The selection as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The owner hierarchy has an authorization value set, which Coffer does not use.
    #[error(
        "the TPM's owner hierarchy is protected by a password, so Coffer cannot create its \
         storage key; clear the owner password (with `tpm2_changeauth -c owner -p OLD`) or use \
         another TPM"
    )]
    OwnerAuthRequired,

    /// The TPM has no room for another loaded object or session (TPM_RC_OBJECT_MEMORY,
    /// TPM_RC_SESSION_MEMORY): typically another program left objects loaded on a TPM that is
    /// used without a resource manager.
    #[error(
        "the TPM has no free slots for keys or sessions while trying to {operation}; another \
         program left objects loaded, so use the kernel resource manager (`device:/dev/tpmrm0`) \
         or restart the TPM simulator"
    )]
    OutOfMemory {
        /// What was being done.
        operation: &'static str,
    },

    /// The directory that holds the TPM client lock cannot be used.
    #[error("Coffer cannot take its TPM client lock: {reason}")]
    LockDirectory { reason: String },

    /// Another Coffer process is using a TPM that serves one client at a time.
    #[error("the TPM at \"{tcti}\" is busy ({reason}); retry, or raise COFFER_BUSY_TIMEOUT_MS")]
    Busy { tcti: String, reason: String },

    /// The vault's rollback counter (a TPM NV index) is not on this TPM: the vault was made
    /// on another TPM, this one was cleared, or someone deleted the index.
    #[error(
        "this TPM has no rollback counter for this vault (NV index {index:#010x}): the vault was \
         created on another TPM, this TPM was cleared, or the index was deleted, so Coffer cannot \
         tell whether this vault file is the newest copy; if it is, run `coffer recover` with \
         your recovery code to keep it"
    )]
    NvCounterMissing { index: u32 },

    /// The NV index where the vault's counter should be belongs to something else.
    #[error(
        "the TPM's NV index {index:#010x} is not this vault's rollback counter (it was replaced \
         or belongs to another vault), so Coffer cannot tell whether this vault file is the \
         newest copy; if it is, run `coffer recover --accept-rollback` with your recovery code"
    )]
    NvCounterForeign { index: u32 },

    /// The TPM's storage primary key is not the one recorded when the vault was created.
    #[error(
        "the TPM at \"{tcti}\" presented a different storage key than the one this vault \
         recorded, so Coffer did not send it anything secret: something between Coffer and the \
         TPM may be impersonating it, or the TPM was cleared or replaced; check how the TPM is \
         connected, and if it was really cleared or replaced run `coffer recover` with your \
         recovery code"
    )]
    PrimaryMismatch { tcti: String },

    /// Every NV index Coffer may use for this vault's counter is taken.
    #[error(
        "every TPM NV index Coffer could use for this vault's rollback counter is taken; free \
         one with `tpm2_nvundefine` or use another TPM"
    )]
    NvIndexesTaken,

    /// Any other TSS or TPM failure.
    #[error(
        "the TPM failed to {operation} ({source}); try again, and if it keeps failing check the \
         TPM with `tpm2_getcap properties-variable` and report this message"
    )]
    Tss {
        /// What was being done.
        operation: &'static str,
        /// The response code from the TSS/TPM.
        #[source]
        source: TssCause,
    },
}

fn wrong_pin_message(attempts_left: Option<u32>) -> String {
    match attempts_left {
        Some(1) => "wrong PIN; one more wrong PIN will make the TPM lock out PIN entry for a \
                    while, so check it before trying again"
            .to_owned(),
        Some(n) => format!(
            "wrong PIN; {n} more wrong PINs will make the TPM lock out PIN entry for a while"
        ),
        None => "wrong PIN; check it and try again (the TPM locks out PIN entry for a while \
                 after repeated failures)"
            .to_owned(),
    }
}

fn wait_message(secs: Option<u32>) -> String {
    match secs {
        None => "until the TPM's lockout interval has passed".to_owned(),
        Some(s) if s < 120 => format!("about {s} seconds"),
        Some(s) if s < 2 * 3600 => format!("about {} minutes", s.div_ceil(60)),
        Some(s) => format!("about {} hours", s.div_ceil(3600)),
    }
}

/// The TSS/TPM failure behind [`TpmError::Tss`]: the raw `TSS2_RC` when there is one, and
/// the `tss_esapi` error when it came through that crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TssCause {
    rc: Option<u32>,
    esapi: Option<tss_esapi::Error>,
}

impl TssCause {
    pub(crate) fn from_esapi(error: tss_esapi::Error) -> Self {
        TssCause {
            rc: raw_response_code(&error),
            esapi: Some(error),
        }
    }

    pub(crate) fn from_rc(rc: u32) -> Self {
        TssCause {
            rc: Some(rc),
            esapi: None,
        }
    }

    /// The raw `TSS2_RC` (layer in bits 16..24), if the failure had one.
    pub fn response_code(&self) -> Option<u32> {
        self.rc
    }

    /// The `tss_esapi` error, if the failure came through that crate.
    pub fn esapi_error(&self) -> Option<tss_esapi::Error> {
        self.esapi
    }
}

impl fmt::Display for TssCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rc, self.esapi) {
            (Some(rc), _) => {
                write!(f, "{} response code {rc:#010x}", layer_name(rc))?;
                match RcClass::of(rc).name() {
                    Some(name) => write!(f, ", {name}"),
                    None => Ok(()),
                }
            }
            (None, Some(e)) => write!(f, "tss-esapi: {e}"),
            (None, None) => f.write_str("unknown TSS failure"),
        }
    }
}

impl std::error::Error for TssCause {}

/// The raw `TSS2_RC` inside a `tss_esapi::Error`.
///
/// tss-esapi 7 keeps the number private and its `kind()` ignores the layer bits (so TCTI and
/// ESAPI codes are misread as TPM codes), but its format-zero / format-one wrappers display as
/// "Response code value: 0x…", which is stable and is what we parse.
pub(crate) fn raw_response_code(error: &tss_esapi::Error) -> Option<u32> {
    use tss_esapi::constants::response_code::Tss2ResponseCode;
    let text = match error {
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::Success) => return Some(0),
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatZero(rc)) => rc.to_string(),
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(rc)) => rc.to_string(),
        tss_esapi::Error::WrapperError(_) => return None,
    };
    let hex = text.rsplit("0x").next()?;
    u32::from_str_radix(hex.trim(), 16).ok()
}

const LAYER_TPM: u32 = 0;
const LAYER_ESAPI: u32 = 7;
const LAYER_SYS: u32 = 8;
const LAYER_MU: u32 = 9;
const LAYER_TCTI: u32 = 10;
const LAYER_RESMGR: u32 = 11;
const LAYER_RESMGR_TPM: u32 = 12;

/// Base codes shared by the TSS software layers (tss2_common.h).
const BASE_RC_NO_CONNECTION: u32 = 8;
const BASE_RC_IO_ERROR: u32 = 10;

fn layer_name(rc: u32) -> &'static str {
    match (rc >> 16) & 0xff {
        LAYER_TPM => "TPM",
        LAYER_ESAPI => "ESAPI",
        LAYER_SYS => "SAPI",
        LAYER_MU => "marshalling",
        LAYER_TCTI => "TCTI",
        LAYER_RESMGR => "resource manager",
        LAYER_RESMGR_TPM => "resource manager (TPM)",
        _ => "TSS",
    }
}

/// The response codes this module reacts to. Anything else is [`RcClass::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RcClass {
    /// TPM_RC_AUTH_FAIL: wrong auth on a DA-protected entity (counts towards lockout).
    AuthFail,
    /// TPM_RC_BAD_AUTH: wrong auth on an entity without DA protection.
    BadAuth,
    /// TPM_RC_LOCKOUT.
    Lockout,
    /// TPM_RC_POLICY_FAIL: the policy session's digest does not match the object's policy.
    PolicyFail,
    /// TPM_RC_PCR_CHANGED: PCRs changed between PolicyPCR and the command.
    PcrChanged,
    /// TPM_RC_INTEGRITY or TPM_RC_BINDING on a load: the blob is not this TPM's.
    Integrity,
    /// TPM_RC_OBJECT_MEMORY / TPM_RC_SESSION_MEMORY / TPM_RC_MEMORY.
    OutOfMemory,
    /// TPM_RC_INITIALIZE: TPM2_Startup has not been run.
    Initialize,
    /// The transport failed (TCTI I/O error or no connection).
    Connection,
    /// Anything else.
    Other,
}

impl RcClass {
    /// Classifies a raw `TSS2_RC`, honouring the layer and the TPM's two response formats
    /// (format-one codes carry a handle, session or parameter index in bits 6..12).
    pub(crate) fn of(rc: u32) -> RcClass {
        let layer = (rc >> 16) & 0xff;
        let code = rc & 0xffff;
        match layer {
            LAYER_TPM | LAYER_RESMGR_TPM => Self::of_tpm(code),
            LAYER_TCTI | LAYER_ESAPI | LAYER_SYS
                if matches!(code, BASE_RC_NO_CONNECTION | BASE_RC_IO_ERROR) =>
            {
                RcClass::Connection
            }
            _ => RcClass::Other,
        }
    }

    fn of_tpm(code: u32) -> RcClass {
        const RC_FMT1: u32 = 0x080;
        const RC_VER1: u32 = 0x100;
        const RC_VENDOR: u32 = 0x400;
        const RC_WARN: u32 = 0x800;
        if code & RC_FMT1 != 0 {
            // Format one: error number in bits 0..6; bits 6..12 say which handle, session or
            // parameter it is about, which does not matter here.
            return match code & 0x3f {
                0x0e => RcClass::AuthFail,
                0x22 => RcClass::BadAuth,
                0x1d => RcClass::PolicyFail,
                0x1f | 0x25 => RcClass::Integrity,
                _ => RcClass::Other,
            };
        }
        if code & RC_VER1 == 0 || code & RC_VENDOR != 0 {
            // TPM 1.2 style or vendor-defined.
            return RcClass::Other;
        }
        let number = code & 0x7f;
        if code & RC_WARN != 0 {
            match number {
                0x21 => RcClass::Lockout,
                0x02..=0x04 => RcClass::OutOfMemory,
                _ => RcClass::Other,
            }
        } else {
            match number {
                0x00 => RcClass::Initialize,
                0x28 => RcClass::PcrChanged,
                _ => RcClass::Other,
            }
        }
    }

    /// Classifies a `tss_esapi` error (wrapper errors are [`RcClass::Other`]).
    pub(crate) fn of_esapi(error: &tss_esapi::Error) -> RcClass {
        raw_response_code(error).map_or(RcClass::Other, RcClass::of)
    }

    fn name(self) -> Option<&'static str> {
        match self {
            RcClass::AuthFail => Some("TPM_RC_AUTH_FAIL"),
            RcClass::BadAuth => Some("TPM_RC_BAD_AUTH"),
            RcClass::Lockout => Some("TPM_RC_LOCKOUT"),
            RcClass::PolicyFail => Some("TPM_RC_POLICY_FAIL"),
            RcClass::PcrChanged => Some("TPM_RC_PCR_CHANGED"),
            RcClass::Integrity => Some("TPM_RC_INTEGRITY"),
            RcClass::OutOfMemory => Some("out of TPM memory"),
            RcClass::Initialize => Some("TPM_RC_INITIALIZE (TPM not started)"),
            RcClass::Connection => Some("connection failed"),
            RcClass::Other => None,
        }
    }
}

/// Maps an error that has no special meaning for the operation: connection loss and full
/// TPM memory get their own variants, the rest is [`TpmError::Tss`].
pub(crate) fn generic(tcti: &str, operation: &'static str, error: tss_esapi::Error) -> TpmError {
    match RcClass::of_esapi(&error) {
        RcClass::Connection => TpmError::ConnectionLost {
            tcti: tcti.to_owned(),
            operation,
        },
        RcClass::OutOfMemory => TpmError::OutOfMemory { operation },
        _ => TpmError::Tss {
            operation,
            source: TssCause::from_esapi(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_format_one_codes_whatever_their_index() {
        // TPM_RC_AUTH_FAIL on session 1, on session 2, and bare.
        assert_eq!(RcClass::of(0x98e), RcClass::AuthFail);
        assert_eq!(RcClass::of(0xa8e), RcClass::AuthFail);
        assert_eq!(RcClass::of(0x08e), RcClass::AuthFail);
        // TPM_RC_BAD_AUTH on session 1.
        assert_eq!(RcClass::of(0x9a2), RcClass::BadAuth);
        // TPM_RC_POLICY_FAIL on session 1.
        assert_eq!(RcClass::of(0x99d), RcClass::PolicyFail);
        // TPM_RC_INTEGRITY on parameter 1 (Load's inPrivate), and TPM_RC_BINDING.
        assert_eq!(RcClass::of(0x1df), RcClass::Integrity);
        assert_eq!(RcClass::of(0x2e5), RcClass::Integrity);
        // TPM_RC_VALUE on parameter 1 is nothing special.
        assert_eq!(RcClass::of(0x1c4), RcClass::Other);
    }

    #[test]
    fn classifies_format_zero_codes() {
        assert_eq!(RcClass::of(0x921), RcClass::Lockout);
        assert_eq!(RcClass::of(0x902), RcClass::OutOfMemory);
        assert_eq!(RcClass::of(0x903), RcClass::OutOfMemory);
        assert_eq!(RcClass::of(0x128), RcClass::PcrChanged);
        assert_eq!(RcClass::of(0x100), RcClass::Initialize);
        // A TPM 1.2-style code and a vendor code.
        assert_eq!(RcClass::of(0x021), RcClass::Other);
        assert_eq!(RcClass::of(0x521), RcClass::Other);
    }

    #[test]
    fn honours_layers() {
        // TSS2_TCTI_RC_IO_ERROR and TSS2_TCTI_RC_NO_CONNECTION.
        assert_eq!(RcClass::of(0x000a_000a), RcClass::Connection);
        assert_eq!(RcClass::of(0x000a_0008), RcClass::Connection);
        // The kernel resource manager reports TPM-format codes in layer 12.
        assert_eq!(RcClass::of(0x000c_0902), RcClass::OutOfMemory);
        // An ESAPI code whose low bits look like TPM_RC_AUTH_FAIL is not one.
        assert_eq!(RcClass::of(0x0007_008e), RcClass::Other);
        // TSS2_ESYS_RC_MALFORMED_RESPONSE.
        assert_eq!(RcClass::of(0x0007_0011), RcClass::Other);
    }

    #[test]
    fn messages_are_single_sentences_with_advice() {
        let errors = [
            TpmError::Unreachable {
                tcti: "device:/dev/tpmrm0".into(),
                reason: "no such file".into(),
            },
            TpmError::WrongPin {
                attempts_left: Some(2),
            },
            TpmError::WrongPin {
                attempts_left: None,
            },
            TpmError::Lockout {
                retry_after_secs: Some(1000),
            },
            TpmError::PcrMismatch {
                pcrs: "0,7".parse().unwrap(),
            },
            TpmError::ForeignKey,
            TpmError::ConnectionLost {
                tcti: "swtpm:host=127.0.0.1,port=2321".into(),
                operation: "unseal the vault key",
            },
            TpmError::Malformed {
                reason: "it is truncated".into(),
            },
            TpmError::InvalidPcr {
                input: "24".into(),
                reason: "PCR 24 does not exist".into(),
            },
            TpmError::OwnerAuthRequired,
            TpmError::NoAnswer {
                tcti: "swtpm:host=127.0.0.1,port=2321".into(),
                millis: 10_000,
            },
            TpmError::PrimaryMismatch {
                tcti: "device:/dev/tpmrm0".into(),
            },
            TpmError::NvCounterMissing { index: 0x0150_0001 },
            TpmError::NvCounterForeign { index: 0x0150_0001 },
            TpmError::NvIndexesTaken,
            TpmError::OutOfMemory {
                operation: "seal the vault key",
            },
            TpmError::Tss {
                operation: "unseal the vault key",
                source: TssCause::from_rc(0x1c4),
            },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.trim_end_matches('.').contains(". "), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
        let lockout = TpmError::Lockout {
            retry_after_secs: Some(1000),
        };
        assert!(lockout.to_string().contains("about 17 minutes"));
        let wrong = TpmError::WrongPin {
            attempts_left: Some(2),
        };
        assert!(wrong.to_string().contains("2 more wrong PINs"));
        let pcr = TpmError::PcrMismatch {
            pcrs: "0,7".parse().unwrap(),
        };
        assert!(pcr.to_string().contains("coffer recover"));
        assert!(pcr.to_string().contains("0,7"));
        let tss = TpmError::Tss {
            operation: "unseal the vault key",
            source: TssCause::from_rc(0x1c4),
        };
        assert!(tss.to_string().contains("TPM response code 0x000001c4"));
    }
}
