//! What the TPM says about itself: maker, firmware, and its dictionary-attack state.

use std::collections::BTreeMap;

use tss_esapi::constants::CapabilityType;
use tss_esapi::structures::CapabilityData;
use tss_esapi::{Context, WrapperErrorKind};

// TPM_PT values (TPM 2.0 Part 2, 6.13). Read with TPM2_GetCapability directly: tss-esapi's
// `get_tpm_property` caches values, which is wrong for the variable ones.
const PT_MANUFACTURER: u32 = 0x105;
const PT_VENDOR_STRING_1: u32 = 0x106;
const PT_VENDOR_STRING_4: u32 = 0x109;
const PT_FIRMWARE_VERSION_1: u32 = 0x10b;
const PT_FIRMWARE_VERSION_2: u32 = 0x10c;
const PT_PERMANENT: u32 = 0x200;
const PT_LOCKOUT_COUNTER: u32 = 0x20e;
const PT_MAX_AUTH_FAIL: u32 = 0x20f;
const PT_LOCKOUT_INTERVAL: u32 = 0x210;
const PT_LOCKOUT_RECOVERY: u32 = 0x211;
/// TPMA_PERMANENT.lockoutAuthSet.
const PERMANENT_LOCKOUT_AUTH_SET: u32 = 1 << 2;
/// TPMA_PERMANENT.inLockout.
const PERMANENT_IN_LOCKOUT: u32 = 1 << 9;

/// Facts about the TPM, for `coffer status`/diagnostics.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TpmInfo {
    /// TPM_PT_MANUFACTURER as its 4-character vendor id, NULs shown as spaces (`"IBM "`,
    /// `"INTC"`, `"IFX "`, `"NTC "`, `"STM "`, `"AMD "`, `"MSFT"`).
    pub manufacturer: String,
    /// TPM_PT_VENDOR_STRING_1..4 joined, NULs dropped (swtpm: `"SW   TPM"`).
    pub vendor: String,
    /// TPM_PT_FIRMWARE_VERSION_1/2 as four 16-bit numbers, `"a.b.c.d"`.
    pub firmware_version: String,
    /// Whether this is a software TPM (swtpm/libtpms or the IBM/Microsoft simulators), which
    /// protects nothing against someone who can read the user's files.
    pub is_software: bool,
    /// Dictionary-attack state.
    #[serde(flatten)]
    pub dictionary_attack: DaStatus,
}

/// The TPM's dictionary-attack (PIN lockout) state and parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaStatus {
    /// TPM_PT_LOCKOUT_COUNTER: failed authorizations not yet forgiven.
    pub lockout_counter: u32,
    /// TPM_PT_MAX_AUTH_FAIL: failures that put the TPM in lockout.
    pub max_auth_fail: u32,
    /// TPM_PT_LOCKOUT_INTERVAL: seconds after which one failure is forgiven (0 disables DA
    /// protection).
    pub lockout_interval_secs: u32,
    /// TPM_PT_LOCKOUT_RECOVERY: seconds before lockoutAuth may be tried again after it failed.
    pub lockout_recovery_secs: u32,
    /// TPMA_PERMANENT.inLockout: the TPM refuses DA-protected authorizations right now.
    pub in_lockout: bool,
    /// TPMA_PERMANENT.lockoutAuthSet: the lockout hierarchy has a password. Without one,
    /// any program can reset the failure counter (TPM2_DictionaryAttackLockReset).
    #[serde(default)]
    pub lockout_auth_set: bool,
}

impl DaStatus {
    /// Why the TPM's dictionary-attack protection does not really limit PIN guessing, if
    /// it does not: anyone can reset the failure counter when the lockout hierarchy has no
    /// password, and an interval of 0 (or no failure limit) turns the brake off.
    pub fn brake_weakness(&self) -> Option<&'static str> {
        if self.lockout_interval_secs == 0 || self.max_auth_fail == 0 {
            Some("the TPM's dictionary-attack protection is switched off (lockout interval 0)")
        } else if !self.lockout_auth_set {
            Some(
                "the TPM's lockout authorization is empty, so any program can reset its count of \
                 wrong PINs",
            )
        } else {
            None
        }
    }

    /// Wrong PINs the TPM still accepts before lockout.
    pub fn attempts_left(&self) -> u32 {
        self.max_auth_fail.saturating_sub(self.lockout_counter)
    }

    /// Roughly how long until one more attempt is allowed, if in lockout: the counter must drop
    /// below the maximum, and it drops by one every lockout interval of TPM run time.
    pub fn retry_after_secs(&self) -> Option<u32> {
        if self.lockout_interval_secs == 0 {
            return None;
        }
        let excess = self
            .lockout_counter
            .saturating_sub(self.max_auth_fail)
            .saturating_add(1);
        Some(excess.saturating_mul(self.lockout_interval_secs))
    }
}

/// Reads the dictionary-attack properties (never cached).
pub(crate) fn da_status(ctx: &mut Context) -> Result<DaStatus, tss_esapi::Error> {
    let props = read_properties(ctx, PT_PERMANENT, PT_LOCKOUT_RECOVERY)?;
    let get = |tag| props.get(&tag).copied().unwrap_or_default();
    Ok(DaStatus {
        lockout_counter: get(PT_LOCKOUT_COUNTER),
        max_auth_fail: get(PT_MAX_AUTH_FAIL),
        lockout_interval_secs: get(PT_LOCKOUT_INTERVAL),
        lockout_recovery_secs: get(PT_LOCKOUT_RECOVERY),
        in_lockout: get(PT_PERMANENT) & PERMANENT_IN_LOCKOUT != 0,
        lockout_auth_set: get(PT_PERMANENT) & PERMANENT_LOCKOUT_AUTH_SET != 0,
    })
}

/// Reads the maker, firmware and DA state. `tcti` helps recognise simulators.
pub(crate) fn read(ctx: &mut Context, tcti: &str) -> Result<TpmInfo, tss_esapi::Error> {
    let fixed = read_properties(ctx, PT_MANUFACTURER, PT_FIRMWARE_VERSION_2)?;
    let get = |tag| fixed.get(&tag).copied().unwrap_or_default();
    let manufacturer: String = get(PT_MANUFACTURER)
        .to_be_bytes()
        .iter()
        .map(|&b| printable(b).unwrap_or(' '))
        .collect();
    let vendor: String = (PT_VENDOR_STRING_1..=PT_VENDOR_STRING_4)
        .flat_map(|tag| get(tag).to_be_bytes())
        .filter_map(printable)
        .collect();
    let (v1, v2) = (get(PT_FIRMWARE_VERSION_1), get(PT_FIRMWARE_VERSION_2));
    let firmware_version = format!("{}.{}.{}.{}", v1 >> 16, v1 & 0xffff, v2 >> 16, v2 & 0xffff);
    let is_software = is_software_tpm(&manufacturer, &vendor, tcti);
    Ok(TpmInfo {
        manufacturer,
        vendor,
        firmware_version,
        is_software,
        dictionary_attack: da_status(ctx)?,
    })
}

fn printable(b: u8) -> Option<char> {
    (b.is_ascii_graphic() || b == b' ').then_some(char::from(b))
}

/// swtpm (libtpms) and IBM's simulator report manufacturer "IBM" with vendor "SW   TPM";
/// Microsoft's reference simulator is reached through the `mssim` TCTI.
fn is_software_tpm(manufacturer: &str, vendor: &str, tcti: &str) -> bool {
    let words: Vec<&str> = vendor.split_whitespace().collect();
    let sw_vendor = words == ["SW", "TPM"];
    let sim_tcti = tcti.starts_with("swtpm") || tcti.starts_with("mssim");
    (manufacturer.trim() == "IBM" && sw_vendor) || sim_tcti
}

/// TPM properties `first..=last` (TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES)), following
/// `moreData` if the TPM returns them in pieces.
fn read_properties(
    ctx: &mut Context,
    first: u32,
    last: u32,
) -> Result<BTreeMap<u32, u32>, tss_esapi::Error> {
    let mut out = BTreeMap::new();
    let mut next = first;
    loop {
        let (data, more) = ctx.execute_without_session(|c| {
            c.get_capability(CapabilityType::TpmProperties, next, last - next + 1)
        })?;
        let CapabilityData::TpmProperties(list) = data else {
            return Err(tss_esapi::Error::WrapperError(
                WrapperErrorKind::WrongValueFromTpm,
            ));
        };
        let mut highest = None;
        for p in list.iter() {
            let tag: u32 = p.property().into();
            if (first..=last).contains(&tag) {
                out.insert(tag, p.value());
                highest = Some(tag);
            }
        }
        match highest {
            Some(tag) if more && tag < last => next = tag + 1,
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_software_tpms() {
        assert!(is_software_tpm("IBM ", "SW   TPM", "device:/dev/tpmrm0"));
        assert!(is_software_tpm("MSFT", "", "mssim:host=localhost"));
        assert!(!is_software_tpm("INTC", "Intel", "device:/dev/tpmrm0"));
        assert!(!is_software_tpm("IBM ", "", "device:/dev/tpmrm0"));
    }

    #[test]
    fn lockout_arithmetic() {
        let s = DaStatus {
            lockout_counter: 3,
            max_auth_fail: 3,
            lockout_interval_secs: 1000,
            lockout_recovery_secs: 1000,
            in_lockout: true,
            lockout_auth_set: true,
        };
        assert_eq!(s.brake_weakness(), None);
        assert!(DaStatus {
            lockout_auth_set: false,
            ..s
        }
        .brake_weakness()
        .is_some());
        assert_eq!(s.attempts_left(), 0);
        assert_eq!(s.retry_after_secs(), Some(1000));
        let s = DaStatus {
            lockout_counter: 5,
            ..s
        };
        assert_eq!(s.retry_after_secs(), Some(3000));
        let s = DaStatus {
            lockout_interval_secs: 0,
            ..s
        };
        assert_eq!(s.retry_after_secs(), None);
        assert!(s.brake_weakness().is_some());
    }
}
