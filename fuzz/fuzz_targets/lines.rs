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
//!
//! The check itself is `fetch_fuzz::checks::lines`, which `cargo test` also runs over the seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fetch_fuzz::checks::lines::check(data));
