//! Field rules shared by the handlers; each returns a violation description.

/// Longest a seed `varchar(255)` may be.
pub const NAME_MAX: usize = 255;
/// Shortest password accepted.
pub const PASSWORD_MIN: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const PASSWORD_MAX: usize = 256;

/// A non-empty name of at most `max` characters.
pub fn name(value: &str, max: usize) -> Result<(), String> {
    let len = value.trim().chars().count();
    if len == 0 {
        Err("must not be empty".into())
    } else if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// A plausible email address: one `@`, a dotted domain, no spaces, at most 255 chars.
pub fn email(value: &str) -> Result<(), String> {
    let ok = value.len() <= NAME_MAX
        && !value.chars().any(char::is_whitespace)
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err("must be an email address".into())
    }
}

/// Lowercase letters, digits and single dashes, 2 to 63 characters.
pub fn slug(value: &str) -> Result<(), String> {
    let ok = (2..=63).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(())
    } else {
        Err("must be 2-63 lowercase letters, digits and single dashes".into())
    }
}

/// A password within the length bounds.
pub fn password(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len < PASSWORD_MIN {
        Err(format!("must be at least {PASSWORD_MIN} characters"))
    } else if len > PASSWORD_MAX {
        Err(format!("must be at most {PASSWORD_MAX} characters"))
    } else {
        Ok(())
    }
}

/// A role name: lowercase letters, digits and underscores, starting with a letter.
pub fn role_name(value: &str) -> Result<(), String> {
    let ok = (1..=100).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("must be lowercase letters, digits and underscores".into())
    }
}

/// An optional domain name (empty means none).
pub fn domain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let ok = value.len() <= NAME_MAX
        && value.contains('.')
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err("must be a domain name such as crm.example.com".into())
    }
}

/// An IANA time zone name such as `Australia/Sydney`, exactly as the tz database spells
/// it; returns the zone.
pub fn time_zone(value: &str) -> Result<chrono_tz::Tz, String> {
    if value.is_empty() {
        return Err("must be an IANA time zone such as Australia/Sydney".into());
    }
    value.parse::<chrono_tz::Tz>().map_err(|_| {
        let shown: String = value.chars().take(64).collect();
        format!("{shown:?} is not an IANA time zone; use a name such as Australia/Sydney")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        assert!(email("a@b.co").is_ok());
        for bad in ["", "a", "a@b", "a @b.co", "@b.co", "a@.co", "a@b.co."] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(slug("acme-homes").is_ok());
        for bad in ["A", "-a", "a-", "a--b", "a b", "x"] {
            assert!(slug(bad).is_err(), "{bad}");
        }
        assert!(password("short").is_err());
        assert!(password("long enough pw").is_ok());
        assert!(role_name("site_manager").is_ok());
        assert!(role_name("Site").is_err());
        assert!(domain("").is_ok());
        assert!(domain("crm.acme.test").is_ok());
        assert!(domain("not a domain").is_err());
        assert!(name("  ", 10).is_err());
        assert!(name("x".repeat(11).as_str(), 10).is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            time_zone("Australia/Sydney").unwrap(),
            chrono_tz::Australia::Sydney
        );
        assert!(time_zone("UTC").is_ok());
        for bad in ["", "Mars/Olympus", "australia/sydney", "+10:00", "AEST"] {
            assert!(time_zone(bad).is_err(), "{bad}");
        }
    }
}
