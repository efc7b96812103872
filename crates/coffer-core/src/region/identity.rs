//! A vault's peer identity: a signing key (whose hash is the fingerprint), a TLS key
//! certified by it, and an X25519 key that peers seal data keys to (HPKE).
//!
//! Three keys, not one, so that no signature made for TLS can be replayed as a payload
//! signature and the key data keys are sealed to is never a signing key. The private
//! halves are kept sealed (AES-256-GCM) under a key derived from the vault's audit key,
//! which only unsealing a TPM key version yields; the public halves are bound into that
//! seal's associated data, so editing them in the file makes the identity unusable
//! rather than someone else's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ED25519,
};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Fingerprint, RegionError, RegionName};
use crate::crypto::{aead, Aad, KEY_LEN};

/// The name every peer certificate carries and every connection checks. Who a peer is
/// comes from its pinned fingerprint; the host it was reached at says nothing.
pub const PEER_SERVER_NAME: &str = "peer.coffer.invalid";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo's contents, before the 32 key bytes.
const ED25519_KEY_INFO_PREFIX: [u8; 12] = [
    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0, 0,
];
const ED25519_PREFIX_LEN: usize = 10;

pub struct Identity {
    ca_cert: CertificateDer<'static>,
    tls_cert: CertificateDer<'static>,
    hpke_public: [u8; 32],
    signing_pkcs8: Zeroizing<Vec<u8>>,
    tls_pkcs8: Zeroizing<Vec<u8>>,
    hpke_secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint().ok())
            .finish_non_exhaustive()
    }
}

/// How the identity is stored: public parts in the clear, private parts sealed.
#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    version: u32,
    ca_cert: String,
    tls_cert: String,
    hpke_public: String,
    sealed: String,
}

fn certificate_error(error: impl std::fmt::Display) -> RegionError {
    RegionError::Certificate {
        reason: error.to_string(),
    }
}

/// The SubjectPublicKeyInfo contents of a certificate, as certificate verification sees
/// them (the same bytes whatever else the certificate says).
pub fn key_info_of(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let mut store = rustls::RootCertStore::empty();
    store.add(cert.clone().into_owned()).ok()?;
    store
        .roots
        .first()
        .map(|anchor| anchor.subject_public_key_info.as_ref().to_vec())
}

/// The fingerprint of the identity whose certificate `ca_cert` is.
pub fn fingerprint_of(ca_cert: &CertificateDer<'_>) -> Option<Fingerprint> {
    key_info_of(ca_cert).map(|info| Fingerprint::of_key_info(&info))
}

/// The raw Ed25519 key in a SubjectPublicKeyInfo's contents.
fn ed25519_key(key_info: &[u8]) -> Option<&[u8]> {
    (key_info.len() == ED25519_PREFIX_LEN + 32
        && key_info[..ED25519_PREFIX_LEN] == ED25519_KEY_INFO_PREFIX[..ED25519_PREFIX_LEN])
        .then(|| &key_info[ED25519_PREFIX_LEN..])
}

impl Identity {
    /// A new identity from the OS RNG.
    pub fn generate() -> Result<Self, RegionError> {
        let signing = KeyPair::generate_for(&PKCS_ED25519).map_err(certificate_error)?;
        let tls = KeyPair::generate_for(&PKCS_ED25519).map_err(certificate_error)?;

        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(certificate_error)?;
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "Coffer vault identity");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
        ca.not_after = rcgen::date_time_ymd(9999, 12, 31);
        let ca_cert = ca.self_signed(&signing).map_err(certificate_error)?;

        let mut leaf =
            CertificateParams::new(vec![PEER_SERVER_NAME.to_owned()]).map_err(certificate_error)?;
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "Coffer peer");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        leaf.not_before = rcgen::date_time_ymd(2024, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(9999, 12, 31);
        let tls_cert = leaf
            .signed_by(&tls, &ca_cert, &signing)
            .map_err(certificate_error)?;

        let hpke = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
        let hpke_public = x25519_dalek::PublicKey::from(&hpke).to_bytes();
        Ok(Identity {
            ca_cert: ca_cert.der().clone(),
            tls_cert: tls_cert.der().clone(),
            hpke_public,
            signing_pkcs8: Zeroizing::new(signing.serialize_der()),
            tls_pkcs8: Zeroizing::new(tls.serialize_der()),
            hpke_secret: Zeroizing::new(hpke.to_bytes()),
        })
    }

    pub fn fingerprint(&self) -> Result<Fingerprint, RegionError> {
        fingerprint_of(&self.ca_cert).ok_or(RegionError::IdentityTampered)
    }

    /// The certificate chain this vault presents: its TLS certificate, then the identity
    /// certificate that issued it.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.tls_cert.clone(), self.ca_cert.clone()]
    }

    /// The TLS private key, for rustls (which keeps its own copy for the connection).
    pub fn tls_key(&self) -> rustls_pki_types::PrivateKeyDer<'static> {
        rustls_pki_types::PrivateKeyDer::Pkcs8(self.tls_pkcs8.to_vec().into())
    }

    pub fn hpke_public(&self) -> [u8; 32] {
        self.hpke_public
    }

    /// The X25519 secret that data keys for this vault are sealed to.
    pub(super) fn hpke_secret(&self) -> &zeroize::Zeroizing<[u8; 32]> {
        &self.hpke_secret
    }

    /// Signs `message` in `domain`, so that no signature made for one purpose verifies
    /// for another.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, RegionError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.signing_pkcs8)
            .map_err(|_| RegionError::IdentityTampered)?;
        Ok(pair.sign(&signed_bytes(domain, message)).as_ref().to_vec())
    }

    fn public_digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [&self.ca_cert[..], &self.tls_cert[..], &self.hpke_public[..]] {
            hash.update((part.len() as u32).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }

    fn aad(vault_id: Uuid, public_digest: &[u8; 32]) -> Aad {
        Aad::new("coffer.region-identity.v1")
            .with(vault_id.as_bytes())
            .with(public_digest)
    }

    /// The stored form, private halves sealed under `key`.
    pub fn seal(&self, key: &[u8; KEY_LEN], vault_id: Uuid) -> Vec<u8> {
        let mut private = Zeroizing::new(Vec::with_capacity(256));
        for part in [&self.signing_pkcs8[..], &self.tls_pkcs8[..]] {
            private.extend_from_slice(&(part.len() as u32).to_be_bytes());
            private.extend_from_slice(part);
        }
        private.extend_from_slice(&self.hpke_secret[..]);
        let sealed = aead::seal(
            key,
            Self::aad(vault_id, &self.public_digest()).as_bytes(),
            &private,
        );
        let stored = StoredIdentity {
            version: 1,
            ca_cert: BASE64.encode(&self.ca_cert),
            tls_cert: BASE64.encode(&self.tls_cert),
            hpke_public: BASE64.encode(self.hpke_public),
            sealed: BASE64.encode(sealed),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// Opens the stored form; anything altered is [`RegionError::IdentityTampered`].
    pub fn open(stored: &[u8], key: &[u8; KEY_LEN], vault_id: Uuid) -> Result<Self, RegionError> {
        let tampered = || RegionError::IdentityTampered;
        let stored: StoredIdentity = serde_json::from_slice(stored).map_err(|_| tampered())?;
        if stored.version != 1 {
            return Err(tampered());
        }
        let decode = |text: &str| BASE64.decode(text).map_err(|_| tampered());
        let hpke_public: [u8; 32] = decode(&stored.hpke_public)?
            .try_into()
            .map_err(|_| tampered())?;
        let mut identity = Identity {
            ca_cert: CertificateDer::from(decode(&stored.ca_cert)?),
            tls_cert: CertificateDer::from(decode(&stored.tls_cert)?),
            hpke_public,
            signing_pkcs8: Zeroizing::new(Vec::new()),
            tls_pkcs8: Zeroizing::new(Vec::new()),
            hpke_secret: Zeroizing::new([0; 32]),
        };
        let private = aead::open(
            key,
            Self::aad(vault_id, &identity.public_digest()).as_bytes(),
            &decode(&stored.sealed)?,
        )
        .map_err(|_| tampered())?;
        let mut rest = &private[..];
        let mut take = |len: usize| -> Result<&[u8], RegionError> {
            if rest.len() < len {
                return Err(tampered());
            }
            let (part, after) = rest.split_at(len);
            rest = after;
            Ok(part)
        };
        for slot in [&mut identity.signing_pkcs8, &mut identity.tls_pkcs8] {
            let len_bytes: [u8; 4] = take(4)?.try_into().map_err(|_| tampered())?;
            slot.extend_from_slice(take(u32::from_be_bytes(len_bytes) as usize)?);
        }
        identity.hpke_secret.copy_from_slice(take(32)?);
        Ok(identity)
    }

    /// What this vault tells a peer about itself, signed.
    pub fn hello(&self, region: &RegionName, vault_id: Uuid) -> Result<Hello, RegionError> {
        let mut hello = Hello {
            region: region.to_string(),
            vault_id,
            hpke_public: BASE64.encode(self.hpke_public),
            signature: String::new(),
        };
        hello.signature = BASE64.encode(self.sign(HELLO_DOMAIN, &hello.signed_part())?);
        Ok(hello)
    }
}

const HELLO_DOMAIN: &str = "coffer.hello.v1";

fn signed_bytes(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(domain.len() + 1 + message.len());
    bytes.extend_from_slice(domain.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(message);
    bytes
}

/// Checks a signature made by [`Identity::sign`] with the identity whose certificate is
/// `ca_cert` (which the caller has matched to a pinned fingerprint).
pub fn verify(
    ca_cert: &CertificateDer<'_>,
    domain: &str,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Some(info) = key_info_of(ca_cert) else {
        return false;
    };
    let Some(key) = ed25519_key(&info) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&signed_bytes(domain, message), signature)
        .is_ok()
}

/// A vault's signed self-description: its region name, vault id and the public key that
/// data keys for it are sealed to.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Hello {
    pub region: String,
    pub vault_id: Uuid,
    pub hpke_public: String,
    pub signature: String,
}

impl Hello {
    /// The X25519 key data keys are sealed to for this vault, if the hello carries one.
    pub fn hpke_key(&self) -> Option<[u8; 32]> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.hpke_public)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
    }

    fn signed_part(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(self.region.len() as u32).to_be_bytes());
        bytes.extend_from_slice(self.region.as_bytes());
        bytes.extend_from_slice(self.vault_id.as_bytes());
        bytes.extend_from_slice(self.hpke_public.as_bytes());
        bytes
    }

    /// Whether the identity certified by `ca_cert` signed this hello.
    pub fn is_signed_by(&self, ca_cert: &CertificateDer<'_>) -> bool {
        let Ok(signature) = BASE64.decode(&self.signature) else {
            return false;
        };
        verify(ca_cert, HELLO_DOMAIN, &self.signed_part(), &signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> [u8; KEY_LEN] {
        [7; KEY_LEN]
    }

    #[test]
    fn an_identity_survives_sealing_and_keeps_its_fingerprint() {
        let identity = Identity::generate().unwrap();
        let vault = Uuid::new_v4();
        let stored = identity.seal(&key(), vault);
        let text = String::from_utf8_lossy(&stored);
        // No private key material in the clear.
        let pkcs8 = BASE64.encode(&identity.signing_pkcs8[..]);
        assert!(!text.contains(&pkcs8));
        let opened = Identity::open(&stored, &key(), vault).unwrap();
        assert_eq!(
            opened.fingerprint().unwrap(),
            identity.fingerprint().unwrap()
        );
        assert_eq!(opened.hpke_public(), identity.hpke_public());
        let signature = opened.sign("test", b"m").unwrap();
        assert!(verify(&identity.ca_cert, "test", b"m", &signature));
        assert!(!verify(&identity.ca_cert, "other", b"m", &signature));
    }

    #[test]
    fn an_edited_or_moved_identity_is_refused() {
        let identity = Identity::generate().unwrap();
        let vault = Uuid::new_v4();
        let stored = identity.seal(&key(), vault);
        assert!(Identity::open(&stored, &key(), Uuid::new_v4()).is_err());
        assert!(Identity::open(&stored, &[8; KEY_LEN], vault).is_err());
        // Another identity's public certificate with this one's sealed private keys.
        let other = Identity::generate().unwrap();
        let mut parsed: StoredIdentity = serde_json::from_slice(&stored).unwrap();
        parsed.ca_cert = BASE64.encode(&other.ca_cert);
        let swapped = serde_json::to_vec(&parsed).unwrap();
        assert!(matches!(
            Identity::open(&swapped, &key(), vault),
            Err(RegionError::IdentityTampered)
        ));
    }

    #[test]
    fn a_hello_verifies_only_with_its_own_identity() {
        let identity = Identity::generate().unwrap();
        let region = RegionName::parse("eu-home-1").unwrap();
        let hello = identity.hello(&region, Uuid::new_v4()).unwrap();
        assert!(hello.is_signed_by(&identity.ca_cert));
        let other = Identity::generate().unwrap();
        assert!(!hello.is_signed_by(&other.ca_cert));
        let mut renamed = hello.clone();
        renamed.region = "us-east-1".into();
        assert!(!renamed.is_signed_by(&identity.ca_cert));
    }
}
