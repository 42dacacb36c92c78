//! Fitting a conversation into the model's context window.
//!
//! The provider refuses a request whose messages and reply budget exceed the model's
//! window (`context_length_exceeded`), and the service has no tokenizer for every
//! model it may be pointed at (OpenAI's, a local Llama's...). So it estimates
//! conservatively: **one token per three characters**, rounded up, plus
//! [`MESSAGE_OVERHEAD`] tokens per message for its framing and [`REPLY_PRIMING`] for the
//! reply's. Real tokenizers give about four characters a token for English text and
//! three tokens of framing per message, so the estimate is above the provider's count
//! for ordinary text and a trimmed request fits; text that tokenizes worse than three
//! characters a token (long runs of digits or symbols, some scripts) may still be
//! refused, and is then reported as too long rather than retried.
//!
//! [`fit`] keeps every system message (the prompt, the lead's context) and the newest
//! turns that fit with the reply's budget, dropping the oldest first; the history it
//! keeps starts with a user message, so the model never sees a reply to a question it
//! was not shown.

use crate::provider::{ChatMessage, Role};

/// Tokens counted for each message's framing (role, separators).
pub const MESSAGE_OVERHEAD: u32 = 4;

/// Tokens counted for priming the reply.
pub const REPLY_PRIMING: u32 = 3;

/// The estimated tokens of `text`: one per three characters, rounded up.
pub fn text_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(3)).unwrap_or(u32::MAX)
}

/// The estimated tokens of a request made of `messages`, reply priming included.
pub fn prompt_tokens(messages: &[ChatMessage]) -> u32 {
    messages
        .iter()
        .map(|m| text_tokens(&m.content).saturating_add(MESSAGE_OVERHEAD))
        .fold(REPLY_PRIMING, u32::saturating_add)
}

/// The system messages and the newest message alone do not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the message needs about {needed} tokens with its context and a reply of {reply_tokens}, \
     more than the model's window of {window}"
)]
pub struct TooLong {
    /// The estimate for the system messages, the newest message and the reply.
    pub needed: u32,
    /// The reply's budget.
    pub reply_tokens: u32,
    /// The model's window.
    pub window: u32,
}

/// The model input: `system` messages first, then as much of `history` (oldest first,
/// ending with the message being sent) as fits in `window` tokens with `reply_tokens`
/// left for the reply.
pub fn fit(
    system: Vec<ChatMessage>,
    history: &[ChatMessage],
    window: u32,
    reply_tokens: u32,
) -> Result<Vec<ChatMessage>, TooLong> {
    let mut used = prompt_tokens(&system).saturating_add(reply_tokens);
    let mut kept = 0;
    for message in history.iter().rev() {
        let cost = text_tokens(&message.content).saturating_add(MESSAGE_OVERHEAD);
        if used.saturating_add(cost) > window {
            break;
        }
        used += cost;
        kept += 1;
    }
    if kept == 0 && !history.is_empty() {
        let newest = &history[history.len() - 1];
        return Err(TooLong {
            needed: used
                .saturating_add(text_tokens(&newest.content))
                .saturating_add(MESSAGE_OVERHEAD),
            reply_tokens,
            window,
        });
    }
    let mut start = history.len() - kept;
    // Not a reply to a question that was dropped (the newest is always kept).
    while start + 1 < history.len() && history[start].role != Role::User {
        start += 1;
    }
    let mut input = system;
    input.extend_from_slice(&history[start..]);
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, content: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: content.to_owned(),
        }
    }

    fn turns(n: usize) -> Vec<ChatMessage> {
        (0..n)
            .flat_map(|i| {
                [
                    msg(Role::User, &format!("question {i} {}", "q".repeat(50))),
                    msg(Role::Assistant, &format!("answer {i} {}", "a".repeat(50))),
                ]
            })
            .collect()
    }

    #[test]
    fn the_estimate_is_a_third_of_the_characters_rounded_up() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("abc"), 1);
        assert_eq!(text_tokens("abcd"), 2);
        // Characters, not bytes.
        assert_eq!(text_tokens("ééé"), 1);
        assert_eq!(
            prompt_tokens(&[msg(Role::System, "abc"), msg(Role::User, "abcdef")]),
            REPLY_PRIMING + 1 + 2 + 2 * MESSAGE_OVERHEAD
        );
    }

    #[test]
    fn everything_is_kept_when_it_fits() {
        let mut history = turns(3);
        history.push(msg(Role::User, "now"));
        let input = fit(vec![msg(Role::System, "sys")], &history, 10_000, 100).unwrap();
        assert_eq!(input.len(), 1 + history.len());
        assert_eq!(input[0].content, "sys");
    }

    #[test]
    fn the_oldest_turns_go_first_and_the_rest_fits_the_window() {
        let mut history = turns(20);
        history.push(msg(Role::User, "the newest question"));
        let system = vec![msg(Role::System, &"s".repeat(300))];
        let window = 600;
        let input = fit(system, &history, window, 150).unwrap();
        assert_eq!(input[0].role, Role::System, "the system message is kept");
        assert_eq!(input.last().unwrap().content, "the newest question");
        assert_eq!(
            input[1].role,
            Role::User,
            "the kept history starts with a question"
        );
        assert!(input.len() < history.len(), "something was dropped");
        assert!(prompt_tokens(&input) + 150 <= window);
        // Contiguous: the newest turns, in order.
        let kept = &input[1..];
        assert_eq!(kept, &history[history.len() - kept.len()..]);
    }

    #[test]
    fn a_message_that_cannot_fit_even_alone_is_too_long() {
        let history = vec![msg(Role::User, &"x".repeat(3000))];
        let error = fit(vec![msg(Role::System, "sys")], &history, 500, 100).unwrap_err();
        assert_eq!(error.window, 500);
        assert!(error.needed > 500, "{error:?}");
    }
}
