//! Reading a response body as decoded bytes: gzip, brotli, zstd and deflate are undone on the
//! fly, chunk by chunk, so a small compressed body that inflates to gigabytes is read (and cut
//! off at the cap) with memory flat.

use std::io;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
use bytes::Bytes;
use futures::TryStreamExt;
use http::HeaderValue;
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

/// The content codings we ask for, in `Accept-Encoding`.
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Most decoded bytes handed over per read.
const CHUNK: usize = 32 * 1024;

/// A body being read: raw frames, or a decoder over them.
pub(super) enum DecodedBody {
    Identity {
        frames: BodyDataStream<Incoming>,
        current: Bytes,
    },
    Decoded {
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
        let decoder: Box<dyn AsyncRead + Send + Unpin> = match coding.as_deref() {
            Some("gzip" | "x-gzip") => {
                let mut decoder = GzipDecoder::new(reader(frames));
                decoder.multiple_members(true);
                Box::new(decoder)
            }
            Some("br") => Box::new(BrotliDecoder::new(reader(frames))),
            Some("zstd") => Box::new(ZstdDecoder::new(reader(frames))),
            Some("deflate") => Box::new(ZlibDecoder::new(reader(frames))),
            _ => {
                return DecodedBody::Identity {
                    frames,
                    current: Bytes::new(),
                };
            }
        };
        DecodedBody::Decoded {
            decoder,
            buf: vec![0; CHUNK],
        }
    }

    /// The next piece of decoded body, or `None` at its end.
    pub(super) async fn next(&mut self) -> io::Result<Option<&[u8]>> {
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
            DecodedBody::Decoded { decoder, buf } => {
                let read = decoder.read(buf).await?;
                Ok((read > 0).then(|| &buf[..read]))
            }
        }
    }
}

fn reader(
    frames: BodyDataStream<Incoming>,
) -> StreamReader<impl futures::Stream<Item = io::Result<Bytes>>, Bytes> {
    StreamReader::new(frames.map_err(io::Error::other))
}
