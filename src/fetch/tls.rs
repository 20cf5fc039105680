//! The TLS client configuration: rustls with the ring provider, certificates checked against the
//! operating system's trust store (rustls-platform-verifier, which reads `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` as OpenSSL does) plus any `--cacert` file, ALPN offering HTTP/2 and HTTP/1.1.
//! `--insecure` swaps the verifier for one that accepts any certificate.
//!
//! A rejected certificate is explained here, where the certificate is at hand: the verifier's
//! own errors name the rule that failed, not what a person needs to hear (who issued it, until
//! when it was valid, which names it is for, whether it signed itself).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::error::Error;
use crate::row::{Certificate, TlsFacts};

/// The client configuration for sites (and, with other ALPN, for proxies).
pub(super) fn client_config(
    insecure: bool,
    cacert: Option<&Path>,
) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?;
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(AcceptAnything(Arc::clone(&provider)))
    } else if let Some(path) = cacert {
        let own = OwnRootsFirst::new(read_certificates(path)?, provider).map_err(Error::Tls)?;
        Arc::new(Explaining(Arc::new(own)))
    } else {
        let platform = rustls_platform_verifier::Verifier::new(provider).map_err(Error::Tls)?;
        Arc::new(Explaining(Arc::new(platform)))
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (`--cacert`): one at least, or the option is a mistake.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |why: String| Error::CaFile {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A rejected certificate in words, and what it said of itself, carried to the row inside
/// rustls's error.
#[derive(Debug)]
pub(super) struct Rejected {
    pub words: String,
    pub certificate: Option<Certificate>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words)
    }
}

/// What a finished handshake showed: the TLS version, and the leaf certificate.
pub(super) fn facts(connection: &rustls::ClientConnection) -> TlsFacts {
    let version = connection.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "TLS (other)",
    });
    let certificate = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| Leaf::parse(leaf))
        .map(Leaf::certificate);
    TlsFacts {
        version,
        certificate,
    }
}

/// What a handshake that failed on the certificate showed of it (the handshake did not finish,
/// so there is no version).
pub(super) fn rejected_facts(error: &std::io::Error) -> Option<TlsFacts> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = tls else {
        return None;
    };
    let rejected = other.0.downcast_ref::<Rejected>()?;
    Some(TlsFacts {
        version: None,
        certificate: rejected.certificate.clone(),
    })
}

impl std::error::Error for Rejected {}

/// Verifies with the platform verifier (or, with `--cacert`, [`OwnRootsFirst`]), and explains a
/// rejection with the certificate.
#[derive(Debug)]
struct Explaining(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for Explaining {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| match error {
                rustls::Error::InvalidCertificate(problem) => {
                    let leaf = Leaf::parse(end_entity);
                    let rejected = Rejected {
                        words: explain(&problem, leaf.as_ref(), server_name),
                        certificate: leaf.map(Leaf::certificate),
                    };
                    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                        Arc::new(rejected),
                    )))
                }
                other => other,
            })
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

/// `--cacert`: a site its certificates vouch for is checked against them alone; the platform
/// verifier (the system's trust store plus them) is built only when a site needs it. Reading
/// the store is most of a short run's start-up CPU (hundreds of certificate files, ~4 ms),
/// spent for nothing when the given authority signs every site, the usual reason to give one.
/// The handshake of the first site it does not sign reads the store on the event loop: a
/// one-off pause of a few milliseconds for the requests in flight then. From there on the
/// platform verifier alone checks every site.
///
/// The outcome is the platform verifier's: roots added cannot turn an accepted chain into a
/// rejected one, and a rejection always comes from the platform verifier, in its words.
#[derive(Debug)]
struct OwnRootsFirst {
    own: Arc<WebPkiServerVerifier>,
    cacert: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    platform: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl OwnRootsFirst {
    fn new(
        cacert: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<OwnRootsFirst, rustls::Error> {
        let mut roots = RootCertStore::empty();
        for certificate in &cacert {
            roots.add(certificate.clone())?;
        }
        let own =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| rustls::Error::Other(OtherError(Arc::new(e))))?;
        Ok(OwnRootsFirst {
            own,
            cacert,
            provider,
            platform: OnceLock::new(),
        })
    }

    fn platform(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        let built = self.platform.get_or_init(|| {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.cacert.iter().cloned(),
                Arc::clone(&self.provider),
            )
        });
        built.as_ref().map_err(Clone::clone)
    }
}

impl ServerCertVerifier for OwnRootsFirst {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let platform = || {
            self.platform()?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        // Once the platform verifier is built (it has the --cacert roots too), it alone
        // decides: a list of sites the given authority does not sign is not verified twice.
        if self.platform.get().is_some() {
            return platform();
        }
        self.own
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .or_else(|_| platform())
    }

    // Signatures are checked with the provider's algorithms whatever the roots: the platform
    // verifier does the same.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.own.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.own.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.own.supported_verify_schemes()
    }
}

/// What the leaf certificate says about itself, as far as a message needs it.
struct Leaf {
    subject: String,
    issuer: String,
    self_signed: bool,
    names: Vec<String>,
    not_before: Option<SystemTime>,
    not_after: Option<SystemTime>,
}

impl Leaf {
    fn parse(der: &[u8]) -> Option<Leaf> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                        GeneralName::IPAddress(bytes) => ip_text(bytes),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let time = |t: i64| {
            u64::try_from(t)
                .ok()
                .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        };
        Some(Leaf {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            names,
            not_before: time(cert.validity().not_before.timestamp()),
            not_after: time(cert.validity().not_after.timestamp()),
        })
    }

    fn certificate(self) -> Certificate {
        Certificate {
            subject: self.subject,
            issuer: self.issuer,
            not_after: self.not_after,
        }
    }
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip: std::net::IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok()?.into(),
        16 => <[u8; 16]>::try_from(bytes).ok()?.into(),
        _ => return None,
    };
    Some(ip.to_string())
}

/// One line, like curl's "SSL certificate problem: …", with what the certificate says.
fn explain(
    problem: &CertificateError,
    leaf: Option<&Leaf>,
    server_name: &ServerName<'_>,
) -> String {
    use CertificateError as C;
    let Some(leaf) = leaf else {
        return format!("the certificate was rejected ({problem:?}) and cannot be read");
    };
    let subject = &leaf.subject;
    let trust_hint = "use --cacert FILE to trust its authority, or -k to accept any certificate";
    match problem {
        C::Expired | C::ExpiredContext { .. } => format!(
            "certificate expired on {} ({subject})",
            date(leaf.not_after)
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => format!(
            "certificate is not valid before {} ({subject})",
            date(leaf.not_before)
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "certificate is not valid for '{}': it is for {} ({subject})",
            server_name.to_str(),
            if leaf.names.is_empty() {
                "no host name".to_owned()
            } else {
                leaf.names.join(", ")
            }
        ),
        // webpki's own error type is not rustls's to name, so only its debug name tells.
        other if format!("{other:?}").contains("CaUsedAsEndEntity") => format!(
            "the server presents a CA certificate as its own{} ({subject})",
            if leaf.self_signed {
                ", self-signed"
            } else {
                ""
            }
        ),
        _ if leaf.self_signed => format!("self-signed certificate ({subject}); {trust_hint}"),
        C::UnknownIssuer => format!(
            "certificate issued by an unknown authority ({}) for {subject}; {trust_hint}",
            leaf.issuer
        ),
        C::Revoked => format!("certificate has been revoked ({subject})"),
        C::BadSignature => format!(
            "certificate's signature does not verify (issued by {}) for {subject}",
            leaf.issuer
        ),
        other => format!("certificate rejected ({other:?}) for {subject}"),
    }
}

/// `2024-01-02 00:00:00 UTC`.
fn date(t: Option<SystemTime>) -> String {
    t.map_or_else(
        || "an unreadable date".to_owned(),
        |t| {
            humantime::format_rfc3339_seconds(t)
                .to_string()
                .replace('T', " ")
                .replace('Z', " UTC")
        },
    )
}

/// `--insecure`: accepts any certificate, but still checks the handshake signatures, so the
/// connection is encrypted with whoever answered.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use super::*;

    fn authority(name: &str) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let certificate = params.self_signed(&key).unwrap();
        (certificate.der().clone(), Issuer::new(params, key))
    }

    fn leaf(issuer: &Issuer<'_, KeyPair>) -> CertificateDer<'static> {
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, issuer).unwrap().der().clone()
    }

    fn verify(verifier: &OwnRootsFirst, leaf: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let name = ServerName::try_from("localhost").unwrap();
        verifier
            .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn the_system_store_is_read_only_for_a_site_the_cacert_does_not_sign() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (ours, our_issuer) = authority("our CA");
        let verifier = OwnRootsFirst::new(vec![ours], provider).unwrap();
        for _ in 0..2 {
            assert_eq!(verify(&verifier, &leaf(&our_issuer)), Ok(()));
        }
        assert!(
            verifier.platform.get().is_none(),
            "the system store was read"
        );

        // Another authority's site: the platform verifier (system store plus --cacert) decides,
        // as it would have without the shortcut.
        let (_, their_issuer) = authority("their CA");
        let theirs = verify(&verifier, &leaf(&their_issuer));
        assert!(verifier.platform.get().is_some());
        assert_eq!(
            theirs,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        );
        // From then on the platform verifier (with --cacert's roots) checks every site: ours
        // still pass, theirs still fail the same way.
        assert_eq!(verify(&verifier, &leaf(&our_issuer)), Ok(()));
        assert_eq!(verify(&verifier, &leaf(&their_issuer)), theirs);
    }
}
