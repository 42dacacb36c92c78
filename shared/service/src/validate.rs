//! Field rules shared by the resource APIs of every context. Each returns the message a caller
//! sees in a `FieldViolation`.

/// A required display name: not blank, at most 255 characters.
pub fn name(s: &str) -> Result<(), String> {
    required(s, 255)
}

/// A required value of at most `max` characters.
pub fn required(s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("is required".to_owned());
    }
    max_len(s, max)
}

/// At most `max` characters.
pub fn max_len(s: &str, max: usize) -> Result<(), String> {
    if s.trim().chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// A URL-friendly identifier: lowercase letters, digits and single hyphens, not
/// starting or ending with one, at most 255 characters.
pub fn slug(s: &str) -> Result<(), String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err("must be lowercase letters, digits and single hyphens (e.g. riverside-estate)".into())
    }
}

/// An optional email address.
pub fn email(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(());
    }
    max_len(s, 255)?;
    match s.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err("is not an email address".into()),
    }
}

/// An optional http(s) URL.
pub fn url(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(());
    }
    max_len(s, 2048)?;
    if (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > "https://".len()
        && !s.chars().any(char::is_whitespace)
    {
        Ok(())
    } else {
        Err("must be an http:// or https:// URL".into())
    }
}

/// One of `allowed`.
pub fn one_of(s: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&s.trim()) {
        Ok(())
    } else {
        Err(format!("must be one of: {}", allowed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_single_hyphens() {
        assert!(slug("riverside-estate-2").is_ok());
        for bad in ["", "Riverside", "-a", "a-", "a--b", "a b", "a_b"] {
            assert!(slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_urls_are_checked_only_when_given() {
        assert!(email("").is_ok() && url("").is_ok());
        assert!(email("sales@builder.com.au").is_ok());
        assert!(email("sales@builder").is_err() && email("a b@c.d").is_err());
        assert!(url("https://builder.example").is_ok());
        assert!(url("ftp://builder.example").is_err());
    }

    #[test]
    fn required_values_are_not_blank_and_fit_their_column() {
        assert!(name("  ").is_err());
        assert!(name(&"x".repeat(256)).is_err());
        assert!(name("Riverside").is_ok());
        assert!(one_of("selling", &["planning", "selling"]).is_ok());
        assert!(one_of("sold", &["planning", "selling"]).is_err());
    }
}
