//! A MAAS behind a private CA: a TLS front on loopback that terminates with a certificate of a
//! fresh CA and forwards the bytes to the simulator's plain HTTP port, as a reverse proxy in
//! front of a real MAAS does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::certs::LoopbackCa;
use super::error::HarnessError;

/// The running front: its address, the CA that signed its certificate, and its task.
pub struct TlsFront {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA certificate, PEM (what a client must trust).
    pub ca_pem: String,
    handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Starts a front for `backend` (a plain TCP address).
    pub async fn start(backend: SocketAddr) -> Result<Self, HarnessError> {
        let ca = LoopbackCa::new("capmaas-e2e-private-maas-ca")?;
        let (cert_pem, key_pem) = ca.serving("maas")?;
        let tls = |e: tokio_rustls::rustls::pki_types::pem::Error| {
            HarnessError::Tools(format!("TLS front key material: {e}"))
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(tls)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls)?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| HarnessError::Tools(format!("TLS front config: {e}")))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding", "the TLS front"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("reading", "the TLS front's address"))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, acceptor, backend, handshakes.clone()));
        Ok(TlsFront {
            addr,
            ca_pem: ca.pem(),
            handshakes,
            task,
        })
    }

    /// How many TLS handshakes completed (connections a client trusted).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// The MAAS URL through the front.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/MAAS/", self.addr.port())
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    backend: SocketAddr,
    handshakes: Arc<AtomicUsize>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, handshakes) = (acceptor.clone(), handshakes.clone());
        tokio::spawn(async move {
            // A client that refuses our certificate ends its own handshake: nothing to report.
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            handshakes.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut plain) = TcpStream::connect(backend).await {
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            }
        });
    }
}
