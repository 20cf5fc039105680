//! `--shard K/N`: which lines this process takes when one list is split over N machines.
//!
//! A line goes to shard `fnv1a64(host) % N`, where `host` is the URL's host as the WHATWG URL
//! parser writes it (lowercase, IDNs in punycode, IPv6 in brackets) and FNV-1a is the 64-bit
//! variant (offset basis 0xcbf29ce484222325, prime 0x100000001b3). It depends on nothing but the
//! host, so it is the same on every machine and every version, and all URLs of a host (any
//! scheme or port) land on one machine, where per-host limits then hold for the whole fleet.
//! Lines that are not URLs go to shard 0, so they still get exactly one row.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// This process's part of the list: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Whether a line with this target belongs to this shard.
    pub fn takes(&self, target: Result<&Url, ()>) -> bool {
        let home = match target {
            Ok(url) => shard_of(url.host_str().unwrap_or_default(), self.count),
            Err(()) => 0,
        };
        home == self.index
    }
}

/// The shard of `host` among `count`.
pub fn shard_of(host: &str, count: u64) -> u64 {
    fnv1a64(host.as_bytes()) % count.max(1)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `K/N`, or `auto/N` with K from the environment of an engine that sets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto { count: u64 },
}

/// Environment variables that carry a worker's index, in the order they are tried.
pub const INDEX_VARIABLES: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

impl ShardArg {
    /// The shard, reading the index from the environment for `auto`.
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let (index, count) = match self {
            ShardArg::Fixed(shard) => return Ok(shard),
            ShardArg::Auto { count } => {
                let (name, value) = INDEX_VARIABLES
                    .iter()
                    .find_map(|name| env(name).map(|v| (*name, v)))
                    .ok_or_else(|| {
                        format!(
                            "--shard auto/{count} needs the shard index in {} (set by \
                             Kubernetes Indexed Jobs and Slurm arrays)",
                            INDEX_VARIABLES.join(" or ")
                        )
                    })?;
                let index = value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name}={value} is not a shard index"))?;
                (index, count)
            }
        };
        check(index, count)
    }
}

fn check(index: u64, count: u64) -> Result<Shard, String> {
    if count == 0 {
        return Err("the number of shards must be at least 1".into());
    }
    if index >= count {
        return Err(format!(
            "shard index {index} is out of range for {count} shards (0 to {})",
            count - 1
        ));
    }
    Ok(Shard { index, count })
}

impl FromStr for ShardArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (index, count) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not K/N or auto/N (e.g. 0/4)"))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| format!("'{count}' is not a number of shards"))?;
        if index.trim() == "auto" {
            check(0, count)?;
            return Ok(ShardArg::Auto { count });
        }
        let index: u64 = index
            .trim()
            .parse()
            .map_err(|_| format!("'{index}' is not a shard index (or 'auto')"))?;
        check(index, count).map(ShardArg::Fixed)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_fixed_forever() {
        // Published FNV-1a 64 test vectors: these values must never change.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(shard_of("example.com", 4), fnv1a64(b"example.com") % 4);
    }

    #[test]
    fn every_url_of_a_host_goes_to_one_shard() {
        let a = Url::parse("http://Example.COM/a").unwrap();
        let b = Url::parse("https://example.com:8443/b?x").unwrap();
        assert_eq!(
            shard_of(a.host_str().unwrap(), 7),
            shard_of(b.host_str().unwrap(), 7)
        );
        let zero = Shard { index: 0, count: 3 };
        assert!(zero.takes(Err(())), "bad lines belong to shard 0");
        assert!(!Shard { index: 1, count: 3 }.takes(Err(())));
    }

    #[test]
    fn parses_and_resolves() {
        assert_eq!(
            "2/5".parse::<ShardArg>().unwrap(),
            ShardArg::Fixed(Shard { index: 2, count: 5 })
        );
        for bad in ["5/5", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<ShardArg>().is_err(), "{bad}");
        }
        let auto: ShardArg = "auto/4".parse().unwrap();
        let env = |name: &str| (name == "SLURM_ARRAY_TASK_ID").then(|| "3".to_owned());
        assert_eq!(auto.resolve(env).unwrap(), Shard { index: 3, count: 4 });
        assert!(auto.resolve(|_| None).is_err());
        assert!(auto.resolve(|_| Some("9".into())).is_err());
    }
}
