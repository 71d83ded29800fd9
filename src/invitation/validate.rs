//! Checks the controller applies itself, because the API server's schema validation may be
//! missing (an old CRD, a cluster that ignores parts of the schema) and a wrong remote call
//! cannot be taken back.

/// Longest email SMTP allows.
pub const MAX_EMAIL_LEN: usize = 254;

/// Validates an email the same way as the CRD's `spec.email` pattern: an ASCII local part of
/// the characters RFC 5322 allows unquoted, `@`, and a domain of at least two DNS labels.
pub fn email(email: &str) -> Result<(), String> {
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("longer than {MAX_EMAIL_LEN} characters"));
    }
    if !email.is_ascii() {
        return Err("contains non-ASCII characters (look-alike letters are refused)".into());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(format!("{email:?} is not an email address (no @)"));
    };
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    if !local_ok {
        return Err(format!("{email:?} has an invalid local part"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(format!("{email:?} has an invalid domain"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "jane@example.com",
            "jane.doe+kafka@sub.example.co.uk",
            "o'brien@example.ie",
            "x@a-b.io",
        ] {
            assert_eq!(email(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_the_crd_pattern_refuses() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "jane@@example.com",
            "jane@exa_mple.com",
            "jane@-example.com",
            "jane@example..com",
            "ja ne@example.com",
            "jаne@example.com", // Cyrillic а
            "jane@example.com\n",
            long.as_str(),
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }
}

/// Checks the email's domain against an allow-list (empty: every domain). Subdomains of an
/// allowed domain are not allowed implicitly: list them.
pub fn email_domain(email: &str, allowed: &[String]) -> Result<(), String> {
    if allowed.is_empty() {
        return Ok(());
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(domain)) {
        Ok(())
    } else {
        Err(format!(
            "spec.email's domain {domain:?} is not in the operator's allowed email domains ({})",
            allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod domain_tests {
    use super::*;

    #[test]
    fn the_allow_list_is_exact_and_case_insensitive() {
        let allowed = vec!["example.com".to_string()];
        assert!(email_domain("a@EXAMPLE.com", &allowed).is_ok());
        assert!(email_domain("a@evil.example.com", &allowed).is_err());
        assert!(email_domain("a@example.com.evil.io", &allowed).is_err());
        assert!(email_domain("a@anything.io", &[]).is_ok());
    }
}
