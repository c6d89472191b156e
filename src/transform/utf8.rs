//! UTF-8, and the `ascii` byte mode: the default and fastest paths.
//!
//! Most traffic is ASCII, so both start with a bulk check (`is_ascii` reads a word at a time) and
//! uppercase ASCII in bulk. Other text is decoded, checked and uppercased in one pass
//! (`push_valid_upper`): a separate validation pass first (`str::from_utf8`) took a third of the
//! time on mixed text. Characters are looked up in `CaseTable`, built once from
//! `char::to_uppercase`, so the rules stay std's.

use std::sync::OnceLock;

/// Uppercases `input` as UTF-8 into `out`, passing invalid bytes through (counted in
/// `invalid`); returns the length of the unfinished character at the end, which is not written.
pub(super) fn push(input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
    if input.is_ascii() {
        push_ascii_upper(input, out);
        return 0;
    }
    let mut at = 0;
    while let Some(rest) = input.get(at..).filter(|rest| !rest.is_empty()) {
        let done = push_valid_upper(rest, out);
        if done > 0 {
            at += done;
            continue;
        }
        // `rest` starts with bytes that are not a character: std's rules say how many.
        let Some(chunk) = rest.utf8_chunks().next() else { break };
        let valid = chunk.valid();
        if !valid.is_empty() {
            // Only if this decoder and std disagreed; std's reading wins, slowly.
            debug_assert!(false, "decoder rejected valid UTF-8 {:?}", valid.get(..4));
            valid.chars().for_each(|c| push_char_upper(c, out));
            at += valid.len();
            continue;
        }
        let bad = chunk.invalid();
        if at + bad.len() == input.len() && is_unfinished_char(bad) {
            return bad.len();
        }
        *invalid += bad.len() as u64;
        out.extend_from_slice(bad);
        at += bad.len();
    }
    0
}

/// Whether `bytes` is the start of a valid UTF-8 character that more bytes would complete.
fn is_unfinished_char(bytes: &[u8]) -> bool {
    !bytes.is_empty() && matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_none())
}

/// Appends the full Unicode uppercase of the longest prefix of `bytes` that is valid UTF-8 made
/// of whole characters; returns that prefix's length.
///
/// Characters that stay as they are (kana, hanzi, hangul, digits, spaces) are not written one by
/// one: they wait in `bytes[copied..at]` and are copied with their neighbours in one go.
fn push_valid_upper(bytes: &[u8], out: &mut Vec<u8>) -> usize {
    let table = CaseTable::get();
    // Uppercase text is rarely longer; when it is, the Vec grows as usual.
    out.reserve(bytes.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(&lead) = bytes.get(at) {
        if lead.is_ascii() {
            let run = ascii_prefix(bytes.get(at..).unwrap_or_default());
            flush(bytes, copied, at, out);
            if run.len() < SHORT_ASCII_RUN {
                // A space or a short word between other letters: a call to memcpy and a
                // separate pass would cost more than the bytes.
                out.extend(run.iter().map(u8::to_ascii_uppercase));
            } else {
                push_ascii_upper(run, out);
            }
            at += run.len();
            copied = at;
            continue;
        }
        let Some((code, len)) = decode(bytes, at) else { break };
        let upper = table.upper(code);
        if upper != SAME {
            flush(bytes, copied, at, out);
            let upper_len = usize::from(upper.to_le_bytes()[7]);
            if upper_len <= 7 {
                // All eight bytes, then back to the length: a copy of fixed size is one move,
                // where one of `upper_len` bytes would be a call to memcpy per character.
                let end = out.len() + upper_len;
                out.extend_from_slice(&upper.to_le_bytes());
                out.truncate(end);
            } else if let Some(c) = char::from_u32(code) {
                push_char_upper(c, out);
            }
            copied = at + len;
        }
        at += len;
    }
    flush(bytes, copied, at, out);
    at
}

/// Writes the unchanged characters `bytes[copied..at]`, if any: most often there are none, and
/// an empty copy would still be a call.
fn flush(bytes: &[u8], copied: usize, at: usize, out: &mut Vec<u8>) {
    if at > copied {
        out.extend_from_slice(bytes.get(copied..at).unwrap_or_default());
    }
}

/// ASCII runs shorter than this, between other characters, are uppercased a byte at a time.
const SHORT_ASCII_RUN: usize = 16;

/// The ASCII bytes at the start of `bytes`, found eight at a time.
fn ascii_prefix(bytes: &[u8]) -> &[u8] {
    let mut len = 0;
    for word in bytes.chunks_exact(8) {
        let high_bits = u64::from_le_bytes(word.try_into().unwrap_or([0x80; 8])) & 0x8080_8080_8080_8080;
        if high_bits != 0 {
            let run = len + high_bits.trailing_zeros() as usize / 8;
            return bytes.get(..run).unwrap_or_default();
        }
        len += 8;
    }
    let tail = bytes.get(len..).unwrap_or_default();
    let run = len + tail.iter().position(|b| !b.is_ascii()).unwrap_or(tail.len());
    bytes.get(..run).unwrap_or_default()
}

/// The code point and length of the character that starts at `bytes[at]` (not ASCII); `None`
/// when no valid, complete UTF-8 character starts there (Unicode's table 3-7: no overlong forms,
/// no surrogates, nothing above U+10FFFF).
fn decode(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let byte = |i: usize| bytes.get(at + i).copied();
    let continuation = |i: usize| byte(i).filter(|b| b & 0xC0 == 0x80).map(|b| u32::from(b & 0x3F));
    let lead = byte(0)?;
    match lead {
        0xC2..=0xDF => Some(((u32::from(lead & 0x1F) << 6) | continuation(1)?, 2)),
        0xE0..=0xEF => {
            let second = byte(1)?;
            let allowed = match lead {
                0xE0 => 0xA0..=0xBF,
                0xED => 0x80..=0x9F,
                _ => 0x80..=0xBF,
            };
            if !allowed.contains(&second) {
                return None;
            }
            let code = (u32::from(lead & 0x0F) << 12) | (u32::from(second & 0x3F) << 6) | continuation(2)?;
            Some((code, 3))
        }
        0xF0..=0xF4 => {
            let second = byte(1)?;
            let allowed = match lead {
                0xF0 => 0x90..=0xBF,
                0xF4 => 0x80..=0x8F,
                _ => 0x80..=0xBF,
            };
            if !allowed.contains(&second) {
                return None;
            }
            let code = (u32::from(lead & 0x07) << 18)
                | (u32::from(second & 0x3F) << 12)
                | (continuation(2)? << 6)
                | continuation(3)?;
            Some((code, 4))
        }
        _ => None,
    }
}

fn push_char_upper(c: char, out: &mut Vec<u8>) {
    let mut utf8 = [0u8; 4];
    for upper in c.to_uppercase() {
        out.extend_from_slice(upper.encode_utf8(&mut utf8).as_bytes());
    }
}

/// A `CaseTable` entry: what a character becomes, packed in a `u64` so that one load fetches
/// it. Bytes 0–6 hold its uppercase in UTF-8 (one to three characters), byte 7 their length.
type Upper = u64;

/// The entry of a character that has no uppercase of its own.
const SAME: Upper = 0;

/// The entry of a character whose uppercase is longer than seven bytes (none is, as of Unicode
/// 16; kept so that a future table cannot cut one): ask `char::to_uppercase`.
const ASK: Upper = 0xFF << 56;

/// The uppercase of every character that has one, in blocks of 64 code points: only the blocks
/// that hold a cased letter are stored (about 70 KiB, built once, on first use, in about a
/// millisecond).
#[derive(Debug)]
struct CaseTable {
    /// For each block of 64 code points, its place in `blocks` plus one; 0 for a block in which
    /// nothing changes.
    index: Vec<u16>,
    blocks: Vec<[Upper; 64]>,
}

impl CaseTable {
    fn get() -> &'static Self {
        static TABLE: OnceLock<CaseTable> = OnceLock::new();
        TABLE.get_or_init(Self::build)
    }

    fn build() -> Self {
        let mut table = Self { index: vec![0; (u32::from(char::MAX) as usize + 1) / 64], blocks: Vec::new() };
        for (block, slot) in table.index.iter_mut().enumerate() {
            let mut entries = [SAME; 64];
            for (offset, entry) in entries.iter_mut().enumerate() {
                let Some(c) = u32::try_from(block * 64 + offset).ok().and_then(char::from_u32) else {
                    continue;
                };
                *entry = Self::entry(c);
            }
            if entries.iter().any(|entry| *entry != SAME) {
                table.blocks.push(entries);
                *slot = u16::try_from(table.blocks.len()).unwrap_or(0);
            }
        }
        table
    }

    fn entry(c: char) -> Upper {
        let mut upper = c.to_uppercase();
        if upper.len() == 1 && upper.next() == Some(c) {
            return SAME;
        }
        let mut encoded = Vec::with_capacity(8);
        push_char_upper(c, &mut encoded);
        let Ok(len @ 1..=7) = u8::try_from(encoded.len()) else { return ASK };
        encoded.resize(7, 0);
        encoded.push(len);
        encoded.try_into().map_or(ASK, u64::from_le_bytes)
    }

    /// What the code point `code` becomes.
    fn upper(&self, code: u32) -> Upper {
        let block = self.index.get((code >> 6) as usize).copied().unwrap_or(0);
        match block.checked_sub(1) {
            None => SAME,
            Some(block) => self
                .blocks
                .get(usize::from(block))
                .and_then(|entries| entries.get((code & 63) as usize))
                .copied()
                .unwrap_or(ASK),
        }
    }
}

/// Appends `input` with `a`–`z` raised and every other byte untouched.
pub(super) fn push_ascii_upper(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(input);
    if let Some(appended) = out.get_mut(start..) {
        appended.make_ascii_uppercase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table holds what `char::to_uppercase` says for every code point it covers, and stays
    /// small.
    #[test]
    fn the_case_table_agrees_with_std_and_stays_small() {
        let table = CaseTable::get();
        for c in (0x80..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let mut expected = Vec::new();
            push_char_upper(c, &mut expected);
            let upper = table.upper(u32::from(c));
            let got = match upper {
                SAME => c.to_string().into_bytes(),
                ASK => expected.clone(),
                packed => {
                    let bytes = packed.to_le_bytes();
                    bytes.get(..usize::from(bytes[7])).unwrap_or_default().to_vec()
                }
            };
            assert_eq!(got, expected, "{c:?}");
        }
        let bytes = table.blocks.len() * std::mem::size_of::<[Upper; 64]>() + table.index.len() * 2;
        assert!(bytes < 112 * 1024, "case table of {bytes} bytes");
    }

    /// The decoder accepts exactly what std accepts: every 2-byte sequence that starts with a
    /// non-ASCII byte, and 3- and 4-byte ones around every boundary of the valid ranges.
    #[test]
    fn the_decoder_agrees_with_std() {
        let edges = [
            0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0,
            0xF4, 0xF5, 0xFF,
        ];
        let check = |bytes: &[u8]| {
            let valid = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default()).unwrap_or(""),
            };
            let expected = valid.chars().next().map(|c| (u32::from(c), c.len_utf8()));
            assert_eq!(decode(bytes, 0), expected, "{bytes:02X?}");
        };
        for lead in 0x80..=0xFF_u8 {
            for second in 0..=0xFF_u8 {
                check(&[lead, second]);
                for third in edges {
                    check(&[lead, second, third]);
                    if lead >= 0xF0 {
                        for fourth in edges {
                            check(&[lead, second, third, fourth]);
                        }
                    }
                }
            }
        }
    }
}
