//! Charset detection and title extraction on arbitrary bodies, content types and chunkings.
//!
//! The capture keeps only a page's head, found by a streaming scanner rather than a parser; the
//! contract is that this changes nothing: the title is the one a full parse of the whole page
//! finds (decoded with the same charset), and it does not depend on how the body was split into
//! chunks. Titles are always one line, trimmed, and at most the title limit. The quick path that
//! skips the parser for plain titles gives the parser's answer whenever it gives one.

#![no_main]

use arbitrary::Arbitrary;
use fetch::extract::{ExtractSpec, Extractor, HEAD_LIMIT, TITLE_LIMIT};
use fetch::fetch::BodySink;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Page<'a> {
    content_type: Option<&'a str>,
    /// Chunk lengths to split the body at (cycled); 0 entries are skipped.
    cuts: Vec<u8>,
    body: &'a [u8],
}

fuzz_target!(|page: Page<'_>| {
    let extractor = Extractor::new(ExtractSpec {
        title: true,
        values: Vec::new(),
        hash: true,
    });
    let whole = extract(&extractor, page.content_type, &[page.body]);
    let chunks = split(page.body, &page.cuts);
    let chunked = extract(&extractor, page.content_type, &chunks);
    assert_eq!(whole, chunked, "chunking changed the result");

    if let Some(title) = &whole.title {
        assert!(title.chars().count() <= TITLE_LIMIT + 1);
        assert_eq!(title.trim(), title, "trimmed");
        assert!(!title.contains(['\n', '\r', '\t']), "one line: {title:?}");
    }
    if comparable(page.body) {
        assert_eq!(whole.title, full_parse_title(page.content_type, page.body));
    }
});

fn extract(
    extractor: &Extractor,
    content_type: Option<&str>,
    chunks: &[&[u8]],
) -> fetch::extract::Extracted {
    let mut capture = extractor.capture();
    capture.begin(content_type);
    for chunk in chunks {
        capture.feed(chunk);
    }
    let captured = capture.finish();
    // The quick path, when it answers, must answer what the parser would.
    let quick = extractor.extract_title_only(&captured);
    let parsed = extractor.extract(captured);
    if let Some(quick) = quick {
        assert_eq!(quick, parsed, "the quick title differs from the parser's");
    }
    parsed
}

fn split<'a>(body: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = body;
    let mut sizes = cuts.iter().filter(|&&c| c > 0).cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(rest.len(), |&c| usize::from(c));
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// The title a parser finds in the whole page, with nothing cut: what the head capture must
/// agree with. Feeding the whole body to a capture that wants every byte gives the parser the
/// full page through the same decoding.
fn full_parse_title(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let full = Extractor::new(ExtractSpec {
        title: true,
        values: vec![
            fetch::extract::parse_select("all=html", false)
                .expect("valid")
                .into(),
        ],
        hash: false,
    });
    extract(&full, content_type, &[body]).title
}

/// Pages where a full parse is the right oracle: shorter than the head limit (past it the
/// capture gives up by design), UTF-8 (so a charset guess over the head and over the whole page
/// cannot differ), and without the tags after which the capture deliberately looks no further
/// (`<body>`, and `<svg>`/`<math>`, whose `<title>`s are icons' and formulas', not the page's).
fn comparable(body: &[u8]) -> bool {
    let lower = body.to_ascii_lowercase();
    let has = |tag: &[u8]| lower.windows(tag.len()).any(|w| w == tag);
    body.len() < HEAD_LIMIT
        && std::str::from_utf8(body).is_ok()
        && !["<body", "<svg", "<math", "<plaintext"]
            .iter()
            .any(|tag| has(tag.as_bytes()))
}
