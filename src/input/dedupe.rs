//! `--dedupe`: repeats of a URL already seen in the run, recognised by a hash of the URL as
//! parsed (normalised), so a repeat costs 8 bytes of memory however long it is.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

use url::Url;

/// The URLs seen so far, as 64-bit hashes: 8 bytes of key (about 16 with the table's slack) per
/// distinct URL, whatever its length. Two different URLs sharing a hash is about as likely as
/// winning a lottery twice for any list that fits on a disk.
#[derive(Debug, Default)]
pub struct Dedupe {
    seen: HashSet<u64, BuildHasherDefault<Identity>>,
}

impl Dedupe {
    /// Whether `url` is new (and remembers it).
    pub fn first_time(&mut self, url: &Url) -> bool {
        let mut hasher = DefaultHasher::new();
        url.as_str().hash(&mut hasher);
        self.seen.insert(hasher.finish())
    }
}

/// The keys are hashes already.
#[derive(Debug, Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
