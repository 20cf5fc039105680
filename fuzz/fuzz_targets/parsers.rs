//! The option value parsers (`--rate`, `--timeout` and friends, `--max-body`): never a panic on
//! any text, and whatever they accept is in range and reads back the same when written out.

#![no_main]

use std::time::Duration;

use fetch::config::{Rate, parse_bytes, parse_duration};
use libfuzzer_sys::fuzz_target;

/// The slowest rate accepted: one a year.
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fuzz_target!(|text: &str| {
    if let Ok(rate) = text.parse::<Rate>() {
        let interval = rate.interval();
        assert!(
            !interval.is_zero() && interval <= YEAR,
            "{text:?}: {interval:?}"
        );
        assert!(rate.per_second().is_finite() && rate.per_second() > 0.0);
        let shown = rate.to_string();
        assert_eq!(
            shown.parse::<Rate>(),
            Ok(rate),
            "{text:?} shown as {shown:?}"
        );
    }
    if let Ok(duration) = parse_duration(text) {
        let shown = humantime::format_duration(duration).to_string();
        assert_eq!(
            parse_duration(&shown),
            Ok(duration),
            "{text:?} shown as {shown:?}"
        );
    }
    if let Ok(bytes) = parse_bytes(text) {
        assert_eq!(parse_bytes(&bytes.to_string()), Ok(bytes), "{text:?}");
    }
});
