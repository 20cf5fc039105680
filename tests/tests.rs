//! Integration tests: one binary (one link step), one module per area. Every server is started
//! by the test itself on 127.0.0.1; nothing here touches any other address.

mod support;

mod binary;
mod contract;
mod cron;
mod files;
mod fuzz_seeds;
#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)] // Helpers only the fuzz targets' own checks of other inputs use.
mod fuzzing;
mod hostile;
mod input_lines;
mod interop;
mod limits;
mod measures;
mod politeness;
mod requests;
mod robots;
mod scraping;
mod shaping;
mod shards;
mod state;
mod workbook;
