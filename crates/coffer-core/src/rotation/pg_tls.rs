//! How the PostgreSQL rotator protects its connection, with libpq's `sslmode` names.
//!
//! The rotator sends a new password's SCRAM verifier and logs in with passwords, so the
//! connection matters. `verify-full` (the CA given when the rotator is saved, and the
//! host name in the secret) is what to use; `prefer` (libpq's default, and what rotators
//! saved before this choice existed get) uses TLS when the server offers it but checks
//! nothing, so an active attacker can still read the login. Status output says which.
//!
//! The CA certificates are copied into the rotator's configuration when it is saved
//! (which is MACed with the rest of the configuration), so editing the CA file later
//! cannot change whom the rotator trusts.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::crypto::tls_provider as provider;

/// libpq's `sslmode`, minus `allow` (plain text first, TLS only if refused: never useful
/// for a rotator).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgSslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, with no check of who the server is.
    #[default]
    Prefer,
    /// TLS always, with no check of who the server is.
    Require,
    /// TLS, with a server certificate signed by the given CA (any host name).
    VerifyCa,
    /// TLS, with a server certificate signed by the given CA for the secret's host.
    VerifyFull,
}

impl PgSslMode {
    pub fn parse(text: &str) -> Result<PgSslMode, String> {
        match text {
            "disable" => Ok(PgSslMode::Disable),
            "prefer" => Ok(PgSslMode::Prefer),
            "require" => Ok(PgSslMode::Require),
            "verify-ca" => Ok(PgSslMode::VerifyCa),
            "verify-full" => Ok(PgSslMode::VerifyFull),
            other => Err(format!(
                "{other:?} is not an sslmode; use disable, prefer, require, verify-ca or verify-full"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PgSslMode::Disable => "disable",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        }
    }

    pub fn verifies(self) -> bool {
        matches!(self, PgSslMode::VerifyCa | PgSslMode::VerifyFull)
    }

    /// What the connection is, in words for status output.
    pub fn describe(self) -> &'static str {
        match self {
            PgSslMode::Disable => "unencrypted (sslmode disable)",
            PgSslMode::Prefer => {
                "unencrypted if the server offers no TLS, and the server is not verified (sslmode prefer); use verify-full with the server's CA"
            }
            PgSslMode::Require => {
                "TLS, but the server is not verified (sslmode require); use verify-full with the server's CA"
            }
            PgSslMode::VerifyCa => "TLS, server certificate checked against the CA, not its host name (sslmode verify-ca)",
            PgSslMode::VerifyFull => "TLS, server certificate and host name verified (sslmode verify-full)",
        }
    }
}

impl std::fmt::Display for PgSslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks the mode and CA together, as they are saved: verify modes need a CA, others
/// must not get one (it would be silently unused), and the CA must hold certificates.
pub fn check(mode: PgSslMode, ca_pem: Option<&str>) -> Result<(), String> {
    match (mode.verifies(), ca_pem) {
        (true, None) => Err(format!(
            "sslmode {mode} needs the CA certificate that signed the server's certificate (--pg-ca-file FILE)"
        )),
        (false, Some(_)) => Err(format!(
            "a CA certificate is only used with sslmode verify-ca or verify-full, not {mode}; drop --pg-ca-file or choose verify-full"
        )),
        (true, Some(pem)) => roots(pem).map(|_| ()),
        (false, None) => Ok(()),
    }
}

/// The certificates in `pem`; an error if there are none or one is malformed.
fn roots(pem: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the CA file is not valid PEM: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("the CA file holds a certificate that cannot be used: {e}"))?;
    }
    if store.is_empty() {
        return Err(
            "the CA file holds no certificate (expected PEM with -----BEGIN CERTIFICATE-----)"
                .into(),
        );
    }
    Ok(store)
}

/// The rustls client configuration for a mode that uses TLS.
pub fn client_config(mode: PgSslMode, ca_pem: Option<&str>) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => {
            Arc::new(Unverified(provider()))
        }
        PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
            let roots = roots(ca_pem.ok_or("no CA certificate for a verifying sslmode")?)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("cannot use the CA certificate: {e}"))?;
            if mode == PgSslMode::VerifyFull {
                webpki
            } else {
                Arc::new(AnyName(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `prefer` and `require`: TLS against eavesdroppers only, as libpq does. The handshake
/// signatures are still checked, so the server at least holds its certificate's key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the name in the certificate is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_as_libpq_names() {
        for name in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(PgSslMode::parse(name).unwrap().as_str(), name);
        }
        let err = PgSslMode::parse("allow").unwrap_err();
        assert!(err.contains("verify-full"), "{err}");
        // Saved before the choice existed: prefer, as libpq.
        assert_eq!(PgSslMode::default(), PgSslMode::Prefer);
    }

    #[test]
    fn the_ca_goes_with_the_verifying_modes_only() {
        assert!(check(PgSslMode::VerifyFull, None)
            .unwrap_err()
            .contains("--pg-ca-file"));
        assert!(check(PgSslMode::Require, Some("x"))
            .unwrap_err()
            .contains("only used with"));
        assert!(check(PgSslMode::Disable, None).is_ok());
        let garbage = check(PgSslMode::VerifyFull, Some("not a certificate"));
        assert!(garbage.unwrap_err().contains("no certificate"));
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(check(PgSslMode::VerifyCa, Some(broken)).is_err());
    }

    #[test]
    fn status_words_say_when_it_may_be_unencrypted() {
        assert!(PgSslMode::Disable.describe().starts_with("unencrypted"));
        assert!(PgSslMode::Prefer.describe().starts_with("unencrypted if"));
        assert!(PgSslMode::VerifyFull
            .describe()
            .contains("host name verified"));
    }
}
