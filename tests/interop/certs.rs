//! A private PKI for the real servers, made fresh for each test with rcgen: a CA, leaves it
//! signed (good, expired, for another name), a self-signed leaf, and the CA's own certificate to
//! be served as if it were a leaf. Written as PEM files that nginx and squid read.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

/// The names every good certificate here is valid for.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate and its key, as PEM files.
#[derive(Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Pki {
    /// The CA certificate (PEM), for `--cacert` or `SSL_CERT_FILE`.
    pub ca: PathBuf,
    /// Signed by the CA, valid now for [`LOCAL_NAMES`].
    pub good: Pair,
    /// Signed by the CA for [`LOCAL_NAMES`], expired on 2024-01-02.
    pub expired: Pair,
    /// Signed by the CA, valid now, but for `other.test` and `www.other.test` only.
    pub wrong_name: Pair,
    /// Valid now for [`LOCAL_NAMES`], signed by its own key.
    pub self_signed: Pair,
    /// The CA's own certificate and key, served as a leaf.
    pub ca_as_leaf: Pair,
}

impl Pki {
    /// Writes every certificate into `dir`.
    pub fn create(dir: &Path) -> Pki {
        Pki::with_authority(dir, "fetch interop test CA")
    }

    /// Another PKI, in `dir`, whose CA is called `name`.
    pub fn with_authority(dir: &Path, name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let ca_as_leaf = write_pair(dir, "ca-as-leaf", &ca_cert.pem(), &ca_key);
        let issuer = Issuer::new(ca_params, ca_key);

        let signed = |name: &str, names: &[&str], expired: bool| {
            let key = KeyPair::generate().unwrap();
            let mut params = leaf_params(names, name);
            if expired {
                params.not_before = date_time_ymd(2023, 1, 1);
                params.not_after = date_time_ymd(2024, 1, 2);
            }
            let cert = params.signed_by(&key, &issuer).unwrap();
            write_pair(dir, name, &cert.pem(), &key)
        };
        let good = signed("good", &LOCAL_NAMES, false);
        let expired = signed("expired", &LOCAL_NAMES, true);
        let wrong_name = signed("wrong-name", &["other.test", "www.other.test"], false);

        let own_key = KeyPair::generate().unwrap();
        let own = leaf_params(&LOCAL_NAMES, "self-signed")
            .self_signed(&own_key)
            .unwrap();
        let self_signed = write_pair(dir, "self-signed", &own.pem(), &own_key);
        Pki {
            ca,
            good,
            expired,
            wrong_name,
            self_signed,
            ca_as_leaf,
        }
    }
}

fn leaf_params(names: &[&str], common_name: &str) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("fetch interop {common_name}"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    params
}

fn write_pair(dir: &Path, name: &str, cert_pem: &str, key: &KeyPair) -> Pair {
    let pair = Pair {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&pair.cert, cert_pem).unwrap();
    std::fs::write(&pair.key, key.serialize_pem()).unwrap();
    pair
}
