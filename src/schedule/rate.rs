//! Rates of events: `--rate` and `--per-host-rate`, as `20/s`, `600/m`, `3600/h`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A number of events per unit of time, e.g. `20/s` or `600/m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    count: f64,
    per: Duration,
    interval: Duration,
}

impl Rate {
    /// Time between two events at this rate: what makes the rate smooth instead of bursty.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn per_second(&self) -> f64 {
        self.count / self.per.as_secs_f64()
    }
}

impl FromStr for Rate {
    type Err = String;

    /// Accepts `N`, `N/s`, `N/m`, `N/h` (also `sec`, `min`, `hour`); `N` may be fractional.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s.split_once('/').unwrap_or((s, "s"));
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "unknown rate unit '{other}' (use /s, /m or /h, e.g. 20/s or 600/m)"
                ));
            }
        };
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a rate (e.g. 20, 20/s, 600/m, 3600/h)"))?;
        if !count.is_finite() || count <= 0.0 {
            return Err(format!("rate must be above zero, got '{s}'"));
        }
        // Beyond a nanosecond apart or a year apart, nobody means it.
        let interval = Duration::try_from_secs_f64(per.as_secs_f64() / count)
            .ok()
            .filter(|i| !i.is_zero() && *i <= Duration::from_secs(365 * 24 * 3600))
            .ok_or_else(|| {
                format!("rate '{s}' is out of range: from one a year to 1000000000/s")
            })?;
        Ok(Rate {
            count,
            per,
            interval,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let r: Rate = "20".parse().unwrap();
        assert_eq!(r.interval(), Duration::from_millis(50));
        assert_eq!("20/s".parse::<Rate>().unwrap(), r);
        assert_eq!(
            "600/m".parse::<Rate>().unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            "3600/h".parse::<Rate>().unwrap().interval(),
            Duration::from_secs(1)
        );
        assert_eq!(
            "0.5/s".parse::<Rate>().unwrap().interval(),
            Duration::from_secs(2)
        );
        for bad in ["0", "-1/s", "abc", "10/d", "", "inf", "NaN/s", "1e-30/h"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad} should be rejected");
        }
    }
}
