//! What a wrong reply shows: the classic mistakes of a student's server, recognised from the bytes
//! that came back and said in words a student can act on, with advice for Python, Java and C
//! alike. A reply is read as a content (the right uppercase, only a-z uppercased, the last byte
//! left as it was, the first line only, the message unchanged, the start of the right reply)
//! followed by what should not be there: NUL bytes (the whole buffer was sent) or bytes left from
//! an earlier, longer message (a buffer reused and sent past what was received).
//!
//! Judging only: nothing here touches a socket. Evidence shows bytes quoted, escaped (`\0`, `\n`,
//! `\xff`) and cut after a few dozen characters, never a thousand raw NULs.

use super::card::{Row, Status};
use super::rubric::Criterion;
use super::Ctx;
use crate::format::thousands;
use crate::net::Transport;
use crate::transform::{decode_text, uppercase, Encoding};

/// What the start of a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Content {
    /// The uppercase of the message, as upcase's transform writes it.
    Correct,
    /// Nothing came back.
    Empty,
    /// Only a-z uppercased.
    AsciiOnly,
    /// Every byte but the last uppercased (a loop to `n - 1`).
    LastByteKept,
    /// The first line of several, uppercased.
    FirstLine,
    /// The message as it was sent.
    Unchanged,
    /// The first `at` bytes of the right reply.
    Cut { at: usize },
    /// Nothing recognised.
    Other,
}

/// What follows the content, and should not be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    /// NUL bytes: the rest of a buffer sent whole.
    Nul { nuls: usize },
    /// Bytes of earlier, longer messages (then, maybe, NULs): a buffer reused, sent past what
    /// this message filled.
    Stale { stale: usize, nuls: usize },
}

/// A reply, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Diagnosis {
    pub(super) content: Content,
    pub(super) extra: Option<Extra>,
    /// The length of the content part.
    content_len: usize,
}

/// Reads `reply`, the answer to `message`.
pub(super) fn diagnose(ctx: &Ctx, message: &[u8], reply: &[u8]) -> Diagnosis {
    let want = ctx.upper(message);
    let read = |content, extra, content_len| Diagnosis { content, extra, content_len };
    if reply == want.as_slice() {
        return read(Content::Correct, None, reply.len());
    }
    if reply.is_empty() {
        return read(Content::Empty, None, 0);
    }
    for (content, expected) in candidates(ctx, message, want.clone()) {
        if let Some(rest) = reply.strip_prefix(expected.as_slice()) {
            if rest.is_empty() {
                return read(content, None, expected.len());
            }
            if let Some(extra) = extra(ctx, message, expected.len(), rest) {
                return read(content, Some(extra), expected.len());
            }
        }
    }
    let nuls = if pads(ctx) { trailing_nuls(reply) } else { 0 };
    let body = reply.get(..reply.len() - nuls).unwrap_or_default();
    let ascii = uppercase(message, Encoding::Ascii);
    if !body.is_empty() && (want.starts_with(body) || ascii.starts_with(body)) {
        let extra = (nuls > 0).then_some(Extra::Nul { nuls });
        return read(Content::Cut { at: body.len() }, extra, body.len());
    }
    read(Content::Other, None, reply.len())
}

/// What a server may have meant to send, most likely first, none twice.
fn candidates(ctx: &Ctx, message: &[u8], want: Vec<u8>) -> Vec<(Content, Vec<u8>)> {
    let mut list = vec![(Content::Correct, want)];
    let mut add = |content, bytes: Vec<u8>| {
        if !list.iter().any(|(_, known)| *known == bytes) {
            list.push((content, bytes));
        }
    };
    add(Content::AsciiOnly, uppercase(message, Encoding::Ascii));
    if let Some((last, head)) = message.split_last() {
        for upper in [ctx.upper(head), uppercase(head, Encoding::Ascii)] {
            add(Content::LastByteKept, [upper.as_slice(), &[*last]].concat());
        }
    }
    if let Some(newline) = message.iter().position(|&byte| byte == b'\n') {
        if newline + 1 < message.len() {
            let (line, _) = message.split_at(newline);
            add(Content::FirstLine, ctx.upper(&[line, b"\n"].concat()));
            add(Content::FirstLine, ctx.upper(line));
        }
    }
    add(Content::Unchanged, message.to_vec());
    list
}

/// Whether NUL bytes can be told from text in the encoding graded (in UTF-16 they are half of
/// every ASCII letter).
fn pads(ctx: &Ctx) -> bool {
    !matches!(ctx.encoding(), Encoding::Utf16Le | Encoding::Utf16Be)
}

fn trailing_nuls(bytes: &[u8]) -> usize {
    bytes.iter().rev().take_while(|&&byte| byte == 0).count()
}

/// What `rest`, after `at` bytes of content, is: NUL padding, or the bytes a buffer that
/// received every message sent so far holds after this one (as sent, or uppercased in place),
/// then NULs.
fn extra(ctx: &Ctx, message: &[u8], at: usize, rest: &[u8]) -> Option<Extra> {
    let nuls = if pads(ctx) { trailing_nuls(rest) } else { 0 };
    let stale = rest.get(..rest.len() - nuls).unwrap_or_default();
    if stale.is_empty() {
        return Some(Extra::Nul { nuls });
    }
    let left_over = [message.len(), at].into_iter().any(|from| {
        let held = ctx.sent_at(from, stale.len());
        held == stale || held.to_ascii_uppercase() == stale
    });
    left_over.then_some(Extra::Stale { stale: stale.len(), nuls })
}

impl Diagnosis {
    /// Whether the reply was exactly right.
    pub(super) fn is_correct(&self) -> bool {
        self.content == Content::Correct && self.extra.is_none()
    }

    /// Whether the flaw shows in every reply, whatever was sent: charged once, to the lecture's
    /// client.
    pub(super) fn every_reply(&self) -> bool {
        self.extra.is_some() || matches!(self.content, Content::LastByteKept | Content::Unchanged)
    }

    /// What was seen, in one sentence.
    pub(super) fn evidence(&self, ctx: &Ctx, message: &[u8], reply: &[u8]) -> String {
        let encoding = ctx.encoding();
        let content = reply.get(..self.content_len).unwrap_or(reply);
        let said = match self.content {
            Content::Correct => String::new(),
            Content::Empty => "no reply".to_owned(),
            Content::AsciiOnly => format!("only a-z were uppercased: got {}", show(content, encoding)),
            Content::LastByteKept => {
                format!("the last byte was not uppercased: got {}", show(content, encoding))
            }
            Content::FirstLine => format!("only the first line came back: got {}", show(content, encoding)),
            Content::Unchanged => "the message came back as it was sent, not uppercased".to_owned(),
            Content::Cut { at } => cut(at, ctx.transport),
            Content::Other => {
                format!("wrong reply: {}, not {}", show(reply, encoding), show(&ctx.upper(message), encoding))
            }
        };
        let Some(extra) = self.extra else { return said };
        let received = match self.content {
            Content::Cut { at } => at,
            _ => message.len(),
        };
        let follows = match extra {
            Extra::Nul { nuls } => format!(
                "the reply is followed by {} NUL bytes: the server sent its whole {}-byte buffer instead of the \
                 {} it received",
                thousands(nuls),
                thousands(received + nuls),
                count(received, "byte")
            ),
            Extra::Stale { stale, nuls } => {
                let bytes = reply.get(self.content_len..self.content_len + stale).unwrap_or_default();
                let held = received + stale;
                let buffer = if nuls > 0 {
                    format!(", then {} NUL bytes: all of its {}-byte buffer", thousands(nuls), thousands(held + nuls))
                } else if ctx.longest_sent() > held {
                    format!("; a longer message filled its {}-byte buffer", thousands(held))
                } else {
                    format!("; its buffer holds at least {} bytes", thousands(held))
                };
                format!(
                    "the reply is followed by {} left from earlier, longer messages ({}): the server reuses its \
                     buffer and sends more than the {} it received{buffer}",
                    count(stale, "byte"),
                    show(bytes, encoding),
                    count(received, "byte")
                )
            }
        };
        if said.is_empty() {
            follows
        } else {
            format!("{said}; and {follows}")
        }
    }

    /// What to change, for Python, Java and C students alike.
    pub(super) fn advice(&self, transport: Transport) -> &'static str {
        match (self.extra, self.content) {
            (Some(Extra::Nul { .. }), _) if transport == Transport::Udp => WHOLE_BUFFER_UDP,
            (Some(Extra::Nul { .. }), _) => WHOLE_BUFFER_TCP,
            (Some(Extra::Stale { .. }), _) => STALE,
            (None, Content::LastByteKept) => LAST_BYTE,
            (None, Content::Unchanged) => "Uppercase what was received before sending it back.",
            (None, Content::FirstLine) => FIRST_LINE,
            (None, Content::Cut { .. }) if transport == Transport::Udp => CUT_UDP,
            (None, Content::Cut { .. }) => CUT_TCP,
            (None, Content::AsciiOnly) => ASCII_ONLY,
            (None, Content::Empty) => "Answer every message: read it, send back its uppercase.",
            (None, Content::Correct | Content::Other) => {
                "Send back exactly the uppercase of what was received."
            }
        }
    }
}

/// "cut at N bytes", with what that says about the server.
fn cut(at: usize, transport: Transport) -> String {
    let bytes = count(at, "byte");
    let n = thousands(at);
    // Buffers are sized by people: a power of two, or a round hundred.
    let buffer_like = (at >= 16 && at.is_power_of_two()) || (at >= 100 && at % 100 == 0);
    match transport {
        Transport::Udp => {
            format!("cut at {bytes}: the server receives into a {n}-byte buffer, and a longer datagram is cut to fit")
        }
        Transport::Tcp if buffer_like => {
            format!("cut at {bytes}: the server reads once, with a {n}-byte buffer")
        }
        Transport::Tcp => {
            format!("cut at {bytes}: the server answered what its first read returned, and no more")
        }
    }
}

const WHOLE_BUFFER_TCP: &str = "Send only the bytes received: C send(fd, buf, n, 0) with the n that recv \
                                returned, not sizeof buf; Java new String(buf, 0, n, UTF_8) with the n that \
                                read returned, not new String(buf); Python: send what recv returned.";
const WHOLE_BUFFER_UDP: &str = "Send only the bytes received: C sendto(fd, buf, n, ...) with the n that \
                                recvfrom returned, not sizeof buf; Java new String(packet.getData(), 0, \
                                packet.getLength(), UTF_8), not new String(packet.getData()); Python: send what \
                                recvfrom returned.";
const STALE: &str =
    "Send only what this message holds: the length recv returned, not strlen(buf) of a buffer \
                     never cleared (C), nor the whole reused array (Java: new String(packet.getData(), 0, \
                     packet.getLength(), UTF_8), and packet.setLength(buf.length) before each receive).";
const LAST_BYTE: &str =
    "Uppercase every byte received: a loop to n - 1 (to skip a newline the lecture's client \
                         never sends) leaves the last letter as it was.";
const FIRST_LINE: &str = "Read the whole message, not one line: the lecture's client sends no newline, and a \
                          message may hold several lines (Java: read() until -1, not readLine(); C: recv until 0, \
                          not fgets; Python: recv until b'').";
/// Advice for a TCP message cut short.
pub(super) const CUT_TCP: &str = "Read until the client half-closes (recv returns 0), not once: a message arrives \
                                  in pieces of any size (Python: recv until b''; Java: read until -1; C: recv \
                                  until 0).";
const CUT_UDP: &str = "Receive into a 65,535-byte buffer: a datagram longer than the buffer is cut to fit \
                       (Python recvfrom(65535); Java new byte[65535]; C char buf[65535]).";
/// Advice for a server that uppercases a-z only.
pub(super) const ASCII_ONLY: &str = "Uppercase decoded text with full Unicode rules: Python str.upper(), not \
                                     bytes.upper(); Java new String(bytes, 0, n, UTF_8).toUpperCase(Locale.ROOT); \
                                     C: toupper works per byte, so decode the UTF-8 and use a Unicode-aware \
                                     library (ICU's u_strToUpper).";

/// The row of a probe whose only question is whether the reply to `message` was exactly right:
/// a pass with `passed`, or a fail saying what the reply shows, charged to the criterion the flaw
/// belongs to (every reply: the lecture's client; a cut: the whole message).
pub(super) fn judge(name: &str, ctx: &Ctx, message: &[u8], reply: &[u8], passed: &str) -> Row {
    let diagnosis = diagnose(ctx, message, reply);
    if diagnosis.is_correct() {
        return Row::new(name, Status::Pass, passed, "");
    }
    wrong(name, ctx, message, reply, &diagnosis)
}

/// The failed row for a wrong reply, charged to the criterion the flaw belongs to.
pub(super) fn wrong(name: &str, ctx: &Ctx, message: &[u8], reply: &[u8], diagnosis: &Diagnosis) -> Row {
    let row = Row::new(
        name,
        Status::Fail,
        diagnosis.evidence(ctx, message, reply),
        diagnosis.advice(ctx.transport),
    );
    if diagnosis.every_reply() {
        row.charged_to(Criterion::LectureClient)
    } else if matches!(diagnosis.content, Content::Cut { .. }) {
        row.charged_to(Criterion::WholeMessage)
    } else {
        row
    }
}

/// "1 byte", "1,024 bytes".
pub(super) fn count(n: usize, unit: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{} {unit}{plural}", thousands(n))
}

/// How many characters of a reply evidence shows.
const SHOWN: usize = 40;

/// Bytes for evidence: the text in the encoding graded, quoted, with control characters and bytes
/// that do not decode escaped, cut after [`SHOWN`] characters (with the length, when cut).
pub(super) fn show(bytes: &[u8], encoding: Encoding) -> String {
    let pieces: Vec<String> = match encoding {
        Encoding::Utf8 | Encoding::Ascii => bytes
            .utf8_chunks()
            .flat_map(|chunk| {
                let valid = chunk.valid().chars().map(escape);
                valid.chain(chunk.invalid().iter().map(|byte| format!("\\x{byte:02x}")))
            })
            .collect(),
        _ => decode_text(bytes, encoding).chars().map(escape).collect(),
    };
    let shown: String = pieces.iter().take(SHOWN).map(String::as_str).collect();
    if pieces.len() > SHOWN {
        format!("\"{shown}\"… ({})", count(bytes.len(), "byte"))
    } else {
        format!("\"{shown}\"")
    }
}

/// A character as evidence shows it.
fn escape(c: char) -> String {
    match c {
        '\0' => "\\0".to_owned(),
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        '\t' => "\\t".to_owned(),
        '"' => "\\\"".to_owned(),
        '\\' => "\\\\".to_owned(),
        c if c.is_control() => format!("\\u{{{:x}}}", u32::from(c)),
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests;
