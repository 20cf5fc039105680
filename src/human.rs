//! Durations written for people: `850 ms`, `12.3 s`, `4m 05s`, in messages and the summary.

use std::time::Duration;

/// The scale a person reads at a glance. Rounds before choosing the unit, so 999.7 ms reads
/// `1.0 s`, not `1000 ms`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 9.995 {
        format!("{ms:.2} ms")
    } else if ms < 999.5 {
        format!("{ms:.0} ms")
    } else if ms < 59_950.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let secs = d.as_secs_f64().round() as u64;
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

/// `1 redirect`, `3 redirects`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_unit_after_rounding() {
        assert_eq!(duration(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(duration(Duration::from_micros(9_996)), "10 ms");
        assert_eq!(duration(Duration::from_micros(999_700)), "1.0 s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(duration(Duration::from_millis(59_960)), "1m 00s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(count(1, "redirect"), "1 redirect");
        assert_eq!(count(10, "redirect"), "10 redirects");
    }
}
