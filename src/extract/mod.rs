//! Extract: the page title, values picked by CSS selector or regex, and a hash of the body.
//!
//! Two halves with different costs. [`Capture`] sits in the request path as the body streams by
//! and only decides what to keep: nothing, the head of an HTML page up to `</title>`, or the
//! whole body (up to [`CAPTURE_LIMIT`]) when a selector or regex needs it; it also feeds the
//! hash. [`Extractor::extract`] does the CPU work (charset detection, decoding, HTML parsing,
//! regex) and runs on the [`ExtractPool`], never on the async workers.

mod charset;
mod head;
mod pool;
mod spec;

use std::ops::Range;

use encoding_rs::{Encoding, UTF_8};
use sha2::{Digest, Sha256};

use self::head::{HeadScanner, Scan};

pub use self::pool::ExtractPool;
pub use self::spec::{
    ExtractSpec, PatternSpec, SelectSpec, VALUE_LIMIT, ValueSpec, parse_pattern, parse_select,
};
use crate::fetch::BodySink;

/// Most bytes kept from a page's start while looking for `</title>`: enough for any real head
/// (and a 100 KB title), bounded for pages that never close it.
pub const HEAD_LIMIT: usize = 256 * 1024;

/// Bytes always kept from an HTML page's start when its title is wanted, so a `<meta charset>`
/// after a short title is still seen (the HTML spec's prescan looks at 1024).
const PRESCAN: usize = 1024;

/// Most bytes kept for selectors and regexes. Bounds memory per request in flight; values past
/// this point of a page are not found.
pub const CAPTURE_LIMIT: usize = 2 * 1024 * 1024;

/// Longest title written; longer ones end in `…`.
pub const TITLE_LIMIT: usize = 2048;

/// Longest title (in bytes) read without the HTML parser; see [`Extractor::extract_title_only`].
/// Below [`TITLE_LIMIT`], so a quick title never needs shortening.
const QUICK_TITLE_LIMIT: usize = 1024;

/// What extraction found for one response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    /// One per `--select`/`--regex`, in the order given.
    pub values: Vec<Option<String>>,
    /// Lowercase hex SHA-256 of the body as read (decoded, capped).
    pub sha256: Option<String>,
}

/// The run's extraction settings, shared by every request.
#[derive(Debug)]
pub struct Extractor {
    spec: ExtractSpec,
}

impl Extractor {
    pub fn new(spec: ExtractSpec) -> Extractor {
        Extractor { spec }
    }

    /// Number of value columns (selectors and regexes).
    pub fn value_count(&self) -> usize {
        self.spec.values.len()
    }

    /// A capture for one response.
    pub fn capture(&self) -> Capture {
        Capture {
            wants_title: self.spec.title,
            wants_html_body: self.spec.has_selects(),
            wants_text_body: self.spec.has_patterns(),
            hasher: self.spec.hash.then(Sha256::new),
            keep: Keep::Nothing,
            buf: Vec::new(),
            media: Media::default(),
            head: HeadScanner::default(),
            head_done: false,
            prescan: PRESCAN,
            fed: 0,
        }
    }

    /// The title alone, read straight from the bytes the head scanner delimited, when that is
    /// sure to give what the HTML parser would: a short title of plain ASCII text with no
    /// character reference or NUL, in an encoding that keeps ASCII as it is. That is most
    /// pages, and they then skip the parser and the hop to the pool: the work is a scan of at
    /// most [`QUICK_TITLE_LIMIT`] bytes, small enough for an async worker. `None`: take the
    /// long way, [`Extractor::extract`].
    pub fn extract_title_only(&self, captured: &Captured) -> Option<Extracted> {
        if !self.spec.values.is_empty() || !self.spec.title || !captured.html {
            return None;
        }
        let span = captured.title.clone()?;
        let text = captured.bytes.get(span)?;
        let plain =
            |b: &u8| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\x0c' | b'\r') && *b != b'&';
        if text.len() > QUICK_TITLE_LIMIT
            || !text.iter().all(plain)
            || !charset::keeps_ascii(&captured.bytes, captured.charset)
        {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        Some(Extracted {
            title: Some(collapse_whitespace(text)),
            values: Vec::new(),
            sha256: captured.sha256.clone(),
        })
    }

    /// The CPU part: decode and search what the capture kept. Run it off the async workers.
    pub fn extract(&self, captured: Captured) -> Extracted {
        let mut extracted = Extracted {
            values: vec![None; self.value_count()],
            sha256: captured.sha256,
            ..Extracted::default()
        };
        if captured.bytes.is_empty() {
            return extracted;
        }
        let text = charset::decode(&captured.bytes, captured.charset, captured.prefix);
        let document = captured.html.then(|| scraper::Html::parse_document(&text));
        if let Some(document) = &document
            && self.spec.title
        {
            extracted.title =
                spec::first_text(document, &spec::TITLE).map(|t| shorten(t, TITLE_LIMIT));
        }
        for (slot, value) in extracted.values.iter_mut().zip(&self.spec.values) {
            *slot = match value {
                ValueSpec::Select(select) => document.as_ref().and_then(|d| select.find(d)),
                ValueSpec::Pattern(pattern) if captured.textual => pattern.find(&text),
                ValueSpec::Pattern(_) => None,
            };
        }
        extracted
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    Nothing,
    /// The start of an HTML page, until `</title>` is seen.
    Head,
    /// The whole body, up to [`CAPTURE_LIMIT`].
    All,
}

/// Collects what extraction will need while the body streams by.
#[derive(Debug)]
pub struct Capture {
    wants_title: bool,
    wants_html_body: bool,
    wants_text_body: bool,
    hasher: Option<Sha256>,
    keep: Keep,
    buf: Vec<u8>,
    media: Media,
    head: HeadScanner,
    /// The title's end has been found: keep only up to [`PRESCAN`] now.
    head_done: bool,
    /// Bytes to keep from the start whatever the title: [`PRESCAN`] when the charset may be
    /// declared in a `<meta>`, 0 when the `Content-Type` already says.
    prescan: usize,
    /// Body bytes fed so far, to tell whether `buf` holds all of them.
    fed: usize,
}

/// What a capture kept, handed to [`Extractor::extract`].
#[derive(Debug, Default)]
pub struct Captured {
    html: bool,
    textual: bool,
    /// The charset the `Content-Type` declared.
    charset: Option<&'static Encoding>,
    bytes: Vec<u8>,
    sha256: Option<String>,
    /// Where the title's text is in `bytes`, when the head scanner found its end.
    title: Option<Range<usize>>,
    /// `bytes` hold only the start of the body.
    prefix: bool,
}

impl Captured {
    /// Whether there is CPU work for [`Extractor::extract`] (a hash alone is already done).
    pub fn needs_work(&self) -> bool {
        !self.bytes.is_empty()
    }
}

impl Capture {
    pub fn finish(self) -> Captured {
        // The head keeps a `>` of its own after a title's end tag.
        let kept = self.buf.len().saturating_sub(usize::from(self.head_done));
        Captured {
            prefix: self.fed > kept,
            html: self.media.html,
            textual: self.media.textual,
            charset: self.media.charset,
            title: self
                .head
                .title_span()
                .filter(|span| span.end <= self.buf.len()),
            bytes: self.buf,
            sha256: self.hasher.map(|h| hex(&h.finalize())),
        }
    }
}

impl BodySink for Capture {
    fn begin(&mut self, content_type: Option<&str>) {
        let media = Media::of(content_type);
        self.keep =
            if (media.html && self.wants_html_body) || (media.textual && self.wants_text_body) {
                Keep::All
            } else if media.html && self.wants_title {
                Keep::Head
            } else {
                Keep::Nothing
            };
        self.prescan = if media.charset.is_some() { 0 } else { PRESCAN };
        self.media = media;
        self.buf.clear();
        self.fed = 0;
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.fed += bytes.len();
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        match self.keep {
            Keep::Nothing => {}
            Keep::All => keep_up_to(&mut self.buf, bytes, CAPTURE_LIMIT),
            Keep::Head => self.keep_head(bytes),
        }
    }
}

impl Capture {
    /// Keeps the page's start up to the end of its real title (and the first [`PRESCAN`] bytes
    /// when a `<meta>` may declare the charset),
    /// found by [`HeadScanner`] without parsing, so the parser later sees only the head: a
    /// title costs a few hundred bytes of copying however big the page.
    fn keep_head(&mut self, bytes: &[u8]) {
        if self.head_done {
            let wanted = self.prescan.saturating_sub(self.buf.len());
            self.buf
                .extend_from_slice(bytes.get(..wanted).unwrap_or(bytes));
            if self.buf.len() >= self.prescan {
                self.keep = Keep::Nothing;
            }
            return;
        }
        match self.head.feed(bytes) {
            Scan::More => {
                keep_up_to(&mut self.buf, bytes, HEAD_LIMIT);
                // No title end in the first HEAD_LIMIT bytes: stop looking, the rest of the
                // body (possibly gigabytes) streams by untouched.
                if self.buf.len() >= HEAD_LIMIT {
                    self.keep = Keep::Nothing;
                }
            }
            Scan::TitleEnds(end) => {
                let (head, rest) = bytes.split_at_checked(end).unwrap_or((bytes, &[]));
                // Most titles end in the first chunk: room, in one allocation, for all this chunk
                // can leave here (the head, the `>`, the most the prescan keeps of the rest).
                self.buf
                    .reserve(head.len().min(HEAD_LIMIT) + 1 + rest.len().min(self.prescan));
                keep_up_to(&mut self.buf, head, HEAD_LIMIT);
                // Close the tag here: the parser must not take a cut `</title` for text. (What
                // follows, if kept, starts with the real `>`: a stray character after the title.)
                self.buf.push(b'>');
                self.head_done = true;
                self.keep_head(rest);
            }
            Scan::NoTitle(end) => {
                // The parser must not find a title past this point (an SVG icon's, say).
                keep_up_to(&mut self.buf, bytes.get(..end).unwrap_or(bytes), HEAD_LIMIT);
                self.keep = Keep::Nothing;
            }
        }
    }
}

/// Appends what of `bytes` fits in `buf` up to `limit` bytes, dropping the rest.
pub(crate) fn keep_up_to(buf: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let room = limit.saturating_sub(buf.len());
    buf.extend_from_slice(bytes.get(..room).unwrap_or(bytes));
}

/// What a response's `Content-Type` says, worked out once when its headers arrive.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Media {
    /// HTML by its media type; with no `Content-Type` at all, assumed HTML (what browsers sniff
    /// for most pages that omit it).
    html: bool,
    /// A body a regex makes sense on: HTML, text, JSON, XML, JavaScript.
    textual: bool,
    charset: Option<&'static Encoding>,
}

/// The `Content-Type` values most pages come with, and what [`Media::read`] makes of them: the
/// type is read for every response, and a match on these skips the parameter parsing.
const COMMON_MEDIA: [(&str, Media); 5] = [
    ("text/html; charset=utf-8", Media::HTML_UTF8),
    ("text/html; charset=UTF-8", Media::HTML_UTF8),
    ("text/html;charset=utf-8", Media::HTML_UTF8),
    ("text/html;charset=UTF-8", Media::HTML_UTF8),
    (
        "text/html",
        Media {
            html: true,
            textual: true,
            charset: None,
        },
    ),
];

impl Media {
    const HTML_UTF8: Media = Media {
        html: true,
        textual: true,
        charset: Some(UTF_8),
    };

    fn of(content_type: Option<&str>) -> Media {
        let Some(content_type) = content_type else {
            return Media {
                html: true,
                textual: true,
                charset: None,
            };
        };
        match COMMON_MEDIA
            .iter()
            .find(|(value, _)| *value == content_type)
        {
            Some((_, media)) => *media,
            None => Media::read(content_type),
        }
    }

    fn read(content_type: &str) -> Media {
        let end = content_type.find(';').unwrap_or(content_type.len());
        let essence = content_type.get(..end).unwrap_or_default().trim();
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        let starts = |prefix: &str| {
            charset::starts_with_ignoring_case(essence.as_bytes(), prefix.as_bytes())
        };
        let ends = |suffix: &str| {
            essence
                .len()
                .checked_sub(suffix.len())
                .and_then(|at| essence.get(at..))
                .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
        };
        let html = is("text/html") || is("application/xhtml+xml");
        Media {
            html,
            textual: html
                || starts("text/")
                || ends("+json")
                || ends("+xml")
                || is("application/json")
                || is("application/xml")
                || is("application/javascript"),
            charset: charset::declared(Some(content_type)),
        }
    }
}

/// Collapses whitespace runs (newlines included) to single spaces and trims: a value never breaks
/// a row, and markup indentation does not leak into it.
pub fn collapse_whitespace(text: &str) -> String {
    if is_collapsed(text) {
        return text.to_owned();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` is already as [`collapse_whitespace`] would make it, judged on ASCII text
/// only (most titles): single spaces between words, none at the ends, no other whitespace.
fn is_collapsed(text: &str) -> bool {
    // One pass: a title is checked for every page. Any byte but a printable ASCII one or a
    // space sends the text the long way, which is right for every text, if slower.
    let mut previous = b' '; // As if after a space, so that a leading one fails.
    for &b in text.as_bytes() {
        let repeated_space = b == b' ' && previous == b' ';
        if repeated_space || !(b' '..=b'~').contains(&b) {
            return false;
        }
        previous = b;
    }
    previous != b' ' || text.is_empty()
}

pub(crate) fn shorten(mut text: String, limit: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(limit) {
        text.truncate(cut); // At a char boundary: it is where a char starts.
        text.push('…');
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    // Two digits per byte without the formatter: a `format!` per byte was most of the cost of
    // a small page's digest.
    let digit = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(digit(byte >> 4));
        out.push(digit(byte & 0x0f));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The common `Content-Type` values are read as the general parser reads them.
    #[test]
    fn common_media_types_read_as_the_parser_reads_them() {
        for (value, media) in COMMON_MEDIA {
            assert_eq!(Media::read(value), media, "{value}");
        }
        assert_eq!(
            Media::of(Some("TEXT/HTML; Charset=UTF-8")),
            Media::HTML_UTF8
        );
    }

    #[test]
    fn collapsing_is_the_same_with_or_without_the_shortcut() {
        let samples = [
            "",
            " ",
            "a",
            "a b",
            "a  b",
            " a",
            "a ",
            "a\tb",
            "a\nb",
            "a\u{a0}b",
            "a\u{2003} b",
            "é b",
            "a\x0bb",
            "a\x0cb",
            "a\rb",
            "a\x1cb",
            "fetch test page",
            "  x  y  ",
            "x y ",
            "\u{1f600} smile",
            "a b\tc",
        ];
        for text in samples {
            let slow = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(collapse_whitespace(text), slow, "{text:?}");
        }
    }

    fn run(spec: ExtractSpec, content_type: Option<&str>, chunks: &[&[u8]]) -> Extracted {
        let extractor = Extractor::new(spec);
        let mut capture = extractor.capture();
        capture.begin(content_type);
        for chunk in chunks {
            capture.feed(chunk);
        }
        extractor.extract(capture.finish())
    }

    fn title_only() -> ExtractSpec {
        ExtractSpec {
            title: true,
            ..ExtractSpec::default()
        }
    }

    /// The quick title (if it applies) and the parser's title for the same page.
    fn both_ways(content_type: Option<&str>, page: &[u8]) -> (Option<Extracted>, Extracted) {
        let extractor = Extractor::new(title_only());
        let mut capture = extractor.capture();
        capture.begin(content_type);
        capture.feed(page);
        let captured = capture.finish();
        (
            extractor.extract_title_only(&captured),
            extractor.extract(captured),
        )
    }

    #[test]
    fn quick_titles_are_the_parsers_titles() {
        let html = Some("text/html");
        for (content_type, page, quick) in [
            (
                Some("text/html; charset=utf-8"),
                &b"<title>Plain</title>"[..],
                true,
            ),
            (html, b"<head><title>\n  spaced   out \r\n</title>", true),
            (
                html,
                b"<!-- <title>fake</title> --><title>real</title><body>",
                true,
            ),
            (html, b"<title>a<b>c</title>", true),
            (html, b"<title></title>", true),
            (html, b"<meta charset=utf-16><title>x</title>", true),
            (None, b"<title>no content type</title>", true),
            (html, b"<title>A &amp; B</title>", false),
            (html, b"<title>Caf\xe9</title>", false),
            (html, b"<title>x\0y</title>", false),
            (html, b"<meta charset=iso-2022-kr><title>x</title>", true),
            (
                Some("text/html; charset=utf-16le"),
                b"<title>x</title>",
                false,
            ),
            (Some("application/json"), b"<title>x</title>", false),
        ] {
            let (fast, slow) = both_ways(content_type, page);
            let shown = String::from_utf8_lossy(page);
            assert_eq!(fast.is_some(), quick, "{shown}");
            if let Some(fast) = fast {
                assert_eq!(fast, slow, "{shown}");
            }
        }
    }

    #[test]
    fn titles_are_decoded_and_collapsed() {
        let page =
            b"<html><head><title>\n  Caf&eacute; &amp; Bar\n\t&#x263A;  </title></head></html>";
        let got = run(title_only(), Some("text/html"), &[page]);
        assert_eq!(got.title.as_deref(), Some("Café & Bar ☺"));
    }

    /// The head scanner's and the quick path's answers are the parser's on a whole page, for
    /// markup where the first `</title` or `<title` seen is not the real one (the cases the
    /// `title` fuzz target found among them).
    #[test]
    fn head_capture_and_quick_path_agree_with_a_full_parse() {
        let whole = ExtractSpec {
            title: true,
            values: vec![parse_select("all=html", false).unwrap().into()],
            hash: false,
        };
        for page in [
            "<i\n'Q><title>Real</title>",
            "<a b\"c><title>Real</title>",
            "<a = \"x>\"><title>Real</title>",
            "<!--><title>Real</title>",
            "<!-- x --!><title>Real</title>",
            "</ a='>'><title>Real</title>",
            "<script><!--<script></script><title>x</title>--></script><title>Real</title>",
            "<script><!--</script><title>Real</title>",
            "<script><!--<xscript></script><title>Real</title>",
            "<script><!--><script></script><title>Real</title>",
            "<script><!--<script></script><title>x</title>",
        ] {
            let expected = run(whole.clone(), Some("text/html"), &[page.as_bytes()]).title;
            let extractor = Extractor::new(title_only());
            let mut capture = extractor.capture();
            capture.begin(Some("text/html"));
            capture.feed(page.as_bytes());
            let captured = capture.finish();
            if let Some(quick) = extractor.extract_title_only(&captured) {
                assert_eq!(quick.title, expected, "quick path: {page:?}");
            }
            assert_eq!(extractor.extract(captured).title, expected, "{page:?}");
        }
    }

    #[test]
    fn head_capture_stops_at_the_title_even_across_chunks() {
        let extractor = Extractor::new(title_only());
        let mut capture = extractor.capture();
        capture.begin(Some("text/html; charset=utf-8"));
        capture.feed(b"<title>Split</ti");
        capture.feed(b"tle><body>");
        capture.feed(&vec![b'x'; 100_000]);
        let captured = capture.finish();
        assert!(
            captured.bytes.len() <= PRESCAN,
            "kept {} bytes",
            captured.bytes.len()
        );
        assert_eq!(extractor.extract(captured).title.as_deref(), Some("Split"));
    }

    #[test]
    fn a_page_without_title_is_given_up_on_after_the_head_limit() {
        let extractor = Extractor::new(title_only());
        let mut capture = extractor.capture();
        capture.begin(None);
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..100 {
            capture.feed(&chunk);
        }
        assert_eq!(capture.keep, Keep::Nothing);
        assert_eq!(capture.finish().bytes.len(), HEAD_LIMIT);
    }

    #[test]
    fn the_title_is_the_documents_not_a_lookalike() {
        for page in [
            "<!-- <title>Fake</title> --><title>Real</title>",
            "<script>var t=\"<title>JS</title>\"</script><title>Real</title>",
            "<meta content=\"</title>\"><title>Real</title>",
            "<titles>x</titles><title>Real</title>",
        ] {
            let got = run(title_only(), Some("text/html"), &[page.as_bytes()]);
            assert_eq!(got.title.as_deref(), Some("Real"), "{page}");
        }
        let icon = "<html><head></head><body><svg><title>Icon</title></svg></body>";
        assert_eq!(
            run(title_only(), Some("text/html"), &[icon.as_bytes()]).title,
            None
        );
    }

    /// Found by the `title` fuzz target: the capture ended the title at `</title` followed by
    /// more name, where a parser reads on.
    #[test]
    fn the_title_ends_at_a_real_end_tag_only() {
        let page = b"<title>\x1f\x1fa</title\x1f_b</title>";
        let got = run(title_only(), Some("text/html"), &[&page[..]]);
        assert_eq!(got.title.as_deref(), Some("\u{1f}\u{1f}a</title\u{1f}_b"));
        let got = run(title_only(), None, &[b"<title>a</titlex>b</title>"]);
        assert_eq!(got.title.as_deref(), Some("a</titlex>b"));
    }

    #[test]
    fn a_meta_charset_after_a_short_title_counts() {
        let page = b"<title>Caf\xe9</title><meta charset=\"iso-8859-1\">";
        let got = run(title_only(), Some("text/html"), &[&page[..]]);
        assert_eq!(got.title.as_deref(), Some("Café"));
        // The header's charset wins anyway, so nothing past the title is kept then.
        let got = run(
            title_only(),
            Some("text/html; charset=iso-8859-1"),
            &[&page[..]],
        );
        assert_eq!(got.title.as_deref(), Some("Café"));
    }

    #[test]
    fn non_html_gets_no_title_and_keeps_nothing() {
        let got = run(title_only(), Some("application/json"), &[b"{\"title\": 1}"]);
        assert_eq!(got.title, None);
        let got = run(title_only(), Some("image/png"), &[b"<title>x</title>"]);
        assert_eq!(got.title, None);
    }

    #[test]
    fn no_title_is_none_and_long_titles_are_shortened() {
        let got = run(title_only(), Some("text/html"), &[b"<p>no title</p>"]);
        assert_eq!(got.title, None);
        let long = format!("<title>{}</title>", "a".repeat(100_000));
        let got = run(title_only(), Some("text/html"), &[long.as_bytes()]);
        let title = got.title.unwrap();
        assert_eq!(title.chars().count(), TITLE_LIMIT + 1);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn nested_matches_are_bounded() {
        let depth = 200;
        let page = format!(
            "{}{}{}",
            "<div>".repeat(depth),
            "x".repeat(10_000),
            "</div>".repeat(depth)
        );
        let spec = ExtractSpec {
            values: vec![parse_select("all=div", true).unwrap().into()],
            ..ExtractSpec::default()
        };
        let got = run(spec, Some("text/html"), &[page.as_bytes()]);
        let value = got.values[0].as_deref().unwrap();
        assert!(value.chars().count() <= VALUE_LIMIT + 1, "{}", value.len());
    }

    #[test]
    fn hashes_the_body_as_read() {
        let spec = ExtractSpec {
            hash: true,
            ..ExtractSpec::default()
        };
        let got = run(spec, Some("application/octet-stream"), &[b"ab", b"c"]);
        assert_eq!(
            got.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn selectors_and_patterns_fill_their_columns() {
        let spec = ExtractSpec {
            title: true,
            values: vec![
                parse_select("h1=h1", false).unwrap().into(),
                parse_select("og=meta[property=\"og:title\"]@CONTENT", false)
                    .unwrap()
                    .into(),
                parse_select("items=li", true).unwrap().into(),
                parse_select("missing=.nope", false).unwrap().into(),
                parse_pattern(r"price=\$(\d+)").unwrap().into(),
                parse_pattern(r"year=20\d\d").unwrap().into(),
                parse_pattern(r"absent=zzz(\d)").unwrap().into(),
            ],
            hash: false,
        };
        let page = br#"<html><head><title>T</title>
            <meta property="og:title" content="  Open Graph  "></head>
            <body><h1> Big
            heading </h1><ul><li>one</li><li> </li><li> two </li></ul><p>only $42 in 2026</p></body></html>"#;
        let got = run(spec, Some("text/html"), &[page]);
        assert_eq!(got.title.as_deref(), Some("T"));
        assert_eq!(
            got.values,
            [
                Some("Big heading".to_owned()),
                Some("Open Graph".to_owned()),
                Some("one | two".to_owned()),
                None,
                Some("42".to_owned()),
                Some("2026".to_owned()),
                None,
            ]
        );
    }
}
