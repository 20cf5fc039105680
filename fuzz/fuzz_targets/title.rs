//! Charset detection and title extraction on arbitrary bodies, content types and chunkings.
//!
//! The capture keeps only a page's head, found by a streaming scanner rather than a parser; the
//! contract is that this changes nothing: the title is the one a full parse of the whole page
//! finds (decoded with the same charset), and it does not depend on how the body was split into
//! chunks. Titles are always one line, trimmed, and at most the title limit. The quick path that
//! skips the parser for plain titles gives the parser's answer whenever it gives one.
//!
//! The check itself is `fetch_fuzz::checks::title`, which `cargo test` also runs over the seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|page: fetch_fuzz::checks::title::Page<'_>| fetch_fuzz::checks::title::check(page));
