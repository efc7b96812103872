use std::fmt;

use sha2::{Digest, Sha256};

use super::RegionError;

/// A vault's identity as a person compares it: SHA-256 of its signing key, written as
/// 13 groups of 4 base32 characters. All 256 bits are shown: a shortened fingerprint
/// would let an attacker search for a key whose prefix matches.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

const ALPHABET: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

impl Fingerprint {
    /// The fingerprint of a signing key, given as the SubjectPublicKeyInfo contents that
    /// certificate verification extracts from the identity certificate.
    pub fn of_key_info(spki: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"coffer.identity.v1\0");
        hash.update(spki);
        Fingerprint(hash.finalize().into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Fingerprint)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a fingerprint as people copy it: any case, with or without dashes or spaces.
    pub fn parse(text: &str) -> Result<Self, RegionError> {
        let invalid = |reason| RegionError::InvalidFingerprint {
            text: text.chars().take(80).collect(),
            reason,
        };
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | ':'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if compact.len() != 52 {
            return Err(invalid(
                "it must have 52 letters and digits (13 groups of 4)",
            ));
        }
        let bytes = base32::decode(ALPHABET, &compact)
            .ok_or_else(|| invalid("it may only hold the letters A-Z and the digits 2-7"))?;
        let fingerprint = Fingerprint::from_bytes(&bytes)
            .ok_or_else(|| invalid("it must have 52 letters and digits (13 groups of 4)"))?;
        // 52 characters carry 260 bits: the last 4 must be zero, or two spellings would
        // name one fingerprint and a typo there would go unnoticed.
        if fingerprint.to_string().replace('-', "") != compact {
            return Err(invalid(
                "its last character is not one a fingerprint can end with",
            ));
        }
        Ok(fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = base32::encode(ALPHABET, &self.0);
        for (i, chunk) in text.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_however_it_was_copied() {
        let fp = Fingerprint::of_key_info(b"some key");
        let shown = fp.to_string();
        assert_eq!(shown.len(), 52 + 12);
        assert_eq!(Fingerprint::parse(&shown).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&shown.to_lowercase()).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&shown.replace('-', " ")).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&shown.replace('-', "")).unwrap(), fp);
    }

    #[test]
    fn bad_fingerprints_say_what_is_wrong() {
        let shown = Fingerprint::of_key_info(b"k").to_string();
        let short = &shown[..shown.len() - 1];
        let message = Fingerprint::parse(short).unwrap_err().to_string();
        assert!(message.contains("52 letters"), "{message}");
        let with_one = shown.replacen(|c: char| c.is_ascii_alphabetic(), "1", 1);
        let message = Fingerprint::parse(&with_one).unwrap_err().to_string();
        assert!(message.contains("A-Z"), "{message}");
        // Same 256 bits, a different last character: refused, not silently accepted.
        let mut altered = shown.clone();
        let last = altered.pop().unwrap();
        let other = if last == 'A' { 'B' } else { 'A' };
        altered.push(other);
        assert!(Fingerprint::parse(&altered).is_err());
    }
}
