//! Connect: opens one new connection, timing each phase (DNS, TCP, TLS), for the [`pool`].
//!
//! This is why fetch builds on hyper's connection API rather than a higher-level client: the
//! connection is ours, so each phase is measured where it happens instead of guessed from
//! outside, and every connection carries a [`ConnInfo`] that goes with each response it serves.
//! Proxies (`--proxy`, or the usual environment variables) are handled here too: plain HTTP
//! through the proxy in absolute form, HTTPS through a CONNECT tunnel.
//!
//! [`pool`]: super::pool

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::resolve::BoundedResolver;

/// When a dual-stack host's first address has not answered, try the next after this long
/// (RFC 8305's "happy eyeballs").
const NEXT_ADDRESS_AFTER: Duration = Duration::from_millis(250);

/// What a connection knew when it was made.
#[derive(Debug)]
pub struct ConnInfo {
    /// When the name was resolved; `None` when no lookup was made (an IP address, `--resolve`).
    pub resolved: Option<Instant>,
    /// When the TCP connection was established.
    pub connected: Instant,
    /// When the TLS handshake finished; `None` for plain HTTP.
    pub secured: Option<Instant>,
    /// The address connected to (the proxy's, through a proxy).
    pub remote: SocketAddr,
    /// Responses received on it so far (counted by the pool): a server that retires a
    /// connection after serving on it is making progress, one that serves nothing is not.
    pub served: AtomicU32,
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
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("proxy: {0}")]
    Proxy(String),
    #[error("the URL has no host")]
    NoHost,
}

/// The connector hyper's pool calls for each new connection. hyper clones it for every request,
/// even one served by a pooled connection, so a clone is one reference count.
#[derive(Clone)]
pub(super) struct Connector(Arc<Settings>);

struct Settings {
    resolver: BoundedResolver,
    tls: TlsConnector,
    connect_timeout: Option<Duration>,
    proxy: Option<Arc<Matcher>>,
}

impl Connector {
    pub(super) fn new(
        resolver: BoundedResolver,
        tls: TlsConnector,
        connect_timeout: Option<Duration>,
        proxy: Option<Arc<Matcher>>,
    ) -> Self {
        Connector(Arc::new(Settings {
            resolver,
            tls,
            connect_timeout,
            proxy,
        }))
    }

    /// Opens a connection to `origin` (`scheme://host[:port]`), within the connect timeout.
    pub(super) async fn connect(&self, origin: &str) -> Result<Conn, ConnectError> {
        let uri: Uri = origin.parse().map_err(|_| ConnectError::NoHost)?;
        let limit = self.0.connect_timeout;
        let work = self.connect_unlimited(uri);
        match limit {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .map_err(|_| ConnectError::Timeout(limit))?,
            None => work.await,
        }
    }

    async fn connect_unlimited(&self, uri: Uri) -> Result<Conn, ConnectError> {
        let https = uri.scheme_str() == Some("https");
        let host = bare_host(&uri).ok_or(ConnectError::NoHost)?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let proxy = self.0.proxy.as_ref().and_then(|m| m.intercept(&uri));
        let (tcp, resolved, remote) = match &proxy {
            Some(proxy) => self.tcp_to_proxy(proxy).await?,
            None => self.tcp(host, port).await?,
        };
        let connected = Instant::now();
        let mut info = ConnInfo {
            resolved,
            connected,
            secured: None,
            remote,
            served: AtomicU32::new(0),
        };
        if !https {
            return Ok(Conn::new(Stream::Plain(tcp), info, false, proxy.is_some()));
        }
        let tcp = match &proxy {
            Some(proxy) => tunnel(tcp, host, port, proxy).await?,
            None => tcp,
        };
        let tls = self.handshake(tcp, host).await?;
        info.secured = Some(Instant::now());
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(Conn::new(Stream::Tls(Box::new(tls)), info, h2, false))
    }

    /// Resolves (unless `host` is an address or pinned) and connects; returns when the name was
    /// resolved, if a lookup was made.
    async fn tcp(
        &self,
        host: &str,
        port: u16,
    ) -> Result<(TcpStream, Option<Instant>, SocketAddr), ConnectError> {
        let (addrs, resolved) = match host
            .parse::<IpAddr>()
            .ok()
            .or_else(|| self.0.resolver.pinned(host))
        {
            Some(ip) => (vec![SocketAddr::new(ip, port)], None),
            None => {
                let addrs = self.0.resolver.lookup(host, port).await.map_err(|source| {
                    ConnectError::Dns {
                        host: host.to_owned(),
                        source,
                    }
                })?;
                (addrs, Some(Instant::now()))
            }
        };
        if addrs.is_empty() {
            return Err(ConnectError::NoAddresses(host.to_owned()));
        }
        let (tcp, remote) = connect_any(addrs).await.map_err(ConnectError::Tcp)?;
        Ok((tcp, resolved, remote))
    }

    async fn tcp_to_proxy(
        &self,
        proxy: &Intercept,
    ) -> Result<(TcpStream, Option<Instant>, SocketAddr), ConnectError> {
        let uri = proxy.uri();
        if !matches!(uri.scheme_str(), Some("http") | None) {
            return Err(ConnectError::Proxy(format!(
                "only http:// proxies are supported, not '{uri}'"
            )));
        }
        let host = bare_host(uri).ok_or(ConnectError::NoHost)?;
        self.tcp(host, uri.port_u16().unwrap_or(80)).await
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> Result<TlsStream<TcpStream>, ConnectError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        self.0
            .tls
            .connect(name, tcp)
            .await
            .map_err(ConnectError::Tls)
    }
}

/// The host of a URI without the brackets of an IPv6 literal.
fn bare_host(uri: &Uri) -> Option<&str> {
    let host = uri.host()?;
    Some(
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host),
    )
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

/// Asks an HTTP proxy for a tunnel to `host:port` (CONNECT) and returns the stream once it is
/// open.
async fn tunnel(
    mut tcp: TcpStream,
    host: &str,
    port: u16,
    proxy: &Intercept,
) -> Result<TcpStream, ConnectError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = proxy.basic_auth().and_then(|v| v.to_str().ok()) {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let fail = |e: io::Error| ConnectError::Proxy(format!("CONNECT failed: {e}"));
    tcp.write_all(request.as_bytes()).await.map_err(fail)?;
    // Read the proxy's answer up to the blank line; anything bigger than 16 KiB is not a proxy.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || tcp.read(&mut byte).await.map_err(fail)? == 0 {
            return Err(ConnectError::Proxy(
                "the proxy closed the connection or sent no answer to CONNECT".into(),
            ));
        }
        head.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(&head);
    let status_line = status_line.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1);
    if status != Some("200") {
        return Err(ConnectError::Proxy(format!(
            "the proxy refused the tunnel: {status_line}"
        )));
    }
    Ok(tcp)
}

/// A connection: plain TCP or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A new connection, ready for hyper's HTTP/1 or HTTP/2 handshake.
pub(super) struct Conn {
    io: TokioIo<Stream>,
    info: Arc<ConnInfo>,
    h2: bool,
    proxied: bool,
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

    pub(super) fn info(&self) -> Arc<ConnInfo> {
        Arc::clone(&self.info)
    }

    /// TLS negotiated HTTP/2 by ALPN.
    pub(super) fn is_h2(&self) -> bool {
        self.h2
    }

    /// Plain HTTP to a proxy, which wants requests in absolute form.
    pub(super) fn proxied(&self) -> bool {
        self.proxied
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
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
        let uri: Uri = "http://[::1]:8080/x".parse().unwrap();
        assert_eq!(bare_host(&uri), Some("::1"));
        let uri: Uri = "http://a.test/x".parse().unwrap();
        assert_eq!(bare_host(&uri), Some("a.test"));
    }
}
