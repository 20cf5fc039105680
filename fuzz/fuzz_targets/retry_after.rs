//! `Retry-After` parsing (RFC 9110 §10.2.3): delay-seconds or an HTTP date, against any clock.
//! Never a panic; delay-seconds always give a delay (a huge one is a long wait, not none); a
//! date gives the time from now until it (zero when past); anything else gives none.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use fetch::fetch::parse_retry_after;
use libfuzzer_sys::fuzz_target;

/// HTTP dates stop at the year 9999.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

fuzz_target!(|input: (&str, u64, u32, u64)| {
    let (value, now_secs, now_nanos, ahead) = input;
    let now = UNIX_EPOCH + Duration::new(now_secs % LAST_HTTP_DATE, now_nanos % 1_000_000_000);
    let got = parse_retry_after(value, now);

    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let want = trimmed.parse().map_or(Duration::MAX, Duration::from_secs);
        assert_eq!(got, Some(want), "{value:?}");
    } else if let Ok(date) = httpdate::parse_http_date(trimmed) {
        assert_eq!(
            got,
            Some(date.duration_since(now).unwrap_or_default()),
            "{value:?}"
        );
    } else {
        assert_eq!(got, None, "{value:?}");
    }

    // A date the server formats the usual way comes back as the whole seconds until it.
    let whole_now = UNIX_EPOCH + Duration::from_secs(now_secs % LAST_HTTP_DATE);
    let ahead = ahead % (LAST_HTTP_DATE - now_secs % LAST_HTTP_DATE + 1);
    let date = httpdate::fmt_http_date(whole_now + Duration::from_secs(ahead));
    assert_eq!(
        parse_retry_after(&date, whole_now),
        Some(Duration::from_secs(ahead)),
        "{date}"
    );
});
