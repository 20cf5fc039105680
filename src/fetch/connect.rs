//! Connect: opens one new connection, timing each phase (DNS, TCP, TLS), for the [`pool`].
//!
//! This is why fetch builds on hyper's connection API rather than a higher-level client: the
//! connection is ours, so each phase is measured where it happens instead of guessed from
//! outside, written into the request's [`Reached`] as soon as it ends (so a request that fails
//! or runs out of time later still shows how far it got), and every connection carries a
//! [`ConnInfo`] that goes with each later response it serves.
//! Proxies (see [`proxy`]) are handled here too: plain HTTP goes to the proxy in absolute form,
//! HTTPS through a CONNECT tunnel, and an `https://` proxy is itself reached over TLS (so an
//! HTTPS request through it is TLS inside TLS).
//!
//! [`proxy`]: super::proxy
//!
//! [`pool`]: super::pool

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use super::proxy::{Proxies, Proxy, bare};
use super::resolve::BoundedResolver;
use super::tls;
use crate::row::TlsFacts;

/// When a dual-stack host's first address has not answered, try the next after this long
/// (RFC 8305's "happy eyeballs").
const NEXT_ADDRESS_AFTER: Duration = Duration::from_millis(250);

/// What a connection knew when it was made, for every request it serves after the first.
#[derive(Debug)]
pub struct ConnInfo {
    /// The address connected to (the proxy's, through a proxy).
    pub remote: SocketAddr,
    /// The proxy it goes through, if any.
    pub proxy: Option<Arc<Proxy>>,
    /// `--tls-info`: the TLS with the site.
    pub tls: Option<Arc<TlsFacts>>,
}

/// How far a request's connection got: written by the connector and the pool as each phase
/// ends, so that whatever ends the request (a failure, the timeout, a stop) leaves what was
/// reached.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reached {
    /// When the name was resolved; `None` when no lookup was made (an IP address, `--resolve`)
    /// or the connection existed before the request.
    pub resolved: Option<Instant>,
    /// When the TCP connection was established (to the proxy, through one).
    pub connected: Option<Instant>,
    /// When the TLS handshake with the site finished.
    pub secured: Option<Instant>,
    /// The address connected to (the proxy's, through a proxy).
    pub remote: Option<SocketAddr>,
    /// Whether the connection existed before the request.
    pub reused: Option<bool>,
    /// HTTP/2, when the connection negotiated it (an HTTP/1 server says its version only in
    /// its response).
    pub http2: bool,
    /// `--tls-info`: what the TLS handshake with the site showed, also when it failed on the
    /// certificate.
    pub tls: Option<Arc<TlsFacts>>,
}

/// Why a connection could not be made; the fetch stage sorts these into error kinds.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve '{host}': {source}")]
    Dns { host: String, source: io::Error },
    #[error("cannot resolve '{0}': no addresses")]
    NoAddresses(String),
    #[error("{0}")]
    Tcp(io::Error),
    #[error("no connection within {}", crate::human::duration(*.0))]
    Timeout(Duration),
    #[error("TLS handshake failed")]
    Tls(#[source] io::Error),
    /// The proxy could not be reached (any of the above, on the way to it).
    #[error("cannot connect to proxy {proxy}")]
    ProxyUnreachable {
        proxy: String,
        #[source]
        source: Box<ConnectError>,
    },
    /// The proxy answered CONNECT with something other than 2xx.
    #[error("proxy {proxy} refused the tunnel to {target}: {status_line}")]
    ProxyRefused {
        proxy: String,
        target: String,
        status_line: String,
        status: u16,
    },
    /// The proxy broke the CONNECT exchange (closed, or sent no HTTP).
    #[error("proxy {proxy}: {why}")]
    ProxyBroken { proxy: String, why: String },
    #[error("the URL has no host")]
    NoHost,
}

/// Opens connections for the pool. A clone is one reference count.
#[derive(Clone)]
pub(super) struct Connector(Arc<Settings>);

struct Settings {
    resolver: BoundedResolver,
    /// For sites: ALPN offers HTTP/2 and HTTP/1.1.
    tls: TlsConnector,
    /// For `https://` proxies: ALPN offers HTTP/1.1 only, the language of proxies.
    proxy_tls: TlsConnector,
    connect_timeout: Option<Duration>,
    proxies: Option<Arc<Proxies>>,
    /// `--tls-info`: read the certificate of every new TLS connection.
    tls_info: bool,
}

impl Connector {
    pub(super) fn new(
        resolver: BoundedResolver,
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Option<Duration>,
        proxies: Option<Arc<Proxies>>,
        tls_info: bool,
    ) -> Self {
        let mut proxy_tls = (*tls).clone();
        proxy_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Connector(Arc::new(Settings {
            resolver,
            tls: TlsConnector::from(tls),
            proxy_tls: TlsConnector::from(Arc::new(proxy_tls)),
            connect_timeout,
            proxies,
            tls_info,
        }))
    }

    /// Opens a connection to `origin` (`scheme://host[:port]`), within the connect timeout,
    /// recording in `reached` each phase as it ends.
    pub(super) async fn connect(
        &self,
        origin: &str,
        reached: &mut Reached,
    ) -> Result<Conn, ConnectError> {
        let uri: Uri = origin.parse().map_err(|_| ConnectError::NoHost)?;
        let limit = self.0.connect_timeout;
        let work = self.connect_unlimited(uri, reached);
        match limit {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .map_err(|_| ConnectError::Timeout(limit))?,
            None => work.await,
        }
    }

    async fn connect_unlimited(
        &self,
        uri: Uri,
        reached: &mut Reached,
    ) -> Result<Conn, ConnectError> {
        let https = uri.scheme_str() == Some("https");
        let url_host = uri.host().ok_or(ConnectError::NoHost)?;
        let host = bare(url_host);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let proxy = self
            .0
            .proxies
            .as_ref()
            .and_then(|p| p.for_target(https, url_host, port));
        let (wire, remote) = match proxy {
            Some(proxy) => self.to_proxy(proxy, reached).await?,
            None => {
                let (tcp, remote) = self.tcp(host, port, reached).await?;
                (Either::Left(tcp), remote)
            }
        };
        let mut info = ConnInfo {
            remote,
            proxy: proxy.cloned(),
            tls: None,
        };
        if !https {
            let proxied = proxy.is_some();
            return Ok(Conn::new(Either::Left(wire), info, false, proxied));
        }
        let wire = match proxy {
            Some(proxy) => tunnel(wire, host, port, proxy).await?,
            None => wire,
        };
        let tls = match handshake(&self.0.tls, wire, host).await {
            Ok(tls) => tls,
            Err(error) => {
                if self.0.tls_info {
                    reached.tls = tls::rejected_facts(&error).map(Arc::new);
                }
                return Err(ConnectError::Tls(error));
            }
        };
        reached.secured = Some(Instant::now());
        let session = tls.get_ref().1;
        if self.0.tls_info {
            let facts = Arc::new(tls::facts(session));
            reached.tls = Some(Arc::clone(&facts));
            info.tls = Some(facts);
        }
        let h2 = session.alpn_protocol() == Some(b"h2");
        Ok(Conn::new(Either::Right(Box::new(tls)), info, h2, false))
    }

    /// Resolves (unless `host` is an address or pinned) and connects; also says to which
    /// address.
    async fn tcp(
        &self,
        host: &str,
        port: u16,
        reached: &mut Reached,
    ) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match self.0.resolver.pinned(host) {
                Some(pinned) => pinned.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
                None => {
                    let addrs = self.0.resolver.lookup(host, port).await.map_err(|source| {
                        ConnectError::Dns {
                            host: host.to_owned(),
                            source,
                        }
                    })?;
                    reached.resolved = Some(Instant::now());
                    addrs
                }
            },
        };
        if addrs.is_empty() {
            return Err(ConnectError::NoAddresses(host.to_owned()));
        }
        let (tcp, remote) = connect_any(addrs).await.map_err(ConnectError::Tcp)?;
        reached.connected = Some(Instant::now());
        reached.remote = Some(remote);
        Ok((tcp, remote))
    }

    /// A connection to the proxy itself: TCP, and TLS for an `https://` proxy.
    async fn to_proxy(
        &self,
        proxy: &Proxy,
        reached: &mut Reached,
    ) -> Result<(Wire, SocketAddr), ConnectError> {
        let unreachable = |source: ConnectError| ConnectError::ProxyUnreachable {
            proxy: proxy.name.clone(),
            source: Box::new(source),
        };
        let (tcp, remote) = self
            .tcp(&proxy.host, proxy.port, reached)
            .await
            .map_err(unreachable)?;
        if !proxy.tls {
            return Ok((Either::Left(tcp), remote));
        }
        let tls = handshake(&self.0.proxy_tls, tcp, &proxy.host)
            .await
            .map_err(|e| unreachable(ConnectError::Tls(e)))?;
        Ok((Either::Right(Box::new(tls)), remote))
    }
}

/// A TLS handshake with `host` over `io`.
async fn handshake<IO>(tls: &TlsConnector, io: IO, host: &str) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    tls.connect(name, io).await
}

/// Connects to the first address that answers, starting the next one while the previous is still
/// trying after [`NEXT_ADDRESS_AFTER`], alternating address families as RFC 8305 suggests.
async fn connect_any(addrs: Vec<SocketAddr>) -> io::Result<(TcpStream, SocketAddr)> {
    let mut queue = interleave_families(addrs).into_iter();
    let mut attempts = FuturesUnordered::new();
    let mut last_error = None;
    loop {
        if attempts.is_empty() {
            match queue.next() {
                Some(addr) => attempts.push(connect_one(addr)),
                None => {
                    return Err(
                        last_error.unwrap_or_else(|| io::Error::other("no address to connect to"))
                    );
                }
            }
        }
        tokio::select! {
            Some(result) = attempts.next() => match result {
                Ok(connected) => return Ok(connected),
                Err(e) => last_error = Some(e),
            },
            () = tokio::time::sleep(NEXT_ADDRESS_AFTER), if queue.len() > 0 => {
                if let Some(addr) = queue.next() {
                    attempts.push(connect_one(addr));
                }
            }
        }
    }
}

async fn connect_one(addr: SocketAddr) -> io::Result<(TcpStream, SocketAddr)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok((stream, addr))
}

/// Keeps the resolver's order but alternates families: v6, v4, v6, ... (or v4 first).
fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(first.len() + second.len());
    first.reverse();
    second.reverse();
    while let Some(a) = first.pop() {
        out.push(a);
        if let Some(b) = second.pop() {
            out.push(b);
        }
    }
    second.reverse();
    out.extend(second);
    out
}

/// Asks the proxy for a tunnel to `host:port` (CONNECT) and returns the stream once it is
/// open. Any answer but 2xx is the proxy's refusal, never the site's.
async fn tunnel(
    mut wire: Wire,
    host: &str,
    port: u16,
    proxy: &Proxy,
) -> Result<Wire, ConnectError> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.authorization.as_ref().and_then(|v| v.to_str().ok()) {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let broken = |why: String| ConnectError::ProxyBroken {
        proxy: proxy.name.clone(),
        why,
    };
    wire.write_all(request.as_bytes())
        .await
        .map_err(|e| broken(format!("CONNECT failed: {e}")))?;
    // Read the proxy's answer up to the blank line; anything bigger than 16 KiB is not a proxy.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = wire
            .read(&mut byte)
            .await
            .map_err(|e| broken(format!("CONNECT failed: {e}")))?;
        if head.len() > 16 * 1024 || read == 0 {
            return Err(broken(
                "the proxy closed the connection or sent no answer to CONNECT".into(),
            ));
        }
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut answer = httparse::Response::new(&mut headers);
    let parsed = answer.parse(&head);
    let (Ok(httparse::Status::Complete(_)), Some(code)) = (parsed, answer.code) else {
        let first = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or(&[]));
        return Err(broken(format!(
            "the answer to CONNECT is not HTTP: '{}'",
            first.trim()
        )));
    };
    if !(200..300).contains(&code) {
        return Err(ConnectError::ProxyRefused {
            proxy: proxy.name.clone(),
            target,
            status_line: format!(
                "HTTP/1.{} {code} {}",
                answer.version.unwrap_or(1),
                answer.reason.unwrap_or_default()
            )
            .trim_end()
            .to_owned(),
            status: code,
        });
    }
    Ok(wire)
}

/// The connection under HTTP (or under the site's TLS): TCP, or TLS to an `https://` proxy.
type Wire = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A connection as HTTP sees it: plain, or TLS with the site.
type Stream = Either<Wire, Box<TlsStream<Wire>>>;

/// A connection as hyper reads and writes it.
pub(super) type ConnIo = TokioIo<Stream>;

/// A new connection, ready for hyper's HTTP/1 or HTTP/2 handshake, and what it knew when made.
pub(super) struct Conn {
    pub io: ConnIo,
    pub info: Arc<ConnInfo>,
    /// TLS negotiated HTTP/2 by ALPN.
    pub h2: bool,
    /// Plain HTTP to a proxy, which wants requests in absolute form.
    pub proxied: bool,
}

impl Conn {
    fn new(stream: Stream, info: ConnInfo, h2: bool, proxied: bool) -> Conn {
        Conn {
            io: TokioIo::new(stream),
            info: Arc::new(info),
            h2,
            proxied,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_from_the_first() {
        let got = interleave_families(vec![
            addr("[::1]:80"),
            addr("[::2]:80"),
            addr("[::3]:80"),
            addr("127.0.0.1:80"),
        ]);
        assert_eq!(
            got,
            [
                addr("[::1]:80"),
                addr("127.0.0.1:80"),
                addr("[::2]:80"),
                addr("[::3]:80")
            ]
        );
        let v4_first = interleave_families(vec![addr("127.0.0.1:80"), addr("[::1]:80")]);
        assert_eq!(v4_first, [addr("127.0.0.1:80"), addr("[::1]:80")]);
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        assert_eq!(bare("[::1]"), "::1");
        assert_eq!(bare("a.test"), "a.test");
    }
}
