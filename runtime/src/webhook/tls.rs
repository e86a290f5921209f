//! TLS for the webhook: rustls with the aws-lc-rs provider, HTTP/2 and HTTP/1.1 by ALPN, and a
//! certificate that can be swapped while serving.
//!
//! Two sources of certificates:
//! - files given by the user (`--tls-cert`, `--tls-key`), re-read on reload;
//! - a self-managed CA and serving certificate made with rcgen, kept in a directory (`ca.crt`
//!   is what goes into the webhook configurations' `caBundle`), and renewed before expiry as
//!   Kyverno does (CA 365 days, serving certificate 150 days, renewed 15 days before expiry;
//!   all three are settings so tests can watch a rotation). Keys are ECDSA P-256: smaller and
//!   faster to handshake than Kyverno's RSA-2048 default, and accepted by the API server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The serving certificate, swappable under the server's feet.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

impl CertStore {
    pub fn new(key: CertifiedKey) -> Arc<CertStore> {
        Arc::new(CertStore { current: RwLock::new(Arc::new(key)) })
    }

    pub fn set(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
    }

    /// The DER of the certificate being served now.
    pub fn current_der(&self) -> Vec<u8> {
        let k = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        k.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }
}

/// The server's TLS settings. Cipher suites: AES-128-GCM first, then AES-256-GCM, then
/// ChaCha20-Poly1305, in the server's order rather than the client's (rustls clients ask for
/// AES-256 first): with the hardware AES and carry-less multiply instructions aws-lc uses, AES-GCM
/// is the cheapest, and AES-128 has fewer rounds. Resumption: stateless tickets (TLS 1.3 and
/// 1.2) plus the session cache, so a reconnecting API server skips the certificate signature.
pub fn server_config(store: Arc<CertStore>) -> Result<rustls::ServerConfig, String> {
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|s| suite_rank(s.suite()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    config.ticketer = aws_lc_rs::Ticketer::new().map_err(|e| format!("TLS session tickets: {e}"))?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    Ok(config)
}

fn suite_rank(suite: rustls::CipherSuite) -> u8 {
    use rustls::CipherSuite as S;
    match suite {
        S::TLS13_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384 => 1,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 2,
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 3,
        _ => 4,
    }
}

fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<CertifiedKey, String> {
    let provider = aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| format!("the TLS key does not fit the certificate: {e}"))
}

/// Reads a PEM certificate chain and key.
pub fn load_files(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    certified(chain, key_der)
}

/// Settings of the self-managed certificate mode.
#[derive(Clone, Debug)]
pub struct SelfManaged {
    pub dir: PathBuf,
    /// DNS names (and IP addresses) the serving certificate is valid for.
    pub names: Vec<String>,
    pub ca_validity: Duration,
    pub cert_validity: Duration,
    pub renew_before: Duration,
}

impl SelfManaged {
    pub fn new(dir: PathBuf, names: Vec<String>) -> SelfManaged {
        let day = Duration::from_secs(86_400);
        SelfManaged { dir, names, ca_validity: day * 365, cert_validity: day * 150, renew_before: day * 15 }
    }
}

/// The CA and the serving pair of the self-managed mode.
pub struct Authority {
    settings: SelfManaged,
    ca_key: KeyPair,
    ca_params: CertificateParams,
    ca_expires: time::OffsetDateTime,
    ca_pem: String,
    cert_expires: time::OffsetDateTime,
}

const CA_NAME: &str = "palisade-webhook-ca";

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

fn ca_params(not_after: time::OffsetDateTime) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now() - time::Duration::minutes(5);
    p.not_after = not_after;
    Ok(p)
}

impl Authority {
    /// Loads the CA from `dir` when a valid one is there (so restarts and replicas sharing the
    /// directory keep one caBundle), else makes a new one; then issues a serving certificate.
    pub fn start(settings: SelfManaged) -> Result<(Authority, CertifiedKey), String> {
        std::fs::create_dir_all(&settings.dir).map_err(|e| format!("{}: {e}", settings.dir.display()))?;
        let mut auth = match Authority::load_ca(&settings) {
            Some(a) => a,
            None => Authority::new_ca(settings)?,
        };
        let key = auth.issue()?;
        Ok((auth, key))
    }

    fn load_ca(settings: &SelfManaged) -> Option<Authority> {
        let key_pem = std::fs::read_to_string(settings.dir.join("ca.key")).ok()?;
        let ca_pem = std::fs::read_to_string(settings.dir.join("ca.crt")).ok()?;
        let expiry: i64 = std::fs::read_to_string(settings.dir.join("ca.expiry")).ok()?.trim().parse().ok()?;
        let ca_expires = time::OffsetDateTime::from_unix_timestamp(expiry).ok()?;
        if ca_expires - span(settings.renew_before) <= now() {
            return None;
        }
        let ca_key = KeyPair::from_pem(&key_pem).ok()?;
        // Signing needs only the CA's name and key; the parameters are rebuilt from them.
        let ca_params = ca_params(ca_expires).ok()?;
        Some(Authority { settings: settings.clone(), ca_key, ca_params, ca_expires, ca_pem, cert_expires: now() })
    }

    fn new_ca(settings: SelfManaged) -> Result<Authority, String> {
        let ca_key = KeyPair::generate().map_err(|e| format!("CA key: {e}"))?;
        let ca_expires = now() + span(settings.ca_validity);
        let params = ca_params(ca_expires)?;
        let cert = params.self_signed(&ca_key).map_err(|e| format!("CA certificate: {e}"))?;
        let ca_pem = cert.pem();
        write_private(&settings.dir.join("ca.key"), &ca_key.serialize_pem())?;
        std::fs::write(settings.dir.join("ca.crt"), &ca_pem).map_err(|e| format!("ca.crt: {e}"))?;
        std::fs::write(settings.dir.join("ca.expiry"), ca_expires.unix_timestamp().to_string())
            .map_err(|e| format!("ca.expiry: {e}"))?;
        Ok(Authority { settings, ca_key, ca_params: params, ca_expires, ca_pem, cert_expires: now() })
    }

    /// Issues a new serving certificate and writes it next to the CA.
    fn issue(&mut self) -> Result<CertifiedKey, String> {
        let mut params = CertificateParams::new(self.settings.names.clone()).map_err(|e| format!("certificate names: {e}"))?;
        params.distinguished_name.push(DnType::CommonName, self.settings.names.first().map(String::as_str).unwrap_or("palisade"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = now() - time::Duration::minutes(5);
        // A serving certificate never outlives its CA.
        let expires = (now() + span(self.settings.cert_validity)).min(self.ca_expires);
        params.not_after = expires;
        let key = KeyPair::generate().map_err(|e| format!("serving key: {e}"))?;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).map_err(|e| format!("serving certificate: {e}"))?;
        std::fs::write(self.settings.dir.join("tls.crt"), cert.pem()).map_err(|e| format!("tls.crt: {e}"))?;
        write_private(&self.settings.dir.join("tls.key"), &key.serialize_pem())?;
        self.cert_expires = expires;
        let ca_der = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).map_err(|e| format!("ca.crt: {e}"))?;
        let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| format!("serving key: {e}"))?;
        certified(vec![cert.der().clone(), ca_der], key_der)
    }

    /// Renews what is close to expiry: the CA (and with it the serving certificate) or just the
    /// serving certificate. Returns the new serving key when something changed.
    pub fn renew_if_due(&mut self) -> Result<Option<CertifiedKey>, String> {
        let soon = now() + span(self.settings.renew_before);
        if self.ca_expires <= soon {
            let fresh = Authority::new_ca(self.settings.clone())?;
            *self = fresh;
            return self.issue().map(Some);
        }
        if self.cert_expires <= soon {
            return self.issue().map(Some);
        }
        Ok(None)
    }

    /// How often to look at the expiry dates: a tenth of the renewal window, at most 12 hours.
    pub fn check_interval(&self) -> Duration {
        (self.settings.renew_before / 10).clamp(Duration::from_millis(100), Duration::from_secs(12 * 3600))
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConnection};

    /// Moves every pending TLS record from one side to the other.
    fn pump(from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>, to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>) -> bool {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
        !buf.is_empty()
    }

    fn connect(client: &Arc<ClientConfig>, server: &Arc<rustls::ServerConfig>) -> (Option<HandshakeKind>, Option<rustls::CipherSuite>) {
        let mut c = ClientConnection::new(client.clone(), rustls::pki_types::ServerName::try_from("localhost").unwrap()).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        for _ in 0..10 {
            let moved = pump(&mut c, &mut s) | pump(&mut s, &mut c);
            if !moved && !c.is_handshaking() {
                break;
            }
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        (c.handshake_kind(), c.negotiated_cipher_suite().map(|s| s.suite()))
    }

    #[test]
    fn aes_128_gcm_and_resumed_sessions() {
        let dir = std::env::temp_dir().join(format!("palisade-tls-test-{}", std::process::id()));
        let (auth, key) = Authority::start(SelfManaged::new(dir.clone(), vec!["localhost".into()])).unwrap();
        let server = Arc::new(server_config(CertStore::new(key)).unwrap());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(auth.ca_pem().as_bytes()).unwrap()).unwrap();
        // The client prefers AES-256 (rustls' default order); the server's order wins.
        let client = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(connect(&client, &server), (Some(HandshakeKind::Full), Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)));
        assert_eq!(connect(&client, &server).0, Some(HandshakeKind::Resumed));
    }
}
