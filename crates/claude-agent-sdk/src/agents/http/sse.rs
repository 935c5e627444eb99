//! A server-sent events decoder, after the WHATWG specification's parsing rules.
//!
//! Lines end in LF, CR or CRLF (also when the CR and the LF arrive in different
//! chunks); `data:` lines of one event are joined with newlines; `event:` names
//! the event; comments (`:` lines) and unknown fields are skipped; an event is
//! dispatched on a blank line, and an unfinished event at the end of the stream
//! is dropped. Bytes are decoded per line, so a multi-byte character split across
//! chunks is never damaged.

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when the event had none (the spec's "message").
    pub(crate) event: String,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// Turns chunks of bytes into [`SseEvent`]s.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buffer: Vec<u8>,
    /// How much of `buffer` is known to hold no line end: a long line that
    /// arrives in many chunks is searched once, not once per chunk.
    searched: usize,
    /// The last chunk ended in CR: an LF starting the next one belongs to it.
    skip_lf: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

/// Longest line accepted before the stream is judged broken.
const MAX_LINE: usize = 16 * 1024 * 1024;

impl SseDecoder {
    /// Feeds `chunk`, appending every event it completes to `out`.
    ///
    /// # Errors
    /// A message when a line grows past 16 MiB without ending.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        let mut chunk = chunk;
        if self.skip_lf && !chunk.is_empty() {
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
            self.skip_lf = false;
        }
        // The buffer is taken out while its lines are handled, so that they can
        // be borrowed from it rather than copied.
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.extend_from_slice(chunk);
        let mut consumed = 0;
        let mut from = self.searched.min(buffer.len());
        while let Some(offset) = buffer[from..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = from + offset;
            let mut next = end + 1;
            if buffer[end] == b'\r' {
                match buffer.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.line(&String::from_utf8_lossy(&buffer[consumed..end]), out);
            consumed = next;
            from = next;
        }
        buffer.drain(..consumed);
        self.searched = buffer.len();
        self.buffer = buffer;
        if self.buffer.len() > MAX_LINE {
            return Err(format!("an event-stream line exceeded {MAX_LINE} bytes"));
        }
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            } else {
                self.event.clear();
            }
            self.data.clear();
            self.has_data = false;
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
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter for reconnecting browsers, not here.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut out).unwrap();
        }
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn parses_events_fields_and_comments() {
        let stream = b"\xef\xbb\xbf: keep-alive\nevent: ping\ndata: {}\n\ndata:a\ndata: b\nid: 7\nretry: 10\n\n\n\ndata\n\nevent: lost\n";
        assert_eq!(
            decode(&[stream]),
            vec![ev("ping", "{}"), ev("", "a\nb"), ev("", "")]
        );
    }

    #[test]
    fn handles_every_line_ending_and_split_points() {
        let stream = "event: x\r\ndata: é€😀\r\rdata: 2\n\n".as_bytes();
        let expected = vec![ev("x", "é€😀"), ev("", "2")];
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(decode(&[a, b]), expected, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(&bytewise), expected);
    }

    #[test]
    fn a_long_line_in_many_chunks_is_searched_once() {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        decoder.push(b"data: ", &mut out).unwrap();
        for _ in 0..1000 {
            decoder.push(&[b'a'; 1000], &mut out).unwrap();
            // What was searched is not searched again on the next chunk.
            assert_eq!(decoder.searched, decoder.buffer.len());
        }
        decoder.push(b"\r", &mut out).unwrap();
        decoder.push(b"\n\n", &mut out).unwrap();
        assert_eq!(out, vec![ev("", &"a".repeat(1_000_000))]);
        assert_eq!(decoder.searched, 0);
    }

    #[test]
    fn an_event_without_a_blank_line_is_dropped() {
        assert_eq!(decode(&[b"data: unfinished"]), vec![]);
    }
}
