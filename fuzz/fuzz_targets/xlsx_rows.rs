//! The workbook row writer: whatever the values and the layout, the workbook opens in an
//! independent reader and every cell reads back typed as written.
//!
//! The check itself is `fetch_fuzz::checks::xlsx_rows`, which `cargo test` also runs over the
//! seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (fetch_fuzz::AnyLayout, Vec<fetch_fuzz::AnyRow>)| {
    fetch_fuzz::checks::xlsx_rows::check(input)
});
