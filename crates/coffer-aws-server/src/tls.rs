//! TLS for the API on an address other than loopback: access-key signatures and secret
//! values must not cross a network in the clear.
//!
//! Either the user gives a certificate chain and key (PEM files), or Coffer makes a small
//! CA and a server certificate it issues. The generated keys are derived from a seed the
//! unlocked vault derives from its own key ([`coffer_core::Vault::aws_tls_seed`]), and
//! Ed25519 signatures are deterministic: the same vault and server names give the same
//! certificates at every start, so a client pins the CA once, and no private key is ever
//! written anywhere. The CA is what clients trust (`--aws-tls-ca-out`), because WebPKI
//! clients (rustls, the Rust SDK) do not accept a self-signed server certificate as its
//! own anchor; OpenSSL clients (boto3, the AWS CLI) take the same file.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ED25519,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate file {path}: {cause}; give a PEM file with the server certificate first, then any intermediates")]
    Certificate { path: String, cause: String },
    #[error("cannot read the TLS private key file {path}: {cause}; give a PEM file with one PKCS#8, PKCS#1 or SEC1 private key")]
    Key { path: String, cause: String },
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Config(String),
    #[error("cannot make the API's TLS certificate: {0}")]
    Generate(String),
}

/// A server TLS configuration, and what to tell its clients.
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the certificate clients pin (the generated CA, or the given server
    /// certificate), as `AB:CD:…`, the form `openssl x509 -fingerprint -sha256` prints.
    pub fingerprint: String,
    /// The generated CA certificate (PEM), for clients to trust; `None` for given files.
    pub ca_pem: Option<String>,
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = ServerConfig::builder_with_provider(coffer_core::crypto::tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// TLS from the user's PEM files.
pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert.display().to_string(),
            cause: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::Certificate {
            path: cert.display().to_string(),
            cause: "it holds no certificate".into(),
        });
    };
    let fingerprint = fingerprint(leaf);
    // The error of a key file says what kind of file it was, never what it held.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        cause: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "it holds no private key".into(),
            rustls_pki_types::pem::Error::Io(io) => io.to_string(),
            _ => "it is not a PEM private key".into(),
        },
    })?;
    Ok(ServerTls {
        config: server_config(chain, key)?,
        fingerprint,
        ca_pem: None,
    })
}

/// An Ed25519 key pair from 32 seed bytes (PKCS#8 v1, which rcgen and rustls both take).
fn ed25519(seed: &[u8; 32]) -> Result<(KeyPair, PrivateKeyDer<'static>), TlsError> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed);
    let pkcs8 = PrivatePkcs8KeyDer::from(der.to_vec());
    let pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_ED25519)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((pair, PrivateKeyDer::Pkcs8(pkcs8)))
}

/// One of the two generated keys' seeds, from the vault's.
fn sub_seed(seed: &[u8; 32], purpose: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(
        Sha256::new()
            .chain_update(purpose)
            .chain_update(seed)
            .finalize()
            .into(),
    )
}

/// TLS with a CA and server certificate made from `seed` for `names` (host names or IP
/// addresses the clients connect to).
pub fn generated(seed: &[u8; 32], names: &[String]) -> Result<ServerTls, TlsError> {
    let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (ca_key, _) = ed25519(&sub_seed(seed, b"coffer.aws-api-tls.ca.v1\0"))?;
    let (leaf_key, leaf_der) = ed25519(&sub_seed(seed, b"coffer.aws-api-tls.server.v1\0"))?;

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "Coffer AWS-compatible API CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca.serial_number = Some(SerialNumber::from(vec![1]));
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(9999, 12, 31);
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;

    let mut leaf = CertificateParams::new(names.to_vec()).map_err(fail)?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "Coffer AWS-compatible API");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.serial_number = Some(SerialNumber::from(vec![2]));
    leaf.not_before = rcgen::date_time_ymd(2024, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(9999, 12, 31);
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(fail)?;

    let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    Ok(ServerTls {
        config: server_config(chain, leaf_der)?,
        fingerprint: fingerprint(ca_cert.der()),
        ca_pem: Some(ca_cert.pem()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_certificate_is_the_same_at_every_start() {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let first = generated(&[7; 32], &names).unwrap();
        let again = generated(&[7; 32], &names).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.ca_pem, again.ca_pem);
        let other = generated(&[8; 32], &names).unwrap();
        assert_ne!(first.fingerprint, other.fingerprint);
    }

    #[test]
    fn a_given_certificate_and_key_are_served_and_fingerprinted() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let cert = CertificateParams::new(vec!["api.example.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let tls = from_files(&cert_file, &key_file).unwrap();
        assert_eq!(tls.fingerprint, fingerprint(cert.der()));
        assert!(tls.ca_pem.is_none());
        // A key that is not the certificate's is refused, naming no key material.
        let other = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        std::fs::write(&key_file, other.serialize_pem()).unwrap();
        let error = from_files(&cert_file, &key_file).err().unwrap();
        assert!(
            error.to_string().contains("cannot be used together"),
            "{error}"
        );
    }

    #[test]
    fn unreadable_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let error = from_files(&empty, &empty).err().unwrap();
        assert!(
            error.to_string().contains("holds no certificate"),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        assert!(from_files(&missing, &missing).is_err());
    }
}
