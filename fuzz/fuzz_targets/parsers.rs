//! The option value parsers (`--rate`, `--timeout` and friends, `--max-body`): never a panic on
//! any text, and whatever they accept is in range and reads back the same when written out.
//!
//! The check itself is `fetch_fuzz::checks::parsers`, which `cargo test` also runs over the seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| fetch_fuzz::checks::parsers::check(text));
