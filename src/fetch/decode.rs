//! Reading a response body as decoded bytes: gzip, brotli, zstd and deflate are undone on the
//! fly, chunk by chunk, so a small compressed body that inflates to gigabytes is read (and cut
//! off at the cap) with memory flat.

use std::io;

use async_compression::tokio::bufread::{
    BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder,
};
use bytes::Bytes;
use futures::TryStreamExt;
use http::HeaderValue;
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

/// The content codings we ask for, in `Accept-Encoding`.
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Most decoded bytes handed over per read.
const CHUNK: usize = 32 * 1024;

type Frames = StreamReader<
    futures::stream::MapErr<BodyDataStream<Incoming>, fn(hyper::Error) -> io::Error>,
    Bytes,
>;

/// A body being read: raw frames, or a decoder over them.
pub(super) enum DecodedBody {
    Identity {
        frames: BodyDataStream<Incoming>,
        current: Bytes,
    },
    /// `deflate` is meant to be zlib-wrapped, but some servers send raw deflate: which one it is
    /// is known from the first bytes, so the decoder is chosen on the first read.
    Deflate(Option<Frames>),
    Decoded {
        coding: &'static str,
        decoder: Box<dyn AsyncRead + Send + Unpin>,
        buf: Vec<u8>,
    },
}

impl DecodedBody {
    /// Wraps `body` according to its `Content-Encoding`. Unknown codings are passed through
    /// undecoded (and counted as they come).
    pub(super) fn new(body: Incoming, coding: Option<&HeaderValue>) -> DecodedBody {
        let coding = coding
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        let frames = BodyDataStream::new(body);
        let (coding, decoder): (_, Box<dyn AsyncRead + Send + Unpin>) = match coding.as_deref() {
            Some("gzip" | "x-gzip") => {
                let mut decoder = GzipDecoder::new(reader(frames));
                decoder.multiple_members(true);
                ("gzip", Box::new(decoder))
            }
            Some("br") => ("brotli", Box::new(BrotliDecoder::new(reader(frames)))),
            Some("zstd") => ("zstd", Box::new(ZstdDecoder::new(reader(frames)))),
            Some("deflate") => return DecodedBody::Deflate(Some(reader(frames))),
            _ => {
                return DecodedBody::Identity {
                    frames,
                    current: Bytes::new(),
                };
            }
        };
        DecodedBody::Decoded {
            coding,
            decoder,
            buf: vec![0; CHUNK],
        }
    }

    /// The next piece of decoded body, or `None` at its end.
    pub(super) async fn next(&mut self) -> io::Result<Option<&[u8]>> {
        if let DecodedBody::Deflate(frames) = self {
            *self = choose_deflate(frames.take()).await?;
        }
        match self {
            DecodedBody::Identity { frames, current } => {
                match frames.try_next().await.map_err(io::Error::other)? {
                    Some(bytes) => {
                        *current = bytes;
                        Ok(Some(current))
                    }
                    None => Ok(None),
                }
            }
            DecodedBody::Decoded {
                coding,
                decoder,
                buf,
            } => {
                let read = decoder.read(buf).await.map_err(|e| corrupt(coding, e))?;
                Ok(buf.get(..read).filter(|chunk| !chunk.is_empty()))
            }
            DecodedBody::Deflate(_) => Ok(None),
        }
    }
}

/// Picks zlib or raw deflate from the first two bytes (a zlib header: method 8, and the header
/// as a number divisible by 31).
async fn choose_deflate(frames: Option<Frames>) -> io::Result<DecodedBody> {
    let Some(mut frames) = frames else {
        return Ok(DecodedBody::Deflate(None));
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
    })
}

fn reader(frames: BodyDataStream<Incoming>) -> Frames {
    StreamReader::new(frames.map_err(io::Error::other as fn(hyper::Error) -> io::Error))
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
