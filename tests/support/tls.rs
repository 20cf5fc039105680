//! An HTTPS server for tests on 127.0.0.1 with a self-signed certificate (so clients that verify
//! certificates must refuse it) that offers HTTP/2 and HTTP/1.1 by ALPN.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use super::server::{Stats, routes};

pub struct TlsServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

/// A TLS acceptor with a fresh self-signed certificate for localhost and 127.0.0.1, offering
/// `alpn`.
fn acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

impl TlsServer {
    pub fn start() -> TlsServer {
        let acceptor = acceptor(&[b"h2", b"http/1.1"]);
        let stats = Arc::new(Stats::default());
        let app = routes(Arc::clone(&stats));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    let service = TowerToHyperService::new(app.clone());
                    tokio::spawn(async move {
                        // A client that rejects our certificate ends the handshake: fine.
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        TlsServer {
            addr: addr_rx.recv().unwrap(),
            stats,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// An HTTP/2-only server (TLS, ALPN h2) that answers the first `refuse` streams of every
/// connection with RST_STREAM(REFUSED_STREAM), as nginx does for streams beyond its limit that
/// arrive before the client has read its SETTINGS, and every later one with 200 `ok`.
pub struct RefusingH2Server {
    pub addr: SocketAddr,
    /// Streams refused, and streams answered.
    pub refused: Arc<AtomicUsize>,
    pub answered: Arc<AtomicUsize>,
}

impl RefusingH2Server {
    pub fn start(refuse: usize) -> RefusingH2Server {
        let acceptor = acceptor(&[b"h2"]);
        let refused = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let counters = (Arc::clone(&refused), Arc::clone(&answered));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let (refused, answered) = (Arc::clone(&counters.0), Arc::clone(&counters.1));
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Ok(mut h2) = h2::server::handshake(tls).await else {
                            return;
                        };
                        let mut streams = 0;
                        while let Some(Ok((_request, mut respond))) = h2.accept().await {
                            streams += 1;
                            if streams <= refuse {
                                respond.send_reset(h2::Reason::REFUSED_STREAM);
                                refused.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            let response = http::Response::builder()
                                .header("content-type", "text/plain")
                                .body(())
                                .unwrap();
                            if let Ok(mut body) = respond.send_response(response, false) {
                                let _ = body.send_data(bytes::Bytes::from_static(b"ok\n"), true);
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    });
                }
            });
        });
        RefusingH2Server {
            addr: addr_rx.recv().unwrap(),
            refused,
            answered,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}
