//! Which PCRs (SHA-256 bank) a sealed key is bound to.

use std::fmt;
use std::str::FromStr;

use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{PcrSelectionList, PcrSelectionListBuilder, PcrSlot};

use super::error::TpmError;

/// The highest PCR index Coffer accepts (PC Client TPMs have PCRs 0..=23).
pub const MAX_PCR: u8 = 23;

/// A set of SHA-256 PCR indexes (0..=23) a sealed key is bound to; empty means "not bound".
///
/// Always sorted and free of duplicates. Parses from `"7"`, `"0,2,7"` (spaces allowed), and
/// `""` or `"none"` for no binding; displays as `"0,2,7"`, or `"none"` when empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct PcrBinding(Vec<u8>);

/// PCRs resettable from locality 0 (TCG PC Client Platform TPM Profile).
const RESETTABLE: [u8; 2] = [16, 23];

impl PcrBinding {
    /// No PCR binding.
    pub fn none() -> Self {
        PcrBinding(Vec::new())
    }

    /// A binding to the given PCR indexes (any order, duplicates ignored).
    pub fn new(indexes: impl IntoIterator<Item = u8>) -> Result<Self, TpmError> {
        let mut pcrs: Vec<u8> = indexes.into_iter().collect();
        if let Some(bad) = pcrs.iter().find(|&&i| i > MAX_PCR) {
            return Err(TpmError::InvalidPcr {
                input: join(&pcrs),
                reason: format!("PCR {bad} does not exist, the highest is {MAX_PCR}"),
            });
        }
        pcrs.sort_unstable();
        pcrs.dedup();
        Ok(PcrBinding(pcrs))
    }

    /// The PCR indexes, ascending.
    pub fn indexes(&self) -> &[u8] {
        &self.0
    }

    /// Whether no PCRs are selected.
    /// The bound PCRs that any process may reset to zero with TPM2_PCR_Reset (16, the debug
    /// PCR, and 23, the application PCR, are resettable from locality 0 on PC Client TPMs):
    /// binding to them proves nothing about the boot, since their sealed values can be
    /// recreated at will.
    pub fn resettable(&self) -> Vec<u8> {
        self.indexes()
            .iter()
            .copied()
            .filter(|i| RESETTABLE.contains(i))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The selection in the SHA-256 bank, for PolicyPCR and PCR_Read.
    pub(crate) fn selection(&self) -> Result<PcrSelectionList, TpmError> {
        let slots = self
            .0
            .iter()
            .map(|&i| PcrSlot::try_from(1u32 << i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| self.invalid("not a PCR slot"))?;
        PcrSelectionListBuilder::new()
            .with_selection(HashingAlgorithm::Sha256, &slots)
            .build()
            .map_err(|_| self.invalid("cannot build a PCR selection"))
    }

    fn invalid(&self, reason: &str) -> TpmError {
        TpmError::InvalidPcr {
            input: join(&self.0),
            reason: reason.to_owned(),
        }
    }
}

fn join(pcrs: &[u8]) -> String {
    pcrs.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

impl FromStr for PcrBinding {
    type Err = TpmError;

    fn from_str(s: &str) -> Result<Self, TpmError> {
        let trimmed = s.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(PcrBinding::none());
        }
        let invalid = |reason: String| TpmError::InvalidPcr {
            input: s.to_owned(),
            reason,
        };
        let mut pcrs = Vec::new();
        for part in trimmed.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid("empty entry between commas".to_owned()));
            }
            let index: u8 = part
                .parse()
                .map_err(|_| invalid(format!("\"{part}\" is not a PCR number")))?;
            if index > MAX_PCR {
                return Err(invalid(format!(
                    "PCR {index} does not exist, the highest is {MAX_PCR}"
                )));
            }
            pcrs.push(index);
        }
        PcrBinding::new(pcrs)
    }
}

impl fmt::Display for PcrBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&join(&self.0))
        }
    }
}

impl TryFrom<Vec<u8>> for PcrBinding {
    type Error = TpmError;

    fn try_from(indexes: Vec<u8>) -> Result<Self, TpmError> {
        PcrBinding::new(indexes)
    }
}

impl From<PcrBinding> for Vec<u8> {
    fn from(pcrs: PcrBinding) -> Vec<u8> {
        pcrs.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        assert_eq!("7".parse::<PcrBinding>().unwrap().indexes(), &[7]);
        let b: PcrBinding = " 7, 0,2 ,7".parse().unwrap();
        assert_eq!(b.indexes(), &[0, 2, 7]);
        assert_eq!(b.to_string(), "0,2,7");
        assert_eq!(b.to_string().parse::<PcrBinding>().unwrap(), b);
        assert!("".parse::<PcrBinding>().unwrap().is_empty());
        assert!("none".parse::<PcrBinding>().unwrap().is_empty());
        assert_eq!(PcrBinding::none().to_string(), "none");
        assert_eq!("23".parse::<PcrBinding>().unwrap().indexes(), &[23]);
    }

    #[test]
    fn rejects_bad_input_with_a_clear_error() {
        for bad in ["24", "7,", "a", "-1", "0,,1", "256", "1;2"] {
            let err = bad.parse::<PcrBinding>().unwrap_err();
            assert!(matches!(err, TpmError::InvalidPcr { .. }), "{bad}");
            assert!(err.to_string().contains("from 0 to 23"), "{err}");
        }
        assert!(PcrBinding::new([1, 24]).is_err());
    }

    #[test]
    fn serde_validates() {
        let b: PcrBinding = serde_json::from_str("[7,0]").unwrap();
        assert_eq!(b.indexes(), &[0, 7]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "[0,7]");
        assert!(serde_json::from_str::<PcrBinding>("[99]").is_err());
    }

    #[test]
    fn builds_a_selection() {
        assert!("0,7,23".parse::<PcrBinding>().unwrap().selection().is_ok());
    }
}
