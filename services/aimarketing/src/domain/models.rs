//! Models as prompts name them, and the limits a prompt's settings are checked against.
//!
//! The service speaks one API (OpenAI-compatible Chat Completions), so a model is
//! whatever name the provider gives it: OpenAI's, or a local server's (`llama3.1:8b`,
//! `meta-llama/Llama-3.1-8B-Instruct`). The models below have known limits; any other
//! well-formed name is accepted with [`UNKNOWN`]'s conservative ones.

use rust_decimal::Decimal;

/// What a model accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tokens of request and reply together.
    pub context_window: u32,
    /// Tokens of one reply.
    pub max_output_tokens: u32,
}

/// The limits assumed for a model not in [`KNOWN`].
pub const UNKNOWN: Limits = Limits {
    context_window: 8_192,
    max_output_tokens: 4_096,
};

/// Models with published limits.
pub const KNOWN: &[(&str, Limits)] = &[
    (
        "gpt-4o",
        Limits {
            context_window: 128_000,
            max_output_tokens: 16_384,
        },
    ),
    (
        "gpt-4o-mini",
        Limits {
            context_window: 128_000,
            max_output_tokens: 16_384,
        },
    ),
    (
        "gpt-4.1",
        Limits {
            context_window: 1_047_576,
            max_output_tokens: 32_768,
        },
    ),
    (
        "gpt-4.1-mini",
        Limits {
            context_window: 1_047_576,
            max_output_tokens: 32_768,
        },
    ),
    (
        "gpt-4.1-nano",
        Limits {
            context_window: 1_047_576,
            max_output_tokens: 32_768,
        },
    ),
    (
        "o3-mini",
        Limits {
            context_window: 200_000,
            max_output_tokens: 100_000,
        },
    ),
    (
        "gpt-3.5-turbo",
        Limits {
            context_window: 16_385,
            max_output_tokens: 4_096,
        },
    ),
];

/// The longest model name (the seed's `varchar(100)`).
pub const MAX_NAME: usize = 100;

/// A prompt's `max_tokens` when none is sent, unless the model allows fewer.
pub const DEFAULT_MAX_TOKENS: u32 = 1_024;

/// The limits of model `name`.
pub fn limits(name: &str) -> Limits {
    KNOWN
        .iter()
        .find(|(known, _)| *known == name)
        .map_or(UNKNOWN, |(_, limits)| *limits)
}

/// A model name: 1 to 100 letters, digits and `. _ : / -`, starting with a letter or
/// digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let fine = (1..=MAX_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_NAME} letters, digits and . _ : / - starting with a letter or \
             digit, such as gpt-4o-mini or llama3.1:8b"
        ))
    }
}

/// A reply's token limit for `model`: above 0 and at most the model's output limit.
pub fn check_max_tokens(model: &str, max_tokens: i32) -> Result<(), String> {
    let limit = limits(model).max_output_tokens;
    if max_tokens > 0 && u32::try_from(max_tokens).is_ok_and(|m| m <= limit) {
        Ok(())
    } else {
        Err(format!(
            "must be from 1 to {limit}, the output limit of {model}"
        ))
    }
}

/// The default `max_tokens` for `model`.
pub fn default_max_tokens(model: &str) -> i32 {
    let tokens = DEFAULT_MAX_TOKENS.min(limits(model).max_output_tokens);
    i32::try_from(tokens).unwrap_or(i32::MAX)
}

/// A temperature: "0" to "2", at most two decimals (the seed's `decimal(3,2)`).
pub fn parse_temperature(raw: &str) -> Result<Decimal, String> {
    let range = (Decimal::ZERO, Decimal::TWO);
    fusion_service::api::parse_decimal(raw, 1, 2, Some(range))?
        .ok_or_else(|| "is required: a decimal from 0 to 2 such as 0.7".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_models_have_their_limits_and_others_the_conservative_ones() {
        assert_eq!(limits("gpt-4o-mini").max_output_tokens, 16_384);
        assert_eq!(limits("llama3.1:8b"), UNKNOWN);
        assert!(check_max_tokens("gpt-4o-mini", 16_384).is_ok());
        assert!(check_max_tokens("gpt-4o-mini", 16_385).is_err());
        assert!(check_max_tokens("llama3.1:8b", 4_097).is_err());
        assert!(check_max_tokens("gpt-4o", 0).is_err());
        assert_eq!(default_max_tokens("gpt-4o"), 1_024);
    }

    #[test]
    fn model_names_are_what_providers_use() {
        for good in [
            "gpt-4o-mini",
            "llama3.1:8b",
            "meta-llama/Llama-3.1-8B-Instruct",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "gpt 4", "a".repeat(101).as_str(), "gpt-4o\n"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn temperatures_run_from_zero_to_two_with_two_decimals() {
        assert_eq!(parse_temperature("0.7").unwrap().to_string(), "0.7");
        assert_eq!(parse_temperature("2").unwrap(), Decimal::TWO);
        for bad in ["", "2.01", "-0.1", "0.755", "1e0"] {
            assert!(parse_temperature(bad).is_err(), "{bad:?}");
        }
    }
}
