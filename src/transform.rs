//! The uppercase transform: bytes in, uppercase bytes out.
//!
//! This is the one place in upcase that knows about text. Every server model, the client and the
//! examples call it, so a rule about text (what ß becomes, what happens to a byte that is not
//! UTF-8) is decided here once.
//!
//! It must never do I/O, block, or lose a byte: whatever the peer sends, every byte that is not
//! part of a character this module can uppercase comes back exactly as it was. That is what makes
//! the service safe for arbitrary (binary, mis-encoded, truncated) input.
//!
//! TCP delivers a stream in pieces that may end in the middle of a multibyte character, so the
//! transform is a small state machine ([`Uppercaser`]) that holds back at most three bytes of an
//! unfinished character until the next piece arrives. UDP uses the whole-message form
//! ([`uppercase`]), which is the same machine fed once.

use std::fmt;
use std::str::FromStr;

/// How the bytes on the wire are to be read as text.
///
/// The lecture's warning ("there is no such thing as a string") made concrete: both sides must
/// agree on this, and the server can only uppercase what it can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 with full Unicode uppercasing (ß → SS, ﬁ → FI). Bytes that are not valid UTF-8
    /// pass through unchanged.
    #[default]
    Utf8,
    /// Only the bytes `a`–`z` change; every other byte is opaque. Binary-safe and the fastest.
    Ascii,
}

impl Encoding {
    /// Every encoding, in the order the help text lists them.
    pub const ALL: [Self; 2] = [Self::Utf8, Self::Ascii];

    /// The canonical name, as accepted by `--encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Ascii => "ascii",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--encoding` value that names no encoding upcase supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoding {0:?}; supported: utf-8, ascii")]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    fn from_str(label: &str) -> Result<Self, Self::Err> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "unicode-1-1-utf-8" => Ok(Self::Utf8),
            "ascii" | "us-ascii" | "bytes" => Ok(Self::Ascii),
            _ => Err(UnknownEncoding(label.to_owned())),
        }
    }
}

/// Uppercases one whole message (a UDP datagram, a command-line argument).
///
/// An unfinished character at the very end is passed through as it was, like any other byte that
/// is not valid text.
pub fn uppercase(input: &[u8], encoding: Encoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut uppercaser = Uppercaser::new(encoding);
    uppercaser.push(input, &mut out);
    uppercaser.finish(&mut out);
    out
}

/// Streaming uppercaser for input that arrives in pieces (a TCP connection).
///
/// Feeding a message in any split gives the same bytes as [`uppercase`] on the whole: a character
/// cut across two reads is held back (at most three bytes) and completed by the next piece.
#[derive(Debug, Clone)]
pub struct Uppercaser {
    encoding: Encoding,
    /// The start of a UTF-8 character whose remaining bytes have not arrived yet.
    pending: [u8; 3],
    pending_len: usize,
    /// Bytes passed through because they were not valid text, for the server's counters.
    invalid_bytes: u64,
}

impl Uppercaser {
    /// A fresh uppercaser, at the start of a stream.
    pub fn new(encoding: Encoding) -> Self {
        Self { encoding, pending: [0; 3], pending_len: 0, invalid_bytes: 0 }
    }

    /// The encoding this uppercaser reads.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Appends the uppercase of `input` to `out`, holding back an unfinished trailing character.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self.encoding {
            Encoding::Ascii => push_ascii_upper(input, out),
            Encoding::Utf8 => {
                let rest = self.complete_pending(input, out);
                let tail = self.push_utf8_upper(rest, out);
                // An empty tail must not clear what `complete_pending` may still be holding
                // (a character arriving one byte per read).
                if !tail.is_empty() {
                    self.hold(tail);
                }
            }
        }
    }

    /// Ends the stream: an unfinished character left over is passed through unchanged.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let (pending, len) = (self.pending, self.pending_len);
        self.pending_len = 0;
        self.pass_invalid(pending.get(..len).unwrap_or_default(), out);
    }

    /// How many bytes so far were not valid text and were passed through unchanged.
    pub fn invalid_bytes(&self) -> u64 {
        self.invalid_bytes
    }

    /// Whether bytes are held back waiting for the rest of a character.
    pub fn has_pending(&self) -> bool {
        self.pending_len > 0
    }

    fn pending(&self) -> &[u8] {
        self.pending.get(..self.pending_len).unwrap_or_default()
    }

    fn hold(&mut self, tail: &[u8]) {
        // `tail` is an incomplete UTF-8 prefix, so at most three bytes; anything longer would be
        // a bug in `push_utf8_upper`, and passing bytes on is better than losing them.
        match self.pending.get_mut(..tail.len()) {
            Some(slot) => {
                slot.copy_from_slice(tail);
                self.pending_len = tail.len();
            }
            None => {
                debug_assert!(false, "held-back tail longer than three bytes");
                self.pending_len = 0;
            }
        }
    }

    /// Finishes the held-back character with the first bytes of `input`; returns the rest.
    fn complete_pending<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        let held = self.pending_len;
        if held == 0 {
            return input;
        }
        let width = self.pending.first().map_or(4, |&lead| utf8_width(lead));
        let take = width.saturating_sub(held).min(input.len());
        let (head, rest) = input.split_at(take);
        let mut buffer = [0u8; 4];
        for (slot, byte) in buffer.iter_mut().zip(self.pending().iter().chain(head)) {
            *slot = *byte;
        }
        let candidate = buffer.get(..held + take).unwrap_or_default();
        self.pending_len = 0;
        match std::str::from_utf8(candidate) {
            Ok(text) => {
                push_str_upper(text, out);
                rest
            }
            // Still unfinished: `input` was shorter than the character's remaining bytes.
            Err(e) if e.error_len().is_none() => {
                self.hold(candidate);
                rest
            }
            // The held bytes turned out not to start a character: they pass through as they are,
            // and whatever of `input` followed the bad sequence is read afresh.
            Err(e) => {
                let bad = e.error_len().unwrap_or(held).max(held);
                self.pass_invalid(candidate.get(..bad).unwrap_or(candidate), out);
                input.get(bad - held..).unwrap_or_default()
            }
        }
    }
}

impl Uppercaser {
    /// Uppercases `input` as UTF-8 into `out`, passing invalid bytes through; returns the
    /// unfinished character at the end, if any, without writing it.
    fn push_utf8_upper<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        // Most traffic is ASCII; `is_ascii` checks a word at a time, so it pays for itself.
        if input.is_ascii() {
            push_ascii_upper(input, out);
            return &[];
        }
        let mut chunks = input.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            push_str_upper(chunk.valid(), out);
            let invalid = chunk.invalid();
            if chunks.peek().is_none() && is_unfinished_char(invalid) {
                return invalid;
            }
            self.pass_invalid(invalid, out);
        }
        &[]
    }

    fn pass_invalid(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.invalid_bytes += bytes.len() as u64;
        out.extend_from_slice(bytes);
    }
}

/// The byte length of a UTF-8 character from its first byte (4 for bytes that start none).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Whether `bytes` is the start of a valid UTF-8 character that more bytes would complete.
fn is_unfinished_char(bytes: &[u8]) -> bool {
    !bytes.is_empty() && matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_none())
}

/// Appends the full Unicode uppercase of `text`, copying ASCII runs in bulk.
fn push_str_upper(text: &str, out: &mut Vec<u8>) {
    let mut rest = text;
    while !rest.is_empty() {
        let ascii_len = rest.bytes().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        let (ascii, tail) = rest.split_at(ascii_len);
        push_ascii_upper(ascii.as_bytes(), out);
        let mut next_ascii = tail.len();
        for (at, c) in tail.char_indices() {
            if c.is_ascii() {
                next_ascii = at;
                break;
            }
            let mut utf8 = [0u8; 4];
            for upper in c.to_uppercase() {
                out.extend_from_slice(upper.encode_utf8(&mut utf8).as_bytes());
            }
        }
        rest = tail.get(next_ascii..).unwrap_or_default();
    }
}

/// Appends `input` with `a`–`z` raised and every other byte untouched.
fn push_ascii_upper(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(input);
    if let Some(appended) = out.get_mut(start..) {
        appended.make_ascii_uppercase();
    }
}

#[cfg(test)]
mod tests;
