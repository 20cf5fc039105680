//! A site whose pages a test edits between runs: each path has a status, a title and a body,
//! validators (ETag, Last-Modified) and a redirect target, all changeable while the server runs.
//! It answers conditional requests as RFC 9110 says (If-None-Match with weak comparison first,
//! else If-Modified-Since), unless told to ignore them, and records the headers of every request.
//! On 127.0.0.1, port 0, on its own thread like [`super::server::TestServer`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One page of the site.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub title: String,
    pub body: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Answer with a 301 to this path instead.
    pub redirect: Option<String>,
    /// Wait this long before answering (longer than the client's timeout: a page that hangs).
    pub delay: Option<Duration>,
    /// Honour If-None-Match / If-Modified-Since.
    pub conditional: bool,
    /// Serve this as the whole body (`text/plain`) instead of the HTML page.
    pub raw: Option<String>,
}

impl Page {
    /// A 200 page with a strong ETag made from its title and body.
    pub fn new(title: &str, body: &str) -> Page {
        Page {
            status: 200,
            title: title.into(),
            body: body.into(),
            etag: Some(format!("\"{:x}\"", fnv(&format!("{title}\n{body}")))),
            last_modified: None,
            redirect: None,
            delay: None,
            conditional: true,
            raw: None,
        }
    }

    /// A plain-text file (a robots.txt, say), served as it is.
    pub fn text(body: &str) -> Page {
        Page {
            etag: None,
            raw: Some(body.to_owned()),
            ..Page::new("", "")
        }
    }

    /// A response with this status and nothing else to it.
    pub fn status(status: u16) -> Page {
        Page {
            status,
            etag: None,
            raw: Some(String::new()),
            ..Page::new("", "")
        }
    }

    /// A 301 to `location`.
    pub fn redirect(location: &str) -> Page {
        Page {
            redirect: Some(location.to_owned()),
            ..Page::new("", "")
        }
    }

    /// The same page with new content and a new ETag.
    pub fn edited(mut self, title: &str, body: &str) -> Page {
        let fresh = Page::new(title, body);
        self.title = fresh.title;
        self.body = fresh.body;
        if self.etag.is_some() {
            self.etag = fresh.etag;
        }
        self
    }

    fn html(&self) -> String {
        format!(
            "<!doctype html><html><head><title>{}</title></head><body>{}</body></html>",
            self.title, self.body
        )
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the site saw of one request.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The host name the request was for (its `Host`, without the port).
    pub host: String,
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Shared {
    pages: Mutex<HashMap<String, Page>>,
    visits: Mutex<Vec<Visit>>,
}

pub struct Site {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Site {
    pub fn start() -> Site {
        let shared = Arc::new(Shared::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&shared));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await
                    .unwrap();
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        Site {
            addr: addr_rx.recv().unwrap(),
            shared,
            shutdown: Some(shutdown_tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sets (or replaces) the page at `path`, for every host name; `name/path` (e.g.
    /// `a.test/robots.txt`) sets it for one host name, ahead of the page for all.
    pub fn put(&self, path: &str, page: Page) {
        self.shared
            .pages
            .lock()
            .unwrap()
            .insert(path.to_owned(), page);
    }

    /// The page at `path`, to edit and put back.
    pub fn page(&self, path: &str) -> Page {
        self.shared.pages.lock().unwrap()[path].clone()
    }

    /// Requests seen since the last call.
    pub fn take_visits(&self) -> Vec<Visit> {
        std::mem::take(&mut *self.shared.visits.lock().unwrap())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let at = std::time::Instant::now();
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .map_or(host, |(name, _)| name)
        .to_owned();
    let page = {
        let pages = shared.pages.lock().unwrap();
        pages
            .get(&format!("{host}{path}"))
            .or_else(|| pages.get(&path))
            .cloned()
    };
    let response = match &page {
        None => (StatusCode::NOT_FOUND, "no such page").into_response(),
        Some(page) => {
            if let Some(delay) = page.delay {
                tokio::time::sleep(delay).await;
            }
            answer(page, request.headers())
        }
    };
    shared.visits.lock().unwrap().push(Visit {
        host,
        path,
        headers: request.headers().clone(),
        status: response.status().as_u16(),
        at,
    });
    response
}

fn answer(page: &Page, request: &HeaderMap) -> Response {
    if let Some(to) = &page.redirect {
        return (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, to.clone())],
        )
            .into_response();
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
    if let Some(etag) = &page.etag {
        headers.insert(header::ETAG, etag.parse().unwrap());
    }
    if let Some(date) = &page.last_modified {
        headers.insert(header::LAST_MODIFIED, date.parse().unwrap());
    }
    let status = StatusCode::from_u16(page.status).unwrap();
    if let Some(raw) = &page.raw {
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        return (status, headers, raw.clone()).into_response();
    }
    if page.conditional && status == StatusCode::OK && not_modified(page, request) {
        headers.remove(header::CONTENT_TYPE);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (status, headers, page.html()).into_response()
}

/// RFC 9110 §13.2.2: If-None-Match (weak comparison) when present, else If-Modified-Since.
fn not_modified(page: &Page, request: &HeaderMap) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if let Some(tags) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return page.etag.as_deref().is_some_and(|etag| {
            tags.split(',')
                .any(|tag| tag.trim() == "*" || opaque(tag) == opaque(etag))
        });
    }
    let date = |name| {
        request
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    let modified = page
        .last_modified
        .as_deref()
        .and_then(|d| httpdate::parse_http_date(d).ok());
    matches!((date(header::IF_MODIFIED_SINCE), modified), (Some(since), Some(m)) if m <= since)
}
