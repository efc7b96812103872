//! TPM2_DictionaryAttackParameters and TPM2_DictionaryAttackLockReset.
//!
//! tss-esapi 7 does not wrap these two commands and does not expose its ESAPI context, so they
//! are called through the raw ESAPI on a short-lived connection of their own. The caller
//! closes its own connection first, because `/dev/tpm0` admits one client at a time.
//! Both use the lockout hierarchy with an empty password (the default on a fresh TPM).

use std::ffi::CString;
use std::ptr::null_mut;

use tss_esapi::tss2_esys::{
    Esys_DictionaryAttackLockReset, Esys_DictionaryAttackParameters, Esys_Finalize,
    Esys_Initialize, Tss2_TctiLdr_Finalize, Tss2_TctiLdr_Initialize, ESYS_CONTEXT, ESYS_TR_NONE,
    ESYS_TR_PASSWORD, ESYS_TR_RH_LOCKOUT, TSS2_RC, TSS2_TCTI_CONTEXT,
};

use super::error::{RcClass, TpmError, TssCause};

/// Sets maxTries, recoveryTime and lockoutRecovery.
pub(crate) fn set_parameters(
    tcti: &str,
    max_tries: u32,
    recovery_secs: u32,
    lockout_recovery_secs: u32,
) -> Result<(), TpmError> {
    const OP: &str = "set the dictionary-attack parameters";
    let esys = RawEsys::open(tcti)?;
    // SAFETY: `esys.esys` is a live ESAPI context owned by `esys` for the whole call; the
    // handles are ESAPI's predefined constants; no pointers are passed.
    let rc = unsafe {
        Esys_DictionaryAttackParameters(
            esys.esys,
            ESYS_TR_RH_LOCKOUT,
            ESYS_TR_PASSWORD,
            ESYS_TR_NONE,
            ESYS_TR_NONE,
            max_tries,
            recovery_secs,
            lockout_recovery_secs,
        )
    };
    check(tcti, OP, rc)
}

/// Clears the lockout counter and leaves lockout.
pub(crate) fn reset_lockout(tcti: &str) -> Result<(), TpmError> {
    const OP: &str = "reset the dictionary-attack lockout";
    let esys = RawEsys::open(tcti)?;
    // SAFETY: as in `set_parameters`.
    let rc = unsafe {
        Esys_DictionaryAttackLockReset(
            esys.esys,
            ESYS_TR_RH_LOCKOUT,
            ESYS_TR_PASSWORD,
            ESYS_TR_NONE,
            ESYS_TR_NONE,
        )
    };
    check(tcti, OP, rc)
}

fn check(tcti: &str, operation: &'static str, rc: TSS2_RC) -> Result<(), TpmError> {
    if rc == 0 {
        return Ok(());
    }
    Err(match RcClass::of(rc) {
        RcClass::Connection => TpmError::ConnectionLost {
            tcti: tcti.to_owned(),
            operation,
        },
        _ => TpmError::Tss {
            operation,
            source: TssCause::from_rc(rc),
        },
    })
}

/// A TCTI plus ESAPI context, finalized on drop.
struct RawEsys {
    tcti: *mut TSS2_TCTI_CONTEXT,
    esys: *mut ESYS_CONTEXT,
}

impl RawEsys {
    fn open(tcti: &str) -> Result<RawEsys, TpmError> {
        let unreachable = |reason: String| TpmError::Unreachable {
            tcti: tcti.to_owned(),
            reason,
        };
        let conf = CString::new(tcti).map_err(|_| unreachable("it contains a NUL byte".into()))?;
        let mut raw = RawEsys {
            tcti: null_mut(),
            esys: null_mut(),
        };
        // SAFETY: `conf` is a valid NUL-terminated string that outlives the call; `raw.tcti` is
        // a valid out-pointer. On failure it stays null and Drop skips it.
        let rc = unsafe { Tss2_TctiLdr_Initialize(conf.as_ptr(), &mut raw.tcti) };
        if rc != 0 || raw.tcti.is_null() {
            return Err(unreachable(TssCause::from_rc(rc).to_string()));
        }
        // SAFETY: `raw.tcti` is the live TCTI context from above; `raw.esys` is a valid
        // out-pointer; a null ABI version means "don't check".
        let rc = unsafe { Esys_Initialize(&mut raw.esys, raw.tcti, null_mut()) };
        if rc != 0 || raw.esys.is_null() {
            return Err(unreachable(TssCause::from_rc(rc).to_string()));
        }
        Ok(raw)
    }
}

impl Drop for RawEsys {
    fn drop(&mut self) {
        // SAFETY: each pointer is either null (skipped) or the live context created in `open`
        // and owned only by `self`; the ESAPI context goes first because it uses the TCTI. Both
        // functions set the pointer to null.
        unsafe {
            if !self.esys.is_null() {
                Esys_Finalize(&mut self.esys);
            }
            if !self.tcti.is_null() {
                Tss2_TctiLdr_Finalize(&mut self.tcti);
            }
        }
    }
}
