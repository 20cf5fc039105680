//! The line reader and URL classification, on arbitrary bytes (BOMs, CR, NUL, invalid UTF-8,
//! huge lines), read in arbitrary pieces with interrupted reads.
//!
//! Checked against a model that splits the whole input at once: the streaming reader must give
//! the same jobs (line numbers, text, verdict) whatever the read sizes, and every job must obey
//! the row contract (trimmed, printable, never blank or a comment, only http(s) URLs accepted),
//! and every URL must be what parsing its line afresh gives (the reader reuses origins).
//!
//! Input: byte 0 = read size and whether reads get interrupted; byte 1 = whether to stretch
//! the first line to a length around the cap (and to which), so short inputs probe the limit.

#![no_main]

use std::io::{self, Read};

use fetch::input::{MAX_LINE_BYTES, parse_target, read_jobs};
use fetch::row::ErrorKind;
use libfuzzer_sys::fuzz_target;

/// Stretched first lines are this long, plus up to 31 bytes: both sides of the cap.
const STRETCH_FROM: usize = MAX_LINE_BYTES - 16;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fuzz_target!(|data: &[u8]| {
    let (shape, stretch, body) = match data {
        [shape, stretch, body @ ..] => (*shape, *stretch, body),
        _ => (0, 0, data),
    };
    let input = stretched(body, stretch);
    // Tiny reads test every split; on stretched inputs they would only cost time.
    let piece = usize::from(shape & 0x7f) + 1;
    let reader = Trickle {
        data: &input,
        at: 0,
        piece: if input.len() > body.len() {
            piece * 256
        } else {
            piece
        },
        interrupt: shape & 0x80 != 0,
        reads: 0,
    };
    let got: Vec<_> = read_jobs(reader)
        .map(|job| job.expect("reading from memory cannot fail"))
        .collect();
    let want = model(&input);
    assert_eq!(got.len(), want.len(), "number of jobs");
    for (seq, (job, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(job.seq, seq as u64);
        assert_eq!(job.line, want.line);
        check_job_contract(job);
        match &want.verdict {
            Verdict::TooLong => {
                assert_eq!(
                    kind(job),
                    Some(ErrorKind::InvalidInput),
                    "line {}",
                    job.line
                );
                assert!(job.text.ends_with('…'));
                assert!(job.text.chars().count() <= 201);
            }
            Verdict::BadText => {
                assert_eq!(
                    kind(job),
                    Some(ErrorKind::InvalidInput),
                    "line {}",
                    job.line
                );
                assert_eq!(job.text, want.text);
            }
            Verdict::Text => {
                assert_eq!(job.text, want.text);
                assert_ne!(kind(job), Some(ErrorKind::InvalidInput));
                // The reader reuses the previous line's origin: it must parse as a fresh parse.
                let fresh = parse_target(&job.text);
                assert_eq!(
                    job.target.as_ref().map(|url| url.as_str()).ok(),
                    fresh.as_ref().map(|url| url.as_str()).ok(),
                    "line {}",
                    job.line
                );
            }
        }
    }
});

/// The body as it is, or (for one `stretch` value in eight) with its first line padded with
/// `x` to a length just under, at or over the cap.
fn stretched(body: &[u8], stretch: u8) -> Vec<u8> {
    if stretch < 0xE0 {
        return body.to_vec();
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let (first, rest) = body.split_at(end);
    let target = STRETCH_FROM + usize::from(stretch & 0x1f);
    let mut out = first.to_vec();
    out.resize(target.max(first.len()), b'x');
    out.extend_from_slice(rest);
    out
}

fn kind(job: &fetch::input::Job) -> Option<ErrorKind> {
    job.target.as_ref().err().map(|f| f.kind)
}

/// What every job must be, whatever the input.
fn check_job_contract(job: &fetch::input::Job) {
    let text = &job.text;
    assert!(!text.is_empty() && !text.starts_with('#'), "{text:?}");
    assert_eq!(text.trim(), text, "trimmed");
    assert!(!text.chars().any(char::is_control), "printable: {text:?}");
    match &job.target {
        Ok(url) => {
            assert!(matches!(url.scheme(), "http" | "https"), "{url}");
            assert!(url.has_host());
            assert_eq!(url::Url::parse(text).as_ref(), Ok(url));
        }
        Err(failure) => assert!(!failure.detail.is_empty()),
    }
}

/// A reader that hands out at most `piece` bytes per read, and fails every other read with
/// `Interrupted` when asked to (which readers must retry).
struct Trickle<'a> {
    data: &'a [u8],
    at: usize,
    piece: usize,
    interrupt: bool,
    reads: u64,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.interrupt && self.reads.is_multiple_of(2) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let rest = self.data.get(self.at..).unwrap_or_default();
        let n = rest.len().min(self.piece).min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

struct Expected {
    line: u64,
    text: String,
    verdict: Verdict,
}

enum Verdict {
    /// Longer than the cap: invalid input, with a shortened preview.
    TooLong,
    /// Not UTF-8, or a control character: invalid input, shown with replacement characters.
    BadText,
    /// Text to classify as a URL (or not).
    Text,
}

/// The reader's rules applied to the whole input at once: split on `\n` (a final line needs no
/// newline), drop leading ASCII whitespace and then a BOM on the first line, cap the length,
/// decode lossily, trim; blank lines and `#` comments get no job.
fn model(input: &[u8]) -> Vec<Expected> {
    let mut segments: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    let mut out = Vec::new();
    for (i, segment) in segments.into_iter().enumerate() {
        let start = segment
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(segment.len());
        let mut content = &segment[start..];
        if i == 0 {
            content = content.strip_prefix(BOM).unwrap_or(content);
        }
        let kept = &content[..content.len().min(MAX_LINE_BYTES)];
        let text = String::from_utf8_lossy(kept).trim().to_owned();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let printable: String = text
            .chars()
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .collect();
        let verdict = if content.len() > MAX_LINE_BYTES {
            Verdict::TooLong
        } else if std::str::from_utf8(kept).is_err() || printable != text {
            Verdict::BadText
        } else {
            Verdict::Text
        };
        out.push(Expected {
            line: i as u64 + 1,
            text: printable,
            verdict,
        });
    }
    out
}
