//! Chaos suite: placeholder until the suite lands.
