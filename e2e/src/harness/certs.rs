//! The certificates a local API server needs: a CA, a serving certificate for loopback, an admin
//! client certificate in `system:masters`, and the service-account signing key.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::error::HarnessError;

/// PEM files written for one environment.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA certificate (client CA and the serving certificate's issuer).
    pub ca_cert: PathBuf,
    /// Serving certificate for `127.0.0.1` and `localhost`.
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
    /// Service-account signing key (private).
    pub sa_key: PathBuf,
    /// Service-account verification key (public).
    pub sa_pub: PathBuf,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Admin client certificate, PEM (`CN=capmaas-admin, O=system:masters`).
    pub admin_cert_pem: String,
    /// Admin client key, PEM.
    pub admin_key_pem: String,
}

fn write(path: &Path, content: &str) -> Result<(), HarnessError> {
    std::fs::write(path, content).map_err(HarnessError::io("writing", path))
}

/// A certificate signed by `issuer`, with the given subject and names.
fn leaf(
    issuer: &CertifiedIssuer<'_, KeyPair>,
    common_name: &str,
    organization: Option<&str>,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), HarnessError> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
    }
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A CA that signs serving certificates for loopback names (the API server's, and the webhook
/// server of the Cluster API manager).
pub struct LoopbackCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl LoopbackCa {
    /// A fresh CA.
    pub fn new(name: &str) -> Result<Self, HarnessError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A serving certificate and key (PEM) for `127.0.0.1`, `::1` and `localhost`.
    pub fn serving(&self, common_name: &str) -> Result<(String, String), HarnessError> {
        leaf(
            &self.issuer,
            common_name,
            None,
            vec![
                SanType::IpAddress([127, 0, 0, 1].into()),
                SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
                SanType::DnsName(
                    "localhost"
                        .try_into()
                        .map_err(|e: rcgen::Error| HarnessError::Certs(e))?,
                ),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate and key (PEM) for a user in a group.
    pub fn client(&self, user: &str, group: &str) -> Result<(String, String), HarnessError> {
        leaf(
            &self.issuer,
            user,
            Some(group),
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}

/// Generates every certificate the API server needs into `dir`.
pub fn generate(dir: &Path) -> Result<CertFiles, HarnessError> {
    let ca = LoopbackCa::new("capmaas-e2e-ca")?;
    let (serving_pem, serving_key_pem) = ca.serving("kube-apiserver")?;
    let (admin_cert_pem, admin_key_pem) = ca.client("capmaas-admin", "system:masters")?;
    let sa = KeyPair::generate()?;

    let files = CertFiles {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
        ca_pem: ca.pem(),
        admin_cert_pem,
        admin_key_pem,
    };
    write(&files.ca_cert, &files.ca_pem)?;
    write(&files.serving_cert, &serving_pem)?;
    write(&files.serving_key, &serving_key_pem)?;
    write(&files.sa_key, &sa.serialize_pem())?;
    write(&files.sa_pub, &sa.public_key_pem())?;
    Ok(files)
}
