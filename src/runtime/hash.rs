//! SHA-256 in hex, for names made from what must not show in them (an email in a Lease's or an
//! Invitation's name). From aws-lc-rs, already linked as the TLS provider.

use std::fmt::Write;

/// The hex SHA-256 of `bytes` (64 lower-case digits).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_standard_vector() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
