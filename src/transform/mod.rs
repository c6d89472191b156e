//! The uppercase transform: bytes in, uppercase bytes out.
//!
//! This is the one place in upcase that knows about text. Every server model, the client and the
//! examples call it, so a rule about text (what ß becomes, what happens to a byte that is not
//! valid) is decided here once.
//!
//! It must never do I/O, block, or lose a byte. Two rules make the service safe for any input in
//! any [`Encoding`]:
//! - bytes that do not decode pass through exactly as they came;
//! - a character is replaced by its uppercase only when the uppercase can be written in the same
//!   encoding (µ stays µ in windows-1252, which has no Greek Μ); otherwise it stays as it was.
//!
//! TCP delivers a stream in pieces that may end in the middle of a multibyte character, so the
//! transform is a small state machine ([`Uppercaser`]) that holds back at most three bytes of an
//! unfinished character until the next piece arrives. UDP uses the whole-message form
//! ([`uppercase`]), which is the same machine fed once. The codecs themselves live in one file per
//! family: [`utf8`] (also the `ascii` byte mode), [`utf16`], and [`legacy`] (the WHATWG encodings,
//! through `encoding_rs`).

pub mod legacy;
pub mod utf16;
pub mod utf8;

use std::fmt;
use std::str::FromStr;

/// How the bytes on the wire are to be read as text.
///
/// The lecture's warning ("there is no such thing as a string") made concrete: both sides must
/// agree on this, and the server can only uppercase what it can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 with full Unicode uppercasing (ß → SS, ﬁ → FI).
    #[default]
    Utf8,
    /// Only the bytes `a`–`z` change; every other byte is opaque. Binary-safe and the fastest.
    Ascii,
    /// UTF-16, little-endian code units, no byte order mark.
    Utf16Le,
    /// UTF-16, big-endian code units, no byte order mark.
    Utf16Be,
    /// Any other encoding of the WHATWG Encoding Standard that decodes without state: the
    /// windows-125x and ISO-8859 families, KOI8, Shift_JIS, EUC-KR, GBK, Big5 and more.
    Legacy(&'static encoding_rs::Encoding),
}

/// The encodings the documentation lists and the tests cover; `--encoding` accepts every WHATWG
/// label of a stateless encoding besides these.
pub const LISTED: [&str; 13] = [
    "utf-8",
    "ascii",
    "windows-1252",
    "iso-8859-2",
    "iso-8859-5",
    "koi8-r",
    "shift_jis",
    "euc-kr",
    "gbk",
    "utf-16le",
    "utf-16be",
    "latin1",
    "big5",
];

impl Encoding {
    /// The canonical name, as accepted by `--encoding` (for legacy encodings, the WHATWG name).
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Ascii => "ascii",
            Self::Utf16Le => "utf-16le",
            Self::Utf16Be => "utf-16be",
            Self::Legacy(encoding) => encoding.name(),
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
#[error(
    "unknown or unsupported encoding {0:?}; use a WHATWG label such as utf-8, ascii, latin1, \
     windows-1252, iso-8859-2, iso-8859-5, koi8-r, shift_jis, euc-kr, gbk, big5, utf-16le or utf-16be \
     (stateful encodings such as iso-2022-jp are not supported)"
)]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    fn from_str(label: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownEncoding(label.to_owned());
        // WHATWG maps "ascii" to windows-1252; here it means the byte mode, as documented.
        if matches!(label.trim().to_ascii_lowercase().as_str(), "ascii" | "us-ascii" | "bytes") {
            return Ok(Self::Ascii);
        }
        let encoding = encoding_rs::Encoding::for_label(label.trim().as_bytes()).ok_or_else(unknown)?;
        Ok(if encoding == encoding_rs::UTF_8 {
            Self::Utf8
        } else if encoding == encoding_rs::UTF_16LE {
            Self::Utf16Le
        } else if encoding == encoding_rs::UTF_16BE {
            Self::Utf16Be
        } else if encoding == encoding_rs::REPLACEMENT || encoding == encoding_rs::ISO_2022_JP {
            return Err(unknown());
        } else {
            Self::Legacy(encoding)
        })
    }
}

/// Text that cannot be written in the chosen encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{encoding} cannot write {character:?}; choose another --encoding (utf-8 writes everything)")]
pub struct Unwritable {
    /// The encoding.
    pub encoding: &'static str,
    /// The first character it cannot write.
    pub character: char,
}

/// Writes `text` in `encoding`, for a client sending what a person typed. `ascii` sends the
/// text's UTF-8 bytes as they are.
pub fn encode_text(text: &str, encoding: Encoding) -> Result<Vec<u8>, Unwritable> {
    match encoding {
        Encoding::Utf8 | Encoding::Ascii => Ok(text.as_bytes().to_vec()),
        Encoding::Utf16Le => Ok(utf16::encode(text, false)),
        Encoding::Utf16Be => Ok(utf16::encode(text, true)),
        Encoding::Legacy(legacy) => {
            let mut encoder = legacy.new_encoder();
            let mut out = Vec::with_capacity(text.len() * 2 + 16);
            let (result, _) = encoder.encode_from_utf8_to_vec_without_replacement(text, &mut out, true);
            match result {
                encoding_rs::EncoderResult::Unmappable(character) => {
                    Err(Unwritable { encoding: legacy.name(), character })
                }
                _ => Ok(out),
            }
        }
    }
}

/// Reads `bytes` in `encoding` for display: what does not decode shows as U+FFFD, so a person
/// sees where the two sides disagree. `ascii` shows the bytes as UTF-8.
pub fn decode_text(bytes: &[u8], encoding: Encoding) -> String {
    let whatwg = match encoding {
        Encoding::Utf8 | Encoding::Ascii => encoding_rs::UTF_8,
        Encoding::Utf16Le => encoding_rs::UTF_16LE,
        Encoding::Utf16Be => encoding_rs::UTF_16BE,
        Encoding::Legacy(legacy) => legacy,
    };
    whatwg.decode_without_bom_handling(bytes).0.into_owned()
}

/// Uppercases one whole message (a UDP datagram, a command-line argument).
///
/// An unfinished character at the very end is passed through as it was, like any other byte that
/// does not decode.
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
    codec: Codec,
    /// The start of a character whose remaining bytes have not arrived yet.
    pending: [u8; 3],
    /// A byte, not a `usize`: a TCP connection holds its uppercaser for as long as it is open.
    pending_len: u8,
    /// Bytes passed through because they did not decode, for the server's counters.
    invalid_bytes: u64,
}

/// The longest character, in bytes, of any supported encoding (UTF-8, UTF-16 pairs, GB18030).
const MAX_CHAR_LEN: usize = 4;

impl Uppercaser {
    /// A fresh uppercaser, at the start of a stream.
    pub fn new(encoding: Encoding) -> Self {
        Self { codec: Codec::new(encoding), pending: [0; 3], pending_len: 0, invalid_bytes: 0 }
    }

    /// The encoding this uppercaser reads.
    pub fn encoding(&self) -> Encoding {
        self.codec.encoding()
    }

    /// Appends the uppercase of `input` to `out`, holding back an unfinished trailing character.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let rest = self.complete_pending(input, out);
        let held = self.codec.push(rest, out, &mut self.invalid_bytes);
        // The codec holds back only when `rest` ended unfinished; an empty `rest` must not clear
        // what `complete_pending` may still hold (a character arriving one byte per read).
        if held > 0 {
            self.hold(rest.get(rest.len().saturating_sub(held)..).unwrap_or_default());
        }
    }

    /// Ends the stream: an unfinished character left over is passed through unchanged.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let (pending, len) = (self.pending, usize::from(self.pending_len));
        self.pending_len = 0;
        let pending = pending.get(..len).unwrap_or_default();
        self.invalid_bytes += pending.len() as u64;
        out.extend_from_slice(pending);
    }

    /// How many bytes so far did not decode and were passed through unchanged.
    pub fn invalid_bytes(&self) -> u64 {
        self.invalid_bytes
    }

    /// Whether bytes are held back waiting for the rest of a character.
    pub fn has_pending(&self) -> bool {
        self.pending_len > 0
    }

    fn hold(&mut self, tail: &[u8]) {
        match self.pending.get_mut(..tail.len()) {
            Some(slot) => {
                slot.copy_from_slice(tail);
                // At most three, as `slot` shows.
                self.pending_len = u8::try_from(tail.len()).unwrap_or(u8::MAX);
            }
            // A codec never holds more than three bytes; were it to, passing them on as they
            // are is better than losing them.
            None => {
                debug_assert!(false, "held-back tail longer than three bytes");
                self.pending_len = 0;
            }
        }
    }

    /// Finishes the held-back character with the first bytes of `input`; returns the rest.
    ///
    /// The held bytes and up to four more are run through the codec together. Whatever the codec
    /// holds back of that is either still unfinished (and `input` is used up) or made of `input`'s
    /// own bytes, which are then read again from `input` itself.
    fn complete_pending<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        let held = usize::from(self.pending_len);
        if held == 0 {
            return input;
        }
        let take = MAX_CHAR_LEN.min(input.len());
        let mut buffer = [0u8; 3 + MAX_CHAR_LEN];
        let pending = self.pending;
        let joined = pending.iter().take(held).chain(input.iter().take(take));
        for (slot, byte) in buffer.iter_mut().zip(joined) {
            *slot = *byte;
        }
        let candidate = buffer.get(..held + take).unwrap_or_default();
        self.pending_len = 0;
        let tail = self.codec.push(candidate, out, &mut self.invalid_bytes);
        if tail > take {
            // Still unfinished: every byte of `input` went into the held character.
            self.hold(candidate.get(candidate.len() - tail..).unwrap_or_default());
            return &[];
        }
        input.get(take - tail..).unwrap_or_default()
    }
}

/// One encoding's way of uppercasing a piece of input.
#[derive(Debug, Clone)]
enum Codec {
    Utf8,
    Ascii,
    Utf16 { big_endian: bool },
    Legacy(legacy::Legacy),
}

impl Codec {
    fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Utf8 => Self::Utf8,
            Encoding::Ascii => Self::Ascii,
            Encoding::Utf16Le => Self::Utf16 { big_endian: false },
            Encoding::Utf16Be => Self::Utf16 { big_endian: true },
            Encoding::Legacy(encoding) => Self::Legacy(legacy::Legacy::new(encoding)),
        }
    }

    fn encoding(&self) -> Encoding {
        match self {
            Self::Utf8 => Encoding::Utf8,
            Self::Ascii => Encoding::Ascii,
            Self::Utf16 { big_endian: false } => Encoding::Utf16Le,
            Self::Utf16 { big_endian: true } => Encoding::Utf16Be,
            Self::Legacy(legacy) => Encoding::Legacy(legacy.encoding()),
        }
    }

    /// Uppercases `input` into `out`, counting bytes passed through in `invalid`; returns how
    /// many bytes at the end form an unfinished character and were not written (at most three).
    fn push(&self, input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
        match self {
            Self::Utf8 => utf8::push(input, out, invalid),
            Self::Ascii => {
                utf8::push_ascii_upper(input, out);
                0
            }
            Self::Utf16 { big_endian } => utf16::push(input, *big_endian, out, invalid),
            Self::Legacy(legacy) => legacy.push(input, out, invalid),
        }
    }
}

#[cfg(test)]
mod encoding_tests;
#[cfg(test)]
mod tests;
