//! The WHATWG encodings other than UTF-8 and UTF-16, through `encoding_rs`: the windows-125x,
//! ISO-8859 and KOI8 single-byte families, and the multibyte Shift_JIS, EUC-KR, GBK and Big5.
//!
//! The lossless rule decides everything here: a character is replaced only when its uppercase can
//! be written in the same encoding, and otherwise keeps its *original bytes* (not a re-encoding,
//! since some characters have more than one). So the codec must know where each character starts
//! and ends, and it must be fast. Both come from tables built once per encoding, on first use, by
//! asking `encoding_rs` about every byte and every two-byte sequence:
//! - what each byte becomes when it is a whole character, or that it starts a longer one, or that
//!   it starts none;
//! - for multibyte encodings, what each two-byte sequence becomes.
//!
//! Anything the tables do not settle (the four-byte forms of GB18030, sequences that do not
//! decode) is found by feeding a decoder one more byte at a time until it yields a character.

use std::sync::{Mutex, OnceLock, PoisonError};

use encoding_rs::{DecoderResult, EncoderResult, Encoding};

use super::utf8::push_ascii_upper;

/// One legacy encoding, ready to uppercase.
#[derive(Debug, Clone)]
pub struct Legacy {
    /// One reference, not two: a TCP connection holds a `Legacy` for as long as it is open.
    tables: &'static Tables,
}

/// What a character (one byte, or a two-byte sequence) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mapping {
    /// It stays as it is (no uppercase, or one this encoding cannot write).
    Same,
    /// Its uppercase, encoded: up to three characters of up to two bytes.
    Upper { bytes: [u8; 6], len: u8 },
    /// A byte that starts a longer character.
    Lead,
    /// Not settled by the table: decode it the slow way.
    Other,
}

/// Everything precomputed about one encoding.
#[derive(Debug)]
struct Tables {
    /// The encoding they describe.
    encoding: &'static Encoding,
    /// Each byte as a whole character, or a lead byte, or `Other` (does not decode).
    single: [Mapping; 256],
    /// Single-byte encodings: each byte's output when it is one byte (the common case).
    simple: [u8; 256],
    /// Single-byte encodings: bytes the `simple` map does not cover (expanding or undecodable).
    special: [bool; 256],
    /// Multibyte encodings: each sequence of a lead byte (0x80 and up) and any second byte.
    double: Option<Box<[Mapping]>>,
}

impl Legacy {
    /// The codec for `encoding` (its tables are built on first use, then shared).
    pub fn new(encoding: &'static Encoding) -> Self {
        Self { tables: tables(encoding) }
    }

    /// The encoding it reads.
    pub fn encoding(&self) -> &'static Encoding {
        self.tables.encoding
    }

    /// Uppercases `input` into `out`, passing undecodable bytes through (counted in `invalid`);
    /// returns how many bytes at the end form an unfinished character, which are not written.
    pub(super) fn push(&self, input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
        if input.is_ascii() {
            push_ascii_upper(input, out);
            return 0;
        }
        match &self.tables.double {
            None => {
                self.push_single_byte(input, out, invalid);
                0
            }
            Some(double) => self.push_multibyte(double, input, out, invalid),
        }
    }

    fn push_single_byte(&self, input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) {
        let Tables { single, simple, special, .. } = self.tables;
        let mut rest = input;
        while !rest.is_empty() {
            let plain = rest.iter().position(|&b| lookup(special, b)).unwrap_or(rest.len());
            let (run, tail) = rest.split_at(plain);
            out.extend(run.iter().map(|&b| lookup(simple, b)));
            let Some((&byte, after)) = tail.split_first() else { break };
            emit(lookup(single, byte), &[byte], out, invalid);
            rest = after;
        }
    }

    fn push_multibyte(
        &self,
        double: &[Mapping],
        input: &[u8],
        out: &mut Vec<u8>,
        invalid: &mut u64,
    ) -> usize {
        let mut rest = input;
        loop {
            let ascii = rest.iter().position(|b| !b.is_ascii()).unwrap_or(rest.len());
            let (run, tail) = rest.split_at(ascii);
            push_ascii_upper(run, out);
            rest = tail;
            let Some(&lead) = rest.first() else { return 0 };
            let mapping = match lookup(&self.tables.single, lead) {
                Mapping::Lead => match rest.get(1) {
                    Some(&second) => double.get(pair_index(lead, second)).copied().unwrap_or(Mapping::Other),
                    None => Mapping::Other,
                },
                whole => whole,
            };
            let len = match mapping {
                Mapping::Same | Mapping::Upper { .. }
                    if lookup(&self.tables.single, lead) == Mapping::Lead =>
                {
                    2
                }
                Mapping::Same | Mapping::Upper { .. } => 1,
                _ => 0,
            };
            if len > 0 {
                let (original, after) = rest.split_at(len.min(rest.len()));
                emit(mapping, original, out, invalid);
                rest = after;
                continue;
            }
            match probe(self.tables.encoding, rest) {
                Probe::Char { len, text } => {
                    let (original, after) = rest.split_at(len.min(rest.len()));
                    push_upper(self.tables.encoding, text.as_str(), original, out);
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

/// Writes what `mapping` says `original` becomes (`Other`: it does not decode, so it passes).
fn emit(mapping: Mapping, original: &[u8], out: &mut Vec<u8>, invalid: &mut u64) {
    match mapping {
        Mapping::Upper { bytes, len } => {
            out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(original))
        }
        Mapping::Same | Mapping::Lead => out.extend_from_slice(original),
        Mapping::Other => {
            *invalid += original.len() as u64;
            out.extend_from_slice(original);
        }
    }
}

/// A table entry for a byte. A `[_; 256]` indexed by a `u8` cannot be out of bounds.
#[allow(clippy::indexing_slicing)]
fn lookup<T: Copy>(table: &[T; 256], byte: u8) -> T {
    table[usize::from(byte)]
}

fn pair_index(lead: u8, second: u8) -> usize {
    usize::from(lead.wrapping_sub(0x80)) * 256 + usize::from(second)
}

/// The tables of `encoding`, built once and kept for the life of the process (a few KiB for a
/// single-byte encoding, 256 KiB for a multibyte one; only encodings actually used are built).
fn tables(encoding: &'static Encoding) -> &'static Tables {
    static BUILT: OnceLock<Mutex<Vec<(&'static Encoding, &'static Tables)>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, tables)) = built.iter().find(|(known, _)| *known == encoding) {
        return tables;
    }
    let single: [Mapping; 256] =
        std::array::from_fn(|byte| mapping_of(encoding, &[u8::try_from(byte).unwrap_or_default()]));
    let tables: &'static Tables = Box::leak(Box::new(if encoding.is_single_byte() {
        let simple = std::array::from_fn(|byte| match single.get(byte) {
            Some(Mapping::Upper { bytes: [upper, ..], len: 1 }) => *upper,
            _ => u8::try_from(byte).unwrap_or_default(),
        });
        let special = std::array::from_fn(|byte| {
            !matches!(single.get(byte), Some(Mapping::Same | Mapping::Upper { len: 1, .. }))
        });
        Tables { encoding, single, simple, special, double: None }
    } else {
        let double = (0..128 * 256)
            .map(|index: usize| {
                let lead = u8::try_from(0x80 + index / 256).unwrap_or_default();
                let second = u8::try_from(index % 256).unwrap_or_default();
                match single.get(usize::from(lead)) {
                    Some(Mapping::Lead) => match mapping_of(encoding, &[lead, second]) {
                        Mapping::Lead => Mapping::Other,
                        settled => settled,
                    },
                    _ => Mapping::Other,
                }
            })
            .collect();
        Tables { encoding, single, simple: [0; 256], special: [true; 256], double: Some(double) }
    }));
    built.push((encoding, tables));
    tables
}

/// What `bytes` become if they are exactly one character (`Lead` if they only start one).
fn mapping_of(encoding: &'static Encoding, bytes: &[u8]) -> Mapping {
    match probe(encoding, bytes) {
        Probe::Char { len, text } if len == bytes.len() => {
            let mut upper = Vec::with_capacity(6);
            push_upper(encoding, text.as_str(), bytes, &mut upper);
            if upper == bytes {
                return Mapping::Same;
            }
            let mut encoded = [0u8; 6];
            match encoded.get_mut(..upper.len()) {
                Some(slot) => {
                    slot.copy_from_slice(&upper);
                    Mapping::Upper { bytes: encoded, len: u8::try_from(upper.len()).unwrap_or(0) }
                }
                None => Mapping::Other,
            }
        }
        Probe::Unfinished => Mapping::Lead,
        _ => Mapping::Other,
    }
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
