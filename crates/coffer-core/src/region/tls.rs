//! TLS 1.3 between peers, mutually authenticated by pinned fingerprints.
//!
//! There is no certificate authority: each side checks that the other presented a
//! certificate chain of exactly [TLS certificate, identity certificate], that the
//! identity certificate's key hashes to a fingerprint it pinned at pairing, and then has
//! rustls's own WebPKI verifier check the TLS certificate against that identity
//! certificate alone. What is home-made here is only the choice of trust anchor.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::identity::{fingerprint_of, PEER_SERVER_NAME};
use super::{Fingerprint, Identity, RegionError};

/// The only application protocol peers speak.
pub const ALPN_H2: &[u8] = b"h2";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

fn refuse(message: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal(
        message,
    )))))
}

/// The identity certificate of a presented chain and its fingerprint.
fn identity_of<'a>(
    intermediates: &'a [CertificateDer<'a>],
) -> Result<(&'a CertificateDer<'a>, Fingerprint), rustls::Error> {
    match intermediates {
        [ca] => fingerprint_of(ca)
            .map(|fp| (ca, fp))
            .ok_or_else(|| refuse("the peer's identity certificate cannot be read".into())),
        _ => Err(refuse(
            "the peer did not present a Coffer identity (two certificates)".into(),
        )),
    }
}

fn anchored_on(ca: &CertificateDer<'_>) -> Result<Arc<RootCertStore>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned())?;
    Ok(Arc::new(roots))
}

/// The client's check of the server: exactly one pinned fingerprint.
#[derive(Debug)]
pub struct PinnedServer {
    expected: Fingerprint,
    provider: Arc<CryptoProvider>,
    /// What the server presented, so a mismatch can be reported with both fingerprints.
    presented: Mutex<Option<Fingerprint>>,
}

impl PinnedServer {
    pub fn presented(&self) -> Option<Fingerprint> {
        self.presented.lock().ok().and_then(|seen| *seen)
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (ca, fingerprint) = identity_of(intermediates)?;
        if let Ok(mut presented) = self.presented.lock() {
            *presented = Some(fingerprint);
        }
        if fingerprint != self.expected {
            return Err(refuse(format!(
                "the peer presented fingerprint {fingerprint}, not the pinned {}",
                self.expected
            )));
        }
        let name = ServerName::try_from(PEER_SERVER_NAME)
            .map_err(|_| refuse("internal: bad peer name".into()))?;
        WebPkiServerVerifier::builder_with_provider(anchored_on(ca)?, Arc::clone(&self.provider))
            .build()
            .map_err(|e| refuse(e.to_string()))?
            .verify_server_cert(end_entity, &[], &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("peers speak TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Which fingerprints a listening vault accepts: read afresh for every connection, so
/// pairing or removing a peer takes effect without restarting the daemon.
pub type PinnedSet = Arc<dyn Fn() -> Vec<(String, Fingerprint)> + Send + Sync>;

/// The server's check of clients: any pinned fingerprint.
pub struct PinnedClients {
    pinned: PinnedSet,
    own: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for PinnedClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedClients").finish_non_exhaustive()
    }
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let (ca, fingerprint) = identity_of(intermediates)?;
        let pinned = (self.pinned)();
        if !pinned.iter().any(|(_, fp)| *fp == fingerprint) {
            let paired = if pinned.is_empty() {
                "no region is paired here".to_owned()
            } else {
                let list: Vec<String> = pinned
                    .iter()
                    .map(|(name, fp)| format!("{name} = {fp}"))
                    .collect();
                format!("paired here: {}", list.join(", "))
            };
            return Err(refuse(format!(
                "refused a peer with fingerprint {fingerprint}: it is not paired with this vault (fingerprint {}; {paired}); to pair it run `coffer region add NAME --url https://ITS-HOST:PORT --fingerprint {fingerprint}`",
                self.own
            )));
        }
        WebPkiClientVerifier::builder_with_provider(anchored_on(ca)?, Arc::clone(&self.provider))
            .build()
            .map_err(|e| refuse(e.to_string()))?
            .verify_client_cert(end_entity, &[], now)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("peers speak TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn config_error(error: rustls::Error) -> RegionError {
    RegionError::Certificate {
        reason: error.to_string(),
    }
}

/// A client configuration that presents `identity` and accepts only `expected`.
pub fn client_config(
    identity: &Identity,
    expected: Fingerprint,
) -> Result<(ClientConfig, Arc<PinnedServer>), RegionError> {
    let provider = crate::crypto::tls_provider();
    let verifier = Arc::new(PinnedServer {
        expected,
        provider: Arc::clone(&provider),
        presented: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_auth_cert(identity.chain(), identity.tls_key())
        .map_err(config_error)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok((config, verifier))
}

/// A server configuration that presents `identity` and accepts clients in `pinned`.
pub fn server_config(identity: &Identity, pinned: PinnedSet) -> Result<ServerConfig, RegionError> {
    server_config_using(identity, pinned, crate::crypto::tls_provider())
}

/// [`server_config`] with a provider of the caller's choosing: how the tests stand in for
/// an older peer that has no post-quantum key exchange.
pub(crate) fn server_config_using(
    identity: &Identity,
    pinned: PinnedSet,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<ServerConfig, RegionError> {
    let verifier = Arc::new(PinnedClients {
        pinned,
        own: identity.fingerprint()?,
        provider: Arc::clone(&provider),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain(), identity.tls_key())
        .map_err(config_error)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}
