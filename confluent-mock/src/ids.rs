//! Ids as the API issues them: a prefix and random lowercase alphanumerics, never reused.

use std::collections::HashSet;

/// Issues ids and remembers every one it issued.
#[derive(Debug)]
pub struct Ids {
    rng: fastrand::Rng,
    issued: HashSet<String>,
}

impl Ids {
    pub fn new() -> Self {
        Self {
            rng: fastrand::Rng::new(),
            issued: HashSet::new(),
        }
    }

    /// A new id: `prefix` and `len` characters of `[0-9a-z]`, never one issued before.
    pub fn fresh(&mut self, prefix: &str, len: usize) -> String {
        loop {
            let suffix: String = (0..len)
                .map(|_| char::from_digit(u32::from(self.rng.u8(0..36)), 36).unwrap_or('0'))
                .collect();
            let id = format!("{prefix}{suffix}");
            if self.issued.insert(id.clone()) {
                return id;
            }
        }
    }
}
