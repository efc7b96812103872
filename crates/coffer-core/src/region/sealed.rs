//! A secret version's data key sealed to one peer, and payloads signed by a vault.
//!
//! The primary sends a version's ciphertext as it is stored; only its data key is
//! re-encrypted, with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! AES-256-GCM) to the replica's X25519 key. The HPKE `info` and associated data bind the
//! seal to both vaults, both region names, the secret and the version, so a sealed key
//! cannot be replayed for another version, another secret or another replica. Everything
//! sent is also signed by the primary's identity: HPKE base mode says who may open, the
//! signature says who sent it.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::identity::{verify, Identity};
use super::RegionError;
use crate::crypto::{Aad, DataKey, KEY_LEN};

type Recipient = <X25519HkdfSha256 as Kem>::PublicKey;
type RecipientKey = <X25519HkdfSha256 as Kem>::PrivateKey;

/// Why a data key travels, bound into its seal: a key a member sealed for a forwarded
/// write cannot pass as one a primary sealed for its replica, nor the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealPurpose {
    /// A primary's version, sent to a replica (`primary_*` is the sender).
    Replica,
    /// A team member's new version, sent to the folder's primary to apply
    /// (`primary_*` is the writing member, `replica_*` the folder's primary).
    ForwardedWrite,
}

/// Everything a sealed data key is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaContext {
    pub purpose: SealPurpose,
    pub primary_vault: Uuid,
    pub primary_region: String,
    pub replica_vault: Uuid,
    pub replica_region: String,
    pub secret_id: Uuid,
    pub version_id: Uuid,
}

impl ReplicaContext {
    fn bytes(&self) -> Aad {
        let domain = match self.purpose {
            SealPurpose::Replica => "coffer.replica-data-key.v1",
            SealPurpose::ForwardedWrite => "coffer.team-write-data-key.v1",
        };
        Aad::new(domain)
            .with(self.primary_vault.as_bytes())
            .with(self.primary_region.as_bytes())
            .with(self.replica_vault.as_bytes())
            .with(self.replica_region.as_bytes())
            .with(self.secret_id.as_bytes())
            .with(self.version_id.as_bytes())
    }
}

/// A data key sealed to one replica: HPKE's encapsulated key and the ciphertext.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SealedDataKey {
    #[serde(with = "b64")]
    pub encapsulated: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

/// Seals `key` so that only the holder of the X25519 secret for `recipient` can open it,
/// and only in `context`.
pub fn seal_data_key(
    key: &DataKey,
    recipient: &[u8; 32],
    context: &ReplicaContext,
) -> Result<SealedDataKey, RegionError> {
    let recipient = Recipient::from_bytes(recipient).map_err(|_| RegionError::Protocol {
        name: context.replica_region.clone(),
        reason: "its data-key public key is not an X25519 key".into(),
    })?;
    let bound = context.bytes();
    let (encapsulated, ciphertext) =
        hpke::single_shot_seal::<AesGcm256, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &recipient,
            bound.as_bytes(),
            key.expose(),
            bound.as_bytes(),
            &mut rand_core::OsRng,
        )
        .map_err(|e| RegionError::Certificate {
            reason: format!("sealing a data key failed: {e}"),
        })?;
    Ok(SealedDataKey {
        encapsulated: encapsulated.to_bytes().to_vec(),
        ciphertext,
    })
}

impl Identity {
    /// Opens a data key sealed to this vault in `context`; anything else (another
    /// context, another recipient, an altered byte) is refused alike.
    pub fn open_data_key(
        &self,
        sealed: &SealedDataKey,
        context: &ReplicaContext,
    ) -> Result<DataKey, RegionError> {
        let refused = || RegionError::SealRefused {
            secret_id: context.secret_id,
            version_id: context.version_id,
        };
        let own = RecipientKey::from_bytes(&self.hpke_secret()[..]).map_err(|_| refused())?;
        let encapsulated = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&sealed.encapsulated)
            .map_err(|_| refused())?;
        let bound = context.bytes();
        let plain = zeroize::Zeroizing::new(
            hpke::single_shot_open::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &own,
                &encapsulated,
                bound.as_bytes(),
                &sealed.ciphertext,
                bound.as_bytes(),
            )
            .map_err(|_| refused())?,
        );
        let bytes: [u8; KEY_LEN] = plain.as_slice().try_into().map_err(|_| refused())?;
        Ok(DataKey::from_bytes(bytes))
    }
}

/// The domain every replication payload is signed in.
pub const PAYLOAD_DOMAIN: &str = "coffer.replica-payload.v1";

/// A payload and the primary's signature over it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    #[serde(with = "b64")]
    pub body: Vec<u8>,
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

impl SignedPayload {
    pub fn sign(identity: &Identity, body: Vec<u8>) -> Result<Self, RegionError> {
        let signature = identity.sign(PAYLOAD_DOMAIN, &body)?;
        Ok(SignedPayload { body, signature })
    }

    /// The body, if the identity certified by `ca_cert` (matched by the caller to a
    /// pinned fingerprint) signed it.
    pub fn verified_body(&self, ca_cert: &rustls_pki_types::CertificateDer<'_>) -> Option<&[u8]> {
        verify(ca_cert, PAYLOAD_DOMAIN, &self.body, &self.signature).then_some(&self.body[..])
    }
}

pub(crate) mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> ReplicaContext {
        ReplicaContext {
            purpose: SealPurpose::Replica,
            primary_vault: Uuid::new_v4(),
            primary_region: "eu-home-1".into(),
            replica_vault: Uuid::new_v4(),
            replica_region: "us-lab-1".into(),
            secret_id: Uuid::new_v4(),
            version_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_sealed_data_key_opens_only_for_its_replica_in_its_context() {
        let replica = Identity::generate().unwrap();
        let key = DataKey::generate();
        let ctx = context();
        let sealed = seal_data_key(&key, &replica.hpke_public(), &ctx).unwrap();
        assert!(!sealed
            .ciphertext
            .windows(KEY_LEN)
            .any(|w| w == key.expose()));
        let opened = replica.open_data_key(&sealed, &ctx).unwrap();
        assert_eq!(opened.expose(), key.expose());

        // Another replica cannot open it.
        let other = Identity::generate().unwrap();
        assert!(other.open_data_key(&sealed, &ctx).is_err());
        // Nor can it be moved to another version, secret, vault or region.
        let moves: [fn(&mut ReplicaContext); 7] = [
            |c| c.purpose = SealPurpose::ForwardedWrite,
            |c| c.version_id = Uuid::new_v4(),
            |c| c.secret_id = Uuid::new_v4(),
            |c| c.primary_vault = Uuid::new_v4(),
            |c| c.replica_vault = Uuid::new_v4(),
            |c| c.primary_region = "eu-home-2".into(),
            |c| c.replica_region = "us-lab-2".into(),
        ];
        for change in moves {
            let mut moved = ctx.clone();
            change(&mut moved);
            assert!(matches!(
                replica.open_data_key(&sealed, &moved),
                Err(RegionError::SealRefused { .. })
            ));
        }
        // A flipped byte anywhere is refused.
        for i in 0..sealed.ciphertext.len() {
            let mut flipped = sealed.clone();
            flipped.ciphertext[i] ^= 1;
            assert!(replica.open_data_key(&flipped, &ctx).is_err(), "byte {i}");
        }
        let mut flipped = sealed.clone();
        flipped.encapsulated[0] ^= 1;
        assert!(replica.open_data_key(&flipped, &ctx).is_err());
    }

    #[test]
    fn a_payload_verifies_only_with_its_signer_and_unaltered() {
        let primary = Identity::generate().unwrap();
        let signed = SignedPayload::sign(&primary, b"payload".to_vec()).unwrap();
        let ca = &primary.chain()[1];
        assert_eq!(signed.verified_body(ca), Some(&b"payload"[..]));
        let other = Identity::generate().unwrap();
        assert_eq!(signed.verified_body(&other.chain()[1]), None);
        let mut altered = signed.clone();
        altered.body[0] ^= 1;
        assert_eq!(altered.verified_body(ca), None);
        // A hello signature cannot stand for a payload signature.
        let hello_sig = primary.sign("coffer.hello.v1", b"payload").unwrap();
        let forged = SignedPayload {
            body: b"payload".to_vec(),
            signature: hello_sig,
        };
        assert_eq!(forged.verified_body(ca), None);
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(
            serde_json::from_str::<SignedPayload>(&json).unwrap(),
            signed
        );
    }
}
