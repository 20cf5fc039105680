//! Reading a response body as decoded bytes: gzip, brotli, zstd and deflate are undone on the
//! fly, chunk by chunk, so a small compressed body that inflates to gigabytes is read (and cut
//! off at the cap) with memory flat.
//!
//! A decoder reads from a [`Feed`] of the frames received so far rather than from the
//! connection, so it is a plain value that can be worked anywhere: on the event loop for the
//! first [`OFFLOAD_AFTER`] decoded bytes (most pages end there, and a trip to a worker would
//! cost more than it saves), then on a worker thread, [`BATCH`] bytes at a time, while the
//! loop only receives frames; a body whose `Content-Length` says it is large goes to a worker
//! from the start. Inflating an 8 MiB page takes milliseconds; on the loop, every
//! other request in flight would wait for it, and show it in its `latency_ms`.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use async_compression::tokio::bufread::{
    BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder,
};
use bytes::{Buf, Bytes};
use futures::{FutureExt, TryStreamExt};
use http_body_util::BodyDataStream;
use hyper::body::{Body, Incoming};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::workers::{Workers, cores};

/// The content codings we ask for, in `Accept-Encoding`.
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Most decoded bytes handed over per read on the event loop.
const CHUNK: usize = 32 * 1024;

/// Decoded bytes after which a body's decoding moves to a worker thread: about 0.2 ms of
/// inflating HTML on the loop.
const OFFLOAD_AFTER: u64 = 64 * 1024;

/// A compressed body at least this long (by its `Content-Length`) is decoded on a worker from
/// its first byte: it will decode to more than [`OFFLOAD_AFTER`].
const OFFLOAD_WIRE: u64 = 16 * 1024;

/// Most decoded bytes a worker produces per trip: what one body holds in memory beyond its
/// frames, and how long the loop waits before it sees progress (for the body cap, a stop).
const BATCH: usize = 256 * 1024;

/// Wire bytes taken from the connection per trip at most, beyond what a trip decodes.
const FEED_AHEAD: usize = 256 * 1024;

/// The worker threads that decode large bodies, started the first time one is needed: most
/// runs never see one.
#[derive(Default)]
pub(super) struct Decoders(OnceLock<Option<Workers>>);

impl Decoders {
    fn workers(&self) -> Option<&Workers> {
        self.0
            .get_or_init(|| Workers::start_with("fetch-decode", cores(), true).ok())
            .as_ref()
    }
}

/// A body being read: raw frames, or decoded ones.
pub(super) enum DecodedBody<'a> {
    Identity {
        frames: BodyDataStream<Incoming>,
        current: Bytes,
        /// Bytes received so far.
        wire: u64,
    },
    Decoded(Box<Decoding<'a>>),
}

pub(super) struct Decoding<'a> {
    frames: BodyDataStream<Incoming>,
    /// `None` only while it is away on a worker (or lost with a trip that never came back).
    decoder: Option<Decoder>,
    /// The decoded bytes handed out last.
    out: Out,
    /// Bytes received so far.
    wire: u64,
    /// Bytes decoded so far.
    decoded: u64,
    /// Decoding moves to a worker once `decoded` reaches this.
    offload_after: u64,
    /// The last step stopped short of its limit because the feed ran dry (or nothing has been
    /// fed yet): until a frame comes, another step, a trip to a worker past the offload, would
    /// only learn that again.
    dry: bool,
    workers: &'a Decoders,
}

/// What a decoding step came to.
enum Step {
    /// Decoded bytes are in `out`.
    Output,
    /// The decoder has used up the feed: it needs more frames.
    NeedInput,
    End,
}

impl<'a> DecodedBody<'a> {
    /// Wraps `body` according to its `Content-Encoding`. Unknown codings are passed through
    /// undecoded (and counted as they come). Large bodies are decoded on `workers`.
    pub(super) fn new(
        body: Incoming,
        coding: Option<&str>,
        workers: &'a Decoders,
    ) -> DecodedBody<'a> {
        let large = body.size_hint().exact().is_some_and(|n| n >= OFFLOAD_WIRE);
        let frames = BodyDataStream::new(body);
        match coding.and_then(Decoder::for_coding) {
            Some(decoder) => DecodedBody::Decoded(Box::new(Decoding {
                frames,
                decoder: Some(decoder),
                out: Out::default(),
                wire: 0,
                decoded: 0,
                offload_after: if large { 0 } else { OFFLOAD_AFTER },
                dry: true,
                workers,
            })),
            None => DecodedBody::Identity {
                frames,
                current: Bytes::new(),
                wire: 0,
            },
        }
    }

    /// Body bytes received so far, before decoding.
    pub(super) fn wire_bytes(&self) -> u64 {
        match self {
            DecodedBody::Identity { wire, .. } => *wire,
            DecodedBody::Decoded(decoding) => decoding.wire,
        }
    }

    /// The next piece of decoded body, or `None` at its end.
    pub(super) async fn next(&mut self) -> io::Result<Option<&[u8]>> {
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
            DecodedBody::Decoded(decoding) => decoding.next().await,
        }
    }
}

impl Decoding<'_> {
    async fn next(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if std::mem::take(&mut self.dry)
                && self.decoder.as_mut().ok_or_else(lost)?.feed().is_dry()
            {
                self.receive().await?;
            }
            let away = self.decoded >= self.offload_after;
            let step = if away {
                self.decode_away().await?
            } else {
                let decoder = self.decoder.as_mut().ok_or_else(lost)?;
                decoder.decode(&mut self.out, CHUNK)?
            };
            match step {
                Step::Output => {
                    self.dry = self.out.len < if away { BATCH } else { CHUNK };
                    break;
                }
                Step::End => return Ok(None),
                Step::NeedInput => self.receive().await?,
            }
        }
        self.decoded += self.out.len as u64;
        Ok(Some(self.out.bytes()))
    }

    /// Waits for the next frame (or the body's end) and adds it to the feed, with any more
    /// frames that are already there, up to [`FEED_AHEAD`] bytes.
    async fn receive(&mut self) -> io::Result<()> {
        let frame = self.frames.try_next().await.map_err(io::Error::other)?;
        let feed = self.decoder.as_mut().ok_or_else(lost)?.feed();
        let Some(frame) = frame else {
            feed.ended = true;
            return Ok(());
        };
        self.wire += frame.len() as u64;
        let mut taken = frame.len();
        feed.frames.push_back(frame);
        while taken < FEED_AHEAD {
            match self.frames.try_next().now_or_never() {
                Some(Ok(Some(frame))) => {
                    self.wire += frame.len() as u64;
                    taken += frame.len();
                    feed.frames.push_back(frame);
                }
                Some(Ok(None)) => {
                    feed.ended = true;
                    break;
                }
                // Not there yet, or a failure the next `receive` will see.
                _ => break,
            }
        }
        Ok(())
    }

    /// Decodes up to [`BATCH`] bytes on a worker (on the loop if no worker can be had).
    async fn decode_away(&mut self) -> io::Result<Step> {
        let mut decoder = self.decoder.take().ok_or_else(lost)?;
        let Some(workers) = self.workers.workers() else {
            let step = decoder.decode(&mut self.out, BATCH);
            self.decoder = Some(decoder);
            return step;
        };
        let mut out = std::mem::take(&mut self.out);
        let (decoder, out, step) = workers
            .run(move || {
                let step = decoder.decode(&mut out, BATCH);
                (decoder, out, step)
            })
            .await
            .ok_or_else(lost)?;
        self.decoder = Some(decoder);
        self.out = out;
        step
    }
}

/// Decoded bytes: the first `len` of `buf`. The buffer keeps its size (zeroed once) from one
/// step to the next, so a server trickling a byte at a time costs no zeroing per byte.
#[derive(Default)]
struct Out {
    buf: Vec<u8>,
    len: usize,
}

impl Out {
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The decoder went missing: a worker panicked with it.
fn lost() -> io::Error {
    io::Error::other("the body's decoder failed")
}

/// The frames received and not yet decoded: what a decoder reads from. It says "pending" when
/// it runs dry before the body's end, which tells whoever drives the decoder to add frames.
#[derive(Default)]
struct Feed {
    frames: VecDeque<Bytes>,
    /// The last frame has been added.
    ended: bool,
}

impl Feed {
    /// Nothing left to decode, and more to come.
    fn is_dry(&self) -> bool {
        self.frames.is_empty() && !self.ended
    }
}

impl AsyncRead for Feed {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let feed = self.get_mut();
        while let Some(front) = feed.frames.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(front.get(..n).unwrap_or_default());
            front.advance(n);
            if !front.is_empty() {
                return Poll::Ready(Ok(()));
            }
            feed.frames.pop_front();
            if !buf.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
        }
        if feed.ended {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

impl AsyncBufRead for Feed {
    fn poll_fill_buf(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let feed = self.get_mut();
        while feed.frames.front().is_some_and(Bytes::is_empty) {
            feed.frames.pop_front();
        }
        match feed.frames.front() {
            Some(front) => Poll::Ready(Ok(front)),
            None if feed.ended => Poll::Ready(Ok(&[])),
            None => Poll::Pending,
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let feed = self.get_mut();
        if let Some(front) = feed.frames.front_mut() {
            front.advance(amt.min(front.len()));
        }
    }
}

/// A decoder over its feed, for one content coding.
enum Decoder {
    Gzip(GzipDecoder<Feed>),
    Brotli(BrotliDecoder<Feed>),
    Zstd(ZstdDecoder<Feed>),
    Zlib(ZlibDecoder<Feed>),
    Deflate(DeflateDecoder<Feed>),
    /// `deflate` is meant to be zlib-wrapped, but some servers send raw deflate: which one it
    /// is is known from the first two bytes.
    DeflateUndecided(Feed),
}

impl Decoder {
    /// The decoder for a `Content-Encoding` value, if it is one we decode.
    fn for_coding(coding: &str) -> Option<Decoder> {
        let coding = coding.trim();
        let is = |name: &str| coding.eq_ignore_ascii_case(name);
        Some(if is("gzip") || is("x-gzip") {
            let mut decoder = GzipDecoder::new(Feed::default());
            decoder.multiple_members(true);
            Decoder::Gzip(decoder)
        } else if is("br") {
            Decoder::Brotli(BrotliDecoder::new(Feed::default()))
        } else if is("zstd") {
            Decoder::Zstd(ZstdDecoder::new(Feed::default()))
        } else if is("deflate") {
            Decoder::DeflateUndecided(Feed::default())
        } else {
            return None;
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Decoder::Gzip(_) => "gzip",
            Decoder::Brotli(_) => "brotli",
            Decoder::Zstd(_) => "zstd",
            Decoder::Zlib(_) | Decoder::Deflate(_) | Decoder::DeflateUndecided(_) => "deflate",
        }
    }

    fn feed(&mut self) -> &mut Feed {
        match self {
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Brotli(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut(),
            Decoder::Zlib(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
            Decoder::DeflateUndecided(feed) => feed,
        }
    }

    /// Decodes what the feed holds into `out` (replacing what it held), up to `limit` bytes.
    /// Never waits: it is plain CPU work, wherever it runs.
    fn decode(&mut self, out: &mut Out, limit: usize) -> io::Result<Step> {
        out.len = 0;
        if !self.choose_deflate() {
            return Ok(Step::NeedInput);
        }
        if out.buf.len() < limit {
            out.buf.resize(limit, 0);
        }
        let mut cx = Context::from_waker(Waker::noop());
        while out.len < limit {
            let mut buf = ReadBuf::new(out.buf.get_mut(out.len..limit).unwrap_or_default());
            let polled = self.poll_read(&mut cx, &mut buf);
            let read = buf.filled().len();
            out.len += read;
            match polled {
                Poll::Ready(Ok(())) if read > 0 => {}
                Poll::Ready(Ok(())) if out.len == 0 => return Ok(Step::End),
                Poll::Pending if out.len == 0 => return Ok(Step::NeedInput),
                // The end, or the feed ran dry: what was decoded goes out first.
                Poll::Ready(Ok(())) | Poll::Pending => break,
                Poll::Ready(Err(error)) => return Err(corrupt(self.name(), error)),
            }
        }
        Ok(Step::Output)
    }

    /// For `deflate`, picks zlib or raw deflate once two bytes are in (a zlib header: method 8,
    /// and the header as a number divisible by 31). False while it cannot tell yet.
    fn choose_deflate(&mut self) -> bool {
        let Decoder::DeflateUndecided(feed) = self else {
            return true;
        };
        let mut head = feed.frames.iter().flat_map(|frame| frame.iter().copied());
        let zlib = match (head.next(), head.next()) {
            (Some(cmf), Some(flg)) => {
                cmf & 0x0f == 8 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
            }
            _ if !feed.ended => return false,
            _ => false,
        };
        let feed = std::mem::take(feed);
        *self = if zlib {
            Decoder::Zlib(ZlibDecoder::new(feed))
        } else {
            Decoder::Deflate(DeflateDecoder::new(feed))
        };
        true
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self {
            Decoder::Gzip(d) => Pin::new(d).poll_read(cx, buf),
            Decoder::Brotli(d) => Pin::new(d).poll_read(cx, buf),
            Decoder::Zstd(d) => Pin::new(d).poll_read(cx, buf),
            Decoder::Zlib(d) => Pin::new(d).poll_read(cx, buf),
            Decoder::Deflate(d) => Pin::new(d).poll_read(cx, buf),
            Decoder::DeflateUndecided(_) => Poll::Pending,
        }
    }
}

/// Names the coding in a decoder's complaint about its data (the decoders' own messages can
/// name the wrong one).
fn corrupt(coding: &str, error: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt {coding} data ({error})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Drives a decoder as the loop does, feeding `wire` in pieces of `piece` bytes.
    fn decode_all(mut decoder: Decoder, wire: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut pieces = wire.chunks(piece);
        let (mut out, mut all) = (Out::default(), Vec::new());
        loop {
            match decoder.decode(&mut out, CHUNK)? {
                Step::Output => all.extend_from_slice(out.bytes()),
                Step::End => return Ok(all),
                Step::NeedInput => match pieces.next() {
                    Some(p) => decoder.feed().frames.push_back(Bytes::copy_from_slice(p)),
                    None => decoder.feed().ended = true,
                },
            }
        }
    }

    #[test]
    fn decodes_across_frame_boundaries_in_batches() {
        let page: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("<p>{i}</p>").into_bytes())
            .take(600_000)
            .collect();
        let wire = gzip(&page);
        for piece in [1, 7, 4096, wire.len()] {
            let decoder = Decoder::for_coding("gzip").unwrap();
            let got = decode_all(decoder, &wire, piece).unwrap();
            assert!(got == page, "piece {piece}: {} bytes", got.len());
        }
    }

    #[test]
    fn deflate_is_told_from_zlib_by_its_first_bytes() {
        let text = b"hello hello hello hello";
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(text).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(text).unwrap();
        for wire in [zlib.finish().unwrap(), raw.finish().unwrap()] {
            let decoder = Decoder::for_coding("Deflate").unwrap();
            assert_eq!(decode_all(decoder, &wire, 1).unwrap(), text);
        }
    }

    #[test]
    fn a_truncated_body_is_corrupt_data_naming_the_coding() {
        let wire = gzip(&[b'x'; 100_000]);
        let decoder = Decoder::for_coding("gzip").unwrap();
        let error = decode_all(decoder, &wire[..wire.len() / 2], 100).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("corrupt gzip data"), "{error}");
    }

    #[test]
    fn unknown_codings_are_not_decoded() {
        assert!(Decoder::for_coding("compress").is_none());
        assert!(Decoder::for_coding(" GZIP ").is_some());
    }
}
