//! A sealed key as it is stored: the TPM's public and private blobs plus the PCR binding, and
//! their versioned binary encoding.

use tss_esapi::structures::{Private, Public, PublicBuffer};
use tss_esapi::traits::{Marshall, UnMarshall};

use super::error::TpmError;
use super::pcr::{PcrBinding, MAX_PCR};

/// First bytes of an encoded [`SealedKek`].
const MAGIC: &[u8; 4] = b"CFSK";
/// The only encoding version so far.
const VERSION: u8 = 1;

/// A key-encryption key sealed in the TPM, as stored in the vault database.
///
/// `public` and `private` are the marshalled `TPM2B_PUBLIC` and `TPM2B_PRIVATE` of the sealed
/// data object (the same bytes `tpm2_create -u/-r` writes). The private part is encrypted by
/// the TPM's storage key and useless without that TPM, so none of this is secret.
#[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, Debug)]
pub struct SealedKek {
    /// Marshalled `TPM2B_PUBLIC` of the sealed object.
    pub public: Vec<u8>,
    /// Marshalled `TPM2B_PRIVATE` of the sealed object.
    pub private: Vec<u8>,
    /// The PCRs whose values the object's policy requires; empty for no binding.
    pub pcrs: PcrBinding,
}

impl SealedKek {
    /// Encodes as `"CFSK" | version=1 | n | n PCR indexes | u16 BE len | public |
    /// u16 BE len | private`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let pcrs = self.pcrs.indexes();
        let mut out =
            Vec::with_capacity(4 + 2 + pcrs.len() + 4 + self.public.len() + self.private.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // At most 24 PCRs (PcrBinding guarantees it), so this never truncates.
        out.push(pcrs.len() as u8);
        out.extend_from_slice(pcrs);
        push_field(&mut out, &self.public);
        push_field(&mut out, &self.private);
        out
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) wrote, checking the framing, the PCR list and
    /// that both blobs are well-formed TPM structures. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedKek, TpmError> {
        let mut r = Reader(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(malformed("it does not start with the sealed-key marker"));
        }
        let version = r.take(1)?[0];
        if version != VERSION {
            return Err(malformed(&format!(
                "encoding version {version} is not supported, only {VERSION} is"
            )));
        }
        let count = usize::from(r.take(1)?[0]);
        if count > usize::from(MAX_PCR) + 1 {
            return Err(malformed("it lists more PCRs than exist"));
        }
        let pcrs = r.take(count)?;
        if pcrs.windows(2).any(|w| w[0] >= w[1]) || pcrs.iter().any(|&p| p > MAX_PCR) {
            return Err(malformed("its PCR list is invalid"));
        }
        let pcrs = PcrBinding::new(pcrs.iter().copied())?;
        let public = r.field()?.to_vec();
        let private = r.field()?.to_vec();
        if !r.0.is_empty() {
            return Err(malformed("it has trailing bytes"));
        }
        let sealed = SealedKek {
            public,
            private,
            pcrs,
        };
        sealed.decode_public()?;
        sealed.decode_private()?;
        Ok(sealed)
    }

    /// Builds the stored form from what TPM2_Create returned.
    pub(crate) fn from_tpm(
        public: Public,
        private: &Private,
        pcrs: PcrBinding,
    ) -> Result<SealedKek, tss_esapi::Error> {
        let public = PublicBuffer::try_from(public)?.marshall()?;
        let mut private_2b = Vec::with_capacity(2 + private.len());
        // A TPM2B_PRIVATE is at most a few hundred bytes, far below u16::MAX.
        private_2b.extend_from_slice(&(private.len() as u16).to_be_bytes());
        private_2b.extend_from_slice(private.value());
        Ok(SealedKek {
            public,
            private: private_2b,
            pcrs,
        })
    }

    /// The public area as a `tss_esapi` structure; it must be a keyed-hash (sealed data) object.
    pub(crate) fn decode_public(&self) -> Result<Public, TpmError> {
        let body = tpm2b_body(&self.public, "public")?;
        if body.is_empty() {
            return Err(malformed("its public area is empty"));
        }
        let public = PublicBuffer::unmarshall(&self.public)
            .and_then(Public::try_from)
            .map_err(|_| malformed("its public area is not a valid TPM structure"))?;
        match public {
            Public::KeyedHash { .. } => Ok(public),
            _ => Err(malformed("its public area is not a sealed data object")),
        }
    }

    /// The private area as a `tss_esapi` structure.
    pub(crate) fn decode_private(&self) -> Result<Private, TpmError> {
        let body = tpm2b_body(&self.private, "private")?;
        if body.is_empty() {
            return Err(malformed("its private area is empty"));
        }
        Private::try_from(body).map_err(|_| malformed("its private area is too large"))
    }
}

fn malformed(reason: &str) -> TpmError {
    TpmError::Malformed {
        reason: reason.to_owned(),
    }
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // Both fields are TPM2B structures, which are limited to u16 sizes; `from_tpm` and
    // `from_bytes` are the only producers, so a longer field cannot occur in practice and
    // would be rejected by `from_bytes` as malformed framing.
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// The contents of a marshalled TPM2B, checking that its size prefix matches.
fn tpm2b_body<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], TpmError> {
    let mut r = Reader(bytes);
    let body = r
        .field()
        .map_err(|_| malformed(&format!("its {what} area is truncated")))?;
    if !r.0.is_empty() {
        return Err(malformed(&format!(
            "its {what} area does not match its size prefix"
        )));
    }
    Ok(body)
}

/// A cursor that fails instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TpmError> {
        if self.0.len() < n {
            return Err(malformed("it is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// A u16 big-endian length and that many bytes.
    fn field(&mut self) -> Result<&'a [u8], TpmError> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(SealedKek::from_bytes(b"").is_err());
        assert!(SealedKek::from_bytes(b"CFSK").is_err());
        assert!(SealedKek::from_bytes(b"XXXX\x01\x00\x00\x00\x00\x00").is_err());
        assert!(SealedKek::from_bytes(b"CFSK\x02\x00\x00\x00\x00\x00").is_err());
        // Valid framing, empty blobs.
        assert!(SealedKek::from_bytes(b"CFSK\x01\x00\x00\x00\x00\x00").is_err());
        // PCR list out of order / out of range / too long.
        assert!(SealedKek::from_bytes(b"CFSK\x01\x02\x07\x01\x00\x00\x00\x00").is_err());
        assert!(SealedKek::from_bytes(b"CFSK\x01\x01\x30\x00\x00\x00\x00").is_err());
        assert!(SealedKek::from_bytes(b"CFSK\x01\xff").is_err());
        // A length running past the end.
        assert!(SealedKek::from_bytes(b"CFSK\x01\x00\xff\xff\x00").is_err());
        // Pseudo-random garbage behind a valid header.
        let mut x: u32 = 0x1234_5678;
        for len in 0..300 {
            let mut bytes = b"CFSK\x01\x00".to_vec();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                bytes.push(x as u8);
            }
            assert!(SealedKek::from_bytes(&bytes).is_err());
        }
    }

    #[test]
    fn tpm2b_prefix_must_match() {
        let sealed = SealedKek {
            public: vec![0, 5, 1, 2],
            private: vec![0, 1, 9],
            pcrs: PcrBinding::none(),
        };
        assert!(matches!(
            sealed.decode_public(),
            Err(TpmError::Malformed { .. })
        ));
        assert!(sealed.decode_private().is_ok());
        let garbage_public = SealedKek {
            public: vec![0, 3, 1, 2, 3],
            ..sealed
        };
        assert!(matches!(
            garbage_public.decode_public(),
            Err(TpmError::Malformed { .. })
        ));
    }
}
