//! `Retry-After` parsing (RFC 9110 §10.2.3): delay-seconds or an HTTP date, against any clock.
//! Never a panic; delay-seconds always give a delay (a huge one is a long wait, not none); a
//! date gives the time from now until it (zero when past); anything else gives none.
//!
//! The check itself is `fetch_fuzz::checks::retry_after`, which `cargo test` also runs over the seeds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, u64, u32, u64)| fetch_fuzz::checks::retry_after::check(input));
