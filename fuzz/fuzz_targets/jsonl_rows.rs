//! The JSON Lines row writer: whatever the values, each row is one line holding one JSON object
//! whose keys are the columns, in order, and whose values read back exactly: text as it was
//! (no formula neutralising in JSON), numbers as numbers, empty cells as `null`.
//!
//! The check itself is `fetch_fuzz::checks::jsonl_rows`, which `cargo test` also runs over the seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (fetch_fuzz::AnyLayout, Vec<fetch_fuzz::AnyRow>)| {
    fetch_fuzz::checks::jsonl_rows::check(input)
});
