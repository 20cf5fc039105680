//! The CSV row writer: whatever the values (commas, quotes, CR/LF, NUL, formula starts, any
//! Unicode) and whatever the layout (`--fields`, `--raw`, `--no-header`, `--bom`), the csv
//! crate's strict reader gets back one record per row with the header's field count, and every
//! cell as it should be.
//!
//! The check itself is `fetch_fuzz::checks::csv_rows`, which `cargo test` also runs over the seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (fetch_fuzz::AnyLayout, Vec<fetch_fuzz::AnyRow>)| {
    fetch_fuzz::checks::csv_rows::check(input)
});
