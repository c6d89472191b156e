//! The WHATWG encodings other than UTF-8 and UTF-16, through `encoding_rs`: the windows-125x,
//! ISO-8859 and KOI8 single-byte families, and the multibyte Shift_JIS, EUC-KR, GBK and Big5.
//!
//! The lossless rule decides everything here: a character is replaced only when its uppercase can
//! be written in the same encoding, and otherwise keeps its *original bytes* (not a re-encoding,
//! since some characters have more than one). So the codec must know where each character starts
//! and ends:
//! - single-byte encodings: a table of 256 entries, built once per encoding, says what each byte
//!   becomes; a lookup per byte.
//! - multibyte encodings: ASCII bytes between characters are ASCII in all of them; any other
//!   character is found by feeding a decoder one more byte at a time until it yields one.

use std::sync::{Mutex, OnceLock, PoisonError};

use encoding_rs::{DecoderResult, EncoderResult, Encoding};

use super::utf8::push_ascii_upper;

/// One legacy encoding, ready to uppercase.
#[derive(Debug, Clone)]
pub struct Legacy {
    encoding: &'static Encoding,
    /// For single-byte encodings, what each byte becomes.
    table: Option<&'static ByteTable>,
}

/// What one byte of a single-byte encoding becomes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The uppercase, encoded (an uppercase of up to three characters, one byte each).
    bytes: [u8; 3],
    len: u8,
    /// The byte does not decode, so it passes through (and is counted).
    undecodable: bool,
}

type ByteTable = [Entry; 256];

impl Legacy {
    /// The codec for `encoding` (a single-byte table is built on first use, then shared).
    pub fn new(encoding: &'static Encoding) -> Self {
        let table = encoding.is_single_byte().then(|| byte_table(encoding));
        Self { encoding, table }
    }

    /// The encoding it reads.
    pub fn encoding(&self) -> &'static Encoding {
        self.encoding
    }

    /// Uppercases `input` into `out`, passing undecodable bytes through (counted in `invalid`);
    /// returns how many bytes at the end form an unfinished character, which are not written.
    pub(super) fn push(&self, input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
        if input.is_ascii() {
            push_ascii_upper(input, out);
            return 0;
        }
        match self.table {
            Some(table) => {
                push_single_byte(table, input, out, invalid);
                0
            }
            None => self.push_multibyte(input, out, invalid),
        }
    }

    fn push_multibyte(&self, input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
        let mut rest = input;
        loop {
            let ascii = rest.iter().position(|b| !b.is_ascii()).unwrap_or(rest.len());
            let (run, tail) = rest.split_at(ascii);
            push_ascii_upper(run, out);
            rest = tail;
            if rest.is_empty() {
                return 0;
            }
            match probe(self.encoding, rest) {
                Probe::Char { len, text } => {
                    let (original, after) = rest.split_at(len.min(rest.len()));
                    push_upper(self.encoding, text.as_str(), original, out);
                    rest = after;
                }
                Probe::Unfinished => return rest.len(),
                Probe::Invalid => {
                    let (bad, after) = rest.split_at(1);
                    *invalid += 1;
                    out.extend_from_slice(bad);
                    rest = after;
                }
            }
        }
    }
}

fn push_single_byte(table: &ByteTable, input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) {
    out.reserve(input.len());
    for &byte in input {
        let entry = table.get(usize::from(byte)).copied().unwrap_or(Entry {
            bytes: [byte, 0, 0],
            len: 1,
            undecodable: true,
        });
        *invalid += u64::from(entry.undecodable);
        out.extend_from_slice(entry.bytes.get(..usize::from(entry.len)).unwrap_or_default());
    }
}

/// The table of a single-byte encoding, built once and kept for the life of the process (there
/// are fewer than thirty such encodings, 1 KiB each).
fn byte_table(encoding: &'static Encoding) -> &'static ByteTable {
    static TABLES: OnceLock<Mutex<Vec<(&'static Encoding, &'static ByteTable)>>> = OnceLock::new();
    let mut tables = TABLES.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, table)) = tables.iter().find(|(known, _)| *known == encoding) {
        return table;
    }
    let table: &'static ByteTable = Box::leak(Box::new(std::array::from_fn(|byte| {
        let original = [u8::try_from(byte).unwrap_or_default()];
        let identity = Entry { bytes: [original[0], 0, 0], len: 1, undecodable: false };
        let Probe::Char { text, .. } = probe(encoding, &original) else {
            return Entry { undecodable: true, ..identity };
        };
        let mut upper = Vec::with_capacity(3);
        push_upper(encoding, text.as_str(), &original, &mut upper);
        let mut bytes = [0u8; 3];
        match bytes.get_mut(..upper.len()) {
            Some(slot) => {
                slot.copy_from_slice(&upper);
                Entry { bytes, len: u8::try_from(upper.len()).unwrap_or(1), undecodable: false }
            }
            None => identity,
        }
    })));
    tables.push((encoding, table));
    table
}

/// A decoded character, with the number of bytes it took (text, since a few Big5 sequences
/// decode to two characters).
enum Probe {
    Char {
        len: usize,
        text: SmallText,
    },
    /// More bytes are needed to tell.
    Unfinished,
    /// The first byte starts no character.
    Invalid,
}

/// Decodes the one character at the start of `bytes`, feeding the decoder a byte at a time.
fn probe(encoding: &'static Encoding, bytes: &[u8]) -> Probe {
    for len in 1..=bytes.len().min(4) {
        let mut decoder = encoding.new_decoder_without_bom_handling();
        let mut decoded = [0u8; 16];
        let (result, _, written) = decoder.decode_to_utf8_without_replacement(
            bytes.get(..len).unwrap_or_default(),
            &mut decoded,
            false,
        );
        match result {
            DecoderResult::Malformed(..) | DecoderResult::OutputFull => return Probe::Invalid,
            DecoderResult::InputEmpty if written == 0 => continue,
            DecoderResult::InputEmpty => {
                return match SmallText::new(decoded.get(..written).unwrap_or_default()) {
                    Some(text) => Probe::Char { len, text },
                    None => Probe::Invalid,
                };
            }
        }
    }
    if bytes.len() < 4 {
        Probe::Unfinished
    } else {
        Probe::Invalid
    }
}

/// Appends the uppercase of `text` in `encoding`, or `original` when the uppercase is the same or
/// cannot be written in `encoding`.
fn push_upper(encoding: &'static Encoding, text: &str, original: &[u8], out: &mut Vec<u8>) {
    let mut upper = [0u8; 48];
    let mut upper_len = 0;
    for c in text.chars().flat_map(char::to_uppercase) {
        let mut utf8 = [0u8; 4];
        let encoded = c.encode_utf8(&mut utf8).as_bytes();
        match upper.get_mut(upper_len..upper_len + encoded.len()) {
            Some(slot) => slot.copy_from_slice(encoded),
            None => return out.extend_from_slice(original),
        }
        upper_len += encoded.len();
    }
    let upper = std::str::from_utf8(upper.get(..upper_len).unwrap_or_default()).unwrap_or(text);
    if upper == text {
        return out.extend_from_slice(original);
    }
    let mut encoder = encoding.new_encoder();
    let mut encoded = [0u8; 48];
    match encoder.encode_from_utf8_without_replacement(upper, &mut encoded, true) {
        (EncoderResult::InputEmpty, _, written) => {
            out.extend_from_slice(encoded.get(..written).unwrap_or(original))
        }
        (EncoderResult::Unmappable(_) | EncoderResult::OutputFull, _, _) => out.extend_from_slice(original),
    }
}

/// A few characters of decoded text, on the stack.
#[derive(Clone, Copy)]
struct SmallText {
    bytes: [u8; 16],
    len: usize,
}

impl SmallText {
    fn new(utf8: &[u8]) -> Option<Self> {
        std::str::from_utf8(utf8).ok()?;
        let mut bytes = [0u8; 16];
        bytes.get_mut(..utf8.len())?.copy_from_slice(utf8);
        Some(Self { bytes, len: utf8.len() })
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}
