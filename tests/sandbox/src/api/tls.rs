//! The sandbox's own certificate authority and serving certificate, made fresh at every start.
//!
//! Clients (kubectl, kube-rs) verify the server against the CA written into the kubeconfig as
//! `certificate-authority-data`, exactly as with a real cluster; nothing runs with
//! `insecure-skip-tls-verify`.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA (PEM, for kubeconfigs) and the rustls config serving a certificate it signed.
pub struct ServingTls {
    pub ca_pem: String,
    pub config: Arc<ServerConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the sandbox certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS server config: {0}")]
    Config(#[from] rustls::Error),
}

/// Make a CA and a server certificate for `127.0.0.1` and `localhost`.
pub fn generate() -> Result<ServingTls, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, "kube-sandbox-ca");
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer)?;

    let chain = vec![
        CertificateDer::from(server_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(Arc::new(as_go_serves()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // The server picks, as Go's does (crypto/tls), not the client's first choice.
    config.ignore_client_order = true;
    // HTTP/1.1 only: Go clients fall back from h2 when it is not offered, and websocket
    // upgrades need HTTP/1.1 anyway.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServingTls {
        ca_pem,
        config: Arc::new(config),
    })
}

/// The cipher suites in the order the kube-apiserver's TLS stack (Go's crypto/tls, on a CPU
/// with AES instructions) prefers them: AES-128-GCM first. rustls's own order starts with
/// AES-256-GCM, which would make every byte a client of the sandbox receives costlier to
/// both sides than from a cluster.
fn as_go_serves() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite, default_provider};
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..default_provider()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::{CipherSuite, ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    /// A client whose first choice is AES-256-GCM (rustls's order, kube-rs's) still gets
    /// AES-128-GCM, as from a kube-apiserver.
    #[test]
    fn the_server_picks_aes_128_gcm_whatever_the_client_prefers() {
        let tls = generate().expect("certificates");
        let mut roots = RootCertStore::empty();
        let ca = rustls::pki_types::pem::PemObject::from_pem_slice(tls.ca_pem.as_bytes())
            .expect("the CA's PEM");
        roots.add(ca).expect("the CA");
        let client_config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        assert_eq!(
            client_config.crypto_provider().cipher_suites[0].suite(),
            CipherSuite::TLS13_AES_256_GCM_SHA384,
            "the client prefers AES-256"
        );
        let name = ServerName::try_from("127.0.0.1").expect("a name");
        let mut client = ClientConnection::new(Arc::new(client_config), name).expect("client");
        let mut server = ServerConnection::new(Arc::clone(&tls.config)).expect("server");
        for _ in 0..10 {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).expect("client writes");
            server.read_tls(&mut &bytes[..]).expect("server reads");
            server.process_new_packets().expect("server processes");
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).expect("server writes");
            client.read_tls(&mut &bytes[..]).expect("client reads");
            client.process_new_packets().expect("client processes");
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(!client.is_handshaking(), "the handshake completes");
        assert_eq!(
            client.negotiated_cipher_suite().map(|s| s.suite()),
            Some(CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }
}
