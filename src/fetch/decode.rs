//! Reading a response body as decoded bytes: gzip, brotli, zstd and deflate are undone on the
//! fly, chunk by chunk, so a small compressed body that inflates to gigabytes is read (and cut
//! off at the cap) with memory flat.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use async_compression::tokio::bufread::{
    BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder,
};
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

/// The content codings we ask for, in `Accept-Encoding`.
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Most decoded bytes handed over per read.
const CHUNK: usize = 32 * 1024;

type Frames = StreamReader<Counted, Bytes>;

/// A body being read: raw frames, or a decoder over them.
pub(super) enum DecodedBody {
    Identity {
        frames: BodyDataStream<Incoming>,
        current: Bytes,
        /// Bytes received so far.
        wire: u64,
    },
    /// `deflate` is meant to be zlib-wrapped, but some servers send raw deflate: which one it is
    /// is known from the first bytes, so the decoder is chosen on the first read.
    Deflate(Option<Frames>, Arc<AtomicU64>),
    Decoded {
        coding: &'static str,
        decoder: Box<dyn AsyncRead + Send + Unpin>,
        buf: Vec<u8>,
        /// Bytes received so far, counted under the decoder.
        wire: Arc<AtomicU64>,
    },
}

/// The body's frames as a stream of bytes for a decoder, counting what goes by.
pub(super) struct Counted {
    frames: BodyDataStream<Incoming>,
    count: Arc<AtomicU64>,
}

impl Stream for Counted {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let frame = ready!(Pin::new(&mut self.frames).poll_next(cx));
        if let Some(Ok(bytes)) = &frame {
            self.count.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame.map(|f| f.map_err(io::Error::other)))
    }
}

impl DecodedBody {
    /// Wraps `body` according to its `Content-Encoding`. Unknown codings are passed through
    /// undecoded (and counted as they come).
    pub(super) fn new(body: Incoming, coding: Option<&str>) -> DecodedBody {
        let coding = coding.map(|v| v.trim().to_ascii_lowercase());
        let frames = BodyDataStream::new(body);
        if !matches!(
            coding.as_deref(),
            Some("gzip" | "x-gzip" | "br" | "zstd" | "deflate")
        ) {
            return DecodedBody::Identity {
                frames,
                current: Bytes::new(),
                wire: 0,
            };
        }
        let wire = Arc::new(AtomicU64::new(0));
        let (coding, decoder): (_, Box<dyn AsyncRead + Send + Unpin>) = match coding.as_deref() {
            Some("gzip" | "x-gzip") => {
                let mut decoder = GzipDecoder::new(reader(frames, &wire));
                decoder.multiple_members(true);
                ("gzip", Box::new(decoder))
            }
            Some("br") => (
                "brotli",
                Box::new(BrotliDecoder::new(reader(frames, &wire))),
            ),
            Some("zstd") => ("zstd", Box::new(ZstdDecoder::new(reader(frames, &wire)))),
            _ => return DecodedBody::Deflate(Some(reader(frames, &wire)), wire),
        };
        DecodedBody::Decoded {
            coding,
            decoder,
            buf: vec![0; CHUNK],
            wire,
        }
    }

    /// Body bytes received so far, before decoding.
    pub(super) fn wire_bytes(&self) -> u64 {
        match self {
            DecodedBody::Identity { wire, .. } => *wire,
            DecodedBody::Deflate(_, wire) | DecodedBody::Decoded { wire, .. } => {
                wire.load(Ordering::Relaxed)
            }
        }
    }

    /// The next piece of decoded body, or `None` at its end.
    pub(super) async fn next(&mut self) -> io::Result<Option<&[u8]>> {
        if let DecodedBody::Deflate(frames, wire) = self {
            *self = choose_deflate(frames.take(), Arc::clone(wire)).await?;
        }
        match self {
            DecodedBody::Identity {
                frames,
                current,
                wire,
            } => match frames.try_next().await.map_err(io::Error::other)? {
                Some(bytes) => {
                    *wire += bytes.len() as u64;
                    *current = bytes;
                    Ok(Some(current))
                }
                None => Ok(None),
            },
            DecodedBody::Decoded {
                coding,
                decoder,
                buf,
                ..
            } => {
                let read = decoder.read(buf).await.map_err(|e| corrupt(coding, e))?;
                Ok(buf.get(..read).filter(|chunk| !chunk.is_empty()))
            }
            DecodedBody::Deflate(..) => Ok(None),
        }
    }
}

/// Picks zlib or raw deflate from the first two bytes (a zlib header: method 8, and the header
/// as a number divisible by 31).
async fn choose_deflate(frames: Option<Frames>, wire: Arc<AtomicU64>) -> io::Result<DecodedBody> {
    let Some(mut frames) = frames else {
        return Ok(DecodedBody::Deflate(None, wire));
    };
    let head = frames.fill_buf().await?;
    let zlib = matches!(head, [cmf, flg, ..]
        if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0);
    let decoder: Box<dyn AsyncRead + Send + Unpin> = if zlib {
        Box::new(ZlibDecoder::new(frames))
    } else {
        Box::new(DeflateDecoder::new(frames))
    };
    Ok(DecodedBody::Decoded {
        coding: "deflate",
        decoder,
        buf: vec![0; CHUNK],
        wire,
    })
}

fn reader(frames: BodyDataStream<Incoming>, wire: &Arc<AtomicU64>) -> Frames {
    StreamReader::new(Counted {
        frames,
        count: Arc::clone(wire),
    })
}

/// Names the coding in a decoder's complaint about its data (the decoders' own messages can
/// name the wrong one); errors from the connection pass through as they are.
fn corrupt(coding: &str, error: io::Error) -> io::Error {
    let from_connection = error.get_ref().is_some_and(|e| e.is::<hyper::Error>());
    if !from_connection {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt {coding} data ({error})"),
        )
    } else {
        error
    }
}
