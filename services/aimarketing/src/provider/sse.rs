//! An incremental parser of `text/event-stream` (server-sent events), as the HTML
//! standard defines it, for the provider's streamed replies.
//!
//! Bytes are fed as they arrive, in pieces of any size: a piece may end mid-line,
//! mid-JSON or mid-character, or between the `\r` and `\n` of a line break. Lines end at
//! `\r\n`, `\n` or `\r`; a line starting with `:` is a comment (keep-alives); `data:`
//! lines accumulate (several make one multi-line data, joined by `\n`); `event:` names
//! the event's type; a blank line dispatches the event, and one with no data is not
//! dispatched. `id:` and `retry:` are for reconnecting browsers and are ignored: a
//! completion is never resumed. A line longer than [`MAX_LINE_BYTES`] is refused, so a
//! misbehaving provider cannot make the service buffer without bound.

/// The longest line accepted. A completion chunk is a few hundred bytes; a megabyte
/// leaves room for providers that send a whole reply in one event.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if one was given (OpenAI sends none).
    pub event: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// The stream broke the format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a server-sent event line is longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

/// The parser's state between pieces.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The bytes of the line not yet ended.
    line: Vec<u8>,
    /// The last piece ended with `\r`, so a `\n` starting the next one ends nothing.
    after_cr: bool,
    /// Whether the first line was seen (a byte-order mark may start it).
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the stream; the events it completed are pushed onto
    /// `events`.
    pub fn feed(&mut self, bytes: &[u8], events: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        let mut rest = bytes;
        if self.after_cr {
            self.after_cr = false;
            if let Some(after) = rest.strip_prefix(b"\n") {
                rest = after;
            }
        }
        while let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.push_line_bytes(&rest[..end])?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&String::from_utf8_lossy(&line), events);
            rest = match (rest[end], rest.get(end + 1)) {
                (b'\r', Some(b'\n')) => &rest[end + 2..],
                (b'\r', None) => {
                    self.after_cr = true;
                    &[]
                }
                _ => &rest[end + 1..],
            };
        }
        self.push_line_bytes(rest)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), LineTooLong> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, mut line: &str, events: &mut Vec<SseEvent>) {
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
        }
        if line.is_empty() {
            let event = self.event.take();
            if std::mem::take(&mut self.has_data) {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the "\n" after the last data line
                events.push(SseEvent { event, data });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in input.chunks(piece) {
            parser.feed(chunk, &mut events).expect("lines are short");
        }
        events
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn events_are_the_same_whatever_the_pieces() {
        let input = "data: {\"a\": \"é😀\"}\n\n: keep-alive\n\ndata: second\r\n\r\ndata:third\r\rdata: [DONE]\n\n";
        let whole = parse_in_pieces(input.as_bytes(), input.len());
        assert_eq!(
            data(&whole),
            ["{\"a\": \"é😀\"}", "second", "third", "[DONE]"]
        );
        for piece in 1..input.len() {
            assert_eq!(
                parse_in_pieces(input.as_bytes(), piece),
                whole,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn multi_line_data_is_joined_and_fields_are_read() {
        let events = parse_in_pieces(
            b"event: update\nid: 7\nretry: 10\ndata: one\ndata:two\ndata\n\n",
            1,
        );
        assert_eq!(
            events,
            [SseEvent {
                event: Some("update".to_owned()),
                data: "one\ntwo\n".to_owned(),
            }]
        );
    }

    #[test]
    fn comments_and_data_less_events_dispatch_nothing() {
        let events = parse_in_pieces(b": ping\n\nevent: x\n\n:\n\n", 3);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn an_unfinished_event_at_the_end_is_not_dispatched() {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        parser
            .feed(b"data: done\n\ndata: half", &mut events)
            .unwrap();
        assert_eq!(data(&events), ["done"]);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_skipped_even_split() {
        let input = b"\xEF\xBB\xBFdata: x\n\n";
        for piece in 1..input.len() {
            assert_eq!(
                data(&parse_in_pieces(input, piece)),
                ["x"],
                "pieces of {piece}"
            );
        }
        assert_eq!(data(&parse_in_pieces(b"data: y\n\n", 1)), ["y"]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let piece = vec![b'a'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..=(MAX_LINE_BYTES / piece.len()) {
            result = parser.feed(&piece, &mut events);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(LineTooLong));
    }
}
