//! UTF-8, and the `ascii` byte mode: the default and fastest paths.
//!
//! Most traffic is ASCII, so both start with a bulk check (`is_ascii` reads a word at a time) and
//! uppercase ASCII runs in bulk. Other characters are looked up in [`CaseTable`], built once from
//! `char::to_uppercase`.

use std::sync::OnceLock;

/// Uppercases `input` as UTF-8 into `out`, passing invalid bytes through (counted in
/// `invalid`); returns the length of the unfinished character at the end, which is not written.
pub(super) fn push(input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
    if input.is_ascii() {
        push_ascii_upper(input, out);
        return 0;
    }
    // Valid text, the common case, is checked in one pass that is faster than splitting it.
    if let Ok(text) = std::str::from_utf8(input) {
        push_str_upper(text, out);
        return 0;
    }
    let mut chunks = input.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        push_str_upper(chunk.valid(), out);
        let bad = chunk.invalid();
        if chunks.peek().is_none() && is_unfinished_char(bad) {
            return bad.len();
        }
        *invalid += bad.len() as u64;
        out.extend_from_slice(bad);
    }
    0
}

/// Whether `bytes` is the start of a valid UTF-8 character that more bytes would complete.
fn is_unfinished_char(bytes: &[u8]) -> bool {
    !bytes.is_empty() && matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_none())
}

/// Appends the full Unicode uppercase of `text`, copying ASCII runs and runs of characters
/// without case (kana, hanzi, hangul) in bulk.
fn push_str_upper(text: &str, out: &mut Vec<u8>) {
    let table = CaseTable::get();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(rest) = bytes.get(at..).filter(|rest| !rest.is_empty()) {
        let ascii_len = rest.iter().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        push_ascii_upper(rest.get(..ascii_len).unwrap_or_default(), out);
        at += ascii_len;
        at = push_non_ascii_run(bytes, at, table, out);
    }
}

/// Appends the uppercase of the run of non-ASCII characters that starts at `start` in `text`
/// (valid UTF-8); returns where the run ends. Characters that stay as they are wait to be copied
/// with their neighbours.
fn push_non_ascii_run(text: &[u8], start: usize, table: &CaseTable, out: &mut Vec<u8>) -> usize {
    let mut copied = start;
    let mut at = start;
    loop {
        let (upper, len) = match *text.get(at..).unwrap_or_default() {
            [] => break,
            // A long ASCII run goes back to the bulk path; a short one (a space, a word between
            // two Greek ones) is cheaper to step through here.
            [byte, ..] if byte.is_ascii() => {
                if text.get(at..at + SHORT_ASCII_RUN).map_or(true, <[u8]>::is_ascii) {
                    break;
                }
                (if byte.is_ascii_lowercase() { ascii_upper(byte) } else { Upper::Same }, 1)
            }
            [lead @ 0xC0..=0xDF, second, ..] => {
                (table.upper((u32::from(lead & 0x1F) << 6) | u32::from(second & 0x3F)), 2)
            }
            [lead @ 0xE0..=0xEF, second, third, ..] => {
                let code = (u32::from(lead & 0x0F) << 12)
                    | (u32::from(second & 0x3F) << 6)
                    | u32::from(third & 0x3F);
                (table.upper(code), 3)
            }
            [lead @ 0xF0..=0xF7, second, third, fourth, ..] => {
                let code = (u32::from(lead & 0x07) << 18)
                    | (u32::from(second & 0x3F) << 12)
                    | (u32::from(third & 0x3F) << 6)
                    | u32::from(fourth & 0x3F);
                (table.upper(code), 4)
            }
            // Not in valid UTF-8, which `text` is; stepping on keeps the loop finite regardless.
            _ => (Upper::Same, 1),
        };
        let next = at + len;
        match upper {
            Upper::Same => {}
            Upper::Bytes { bytes, len } => {
                if at > copied {
                    out.extend_from_slice(text.get(copied..at).unwrap_or_default());
                }
                // All nine bytes, then back to `len`: a copy of fixed size is a few moves, where
                // one of `len` bytes would be a call to memcpy for every character.
                let end = out.len() + usize::from(len);
                out.extend_from_slice(&bytes);
                out.truncate(end);
                copied = next;
            }
            Upper::Ask => {
                out.extend_from_slice(text.get(copied..at).unwrap_or_default());
                let original = text.get(at..next).unwrap_or_default();
                match std::str::from_utf8(original).ok().and_then(|c| c.chars().next()) {
                    Some(c) => push_char_upper(c, out),
                    // Not reached for valid UTF-8; kept as it was rather than lost.
                    None => out.extend_from_slice(original),
                }
                copied = next;
            }
        }
        at = next;
    }
    out.extend_from_slice(text.get(copied..at).unwrap_or_default());
    at
}

/// ASCII runs shorter than this, between non-ASCII characters, are uppercased a byte at a time.
const SHORT_ASCII_RUN: usize = 16;

fn ascii_upper(byte: u8) -> Upper {
    let mut bytes = [0; 9];
    bytes[0] = byte.to_ascii_uppercase();
    Upper::Bytes { bytes, len: 1 }
}

fn push_char_upper(c: char, out: &mut Vec<u8>) {
    let mut utf8 = [0u8; 4];
    for upper in c.to_uppercase() {
        out.extend_from_slice(upper.encode_utf8(&mut utf8).as_bytes());
    }
}

/// What a character becomes, as [`CaseTable`] knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upper {
    /// It has no uppercase of its own.
    Same,
    /// Its uppercase in UTF-8 (up to three characters; 9 bytes at most, so far as Unicode goes).
    Bytes { bytes: [u8; 9], len: u8 },
    /// Not in the table (an uppercase longer than 9 bytes): ask `char::to_uppercase`.
    Ask,
}

/// The uppercase of every character that has one, in blocks of 64 code points: only the blocks
/// that hold a cased letter are stored (about 100 KiB, built once, on first use, in about a
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
            let mut entries = [Upper::Same; 64];
            for (offset, entry) in entries.iter_mut().enumerate() {
                let Some(c) = u32::try_from(block * 64 + offset).ok().and_then(char::from_u32) else {
                    continue;
                };
                *entry = Self::entry(c);
            }
            if entries.iter().any(|entry| *entry != Upper::Same) {
                table.blocks.push(entries);
                *slot = u16::try_from(table.blocks.len()).unwrap_or(0);
            }
        }
        table
    }

    fn entry(c: char) -> Upper {
        let mut upper = c.to_uppercase();
        if upper.len() == 1 && upper.next() == Some(c) {
            return Upper::Same;
        }
        let mut encoded = Vec::with_capacity(9);
        push_char_upper(c, &mut encoded);
        let mut bytes = [0; 9];
        match (bytes.get_mut(..encoded.len()), u8::try_from(encoded.len())) {
            (Some(slot), Ok(len)) => {
                slot.copy_from_slice(&encoded);
                Upper::Bytes { bytes, len }
            }
            _ => Upper::Ask,
        }
    }

    /// What the code point `code` becomes.
    fn upper(&self, code: u32) -> Upper {
        let block = self.index.get((code >> 6) as usize).copied().unwrap_or(0);
        match block.checked_sub(1) {
            None => Upper::Same,
            Some(block) => self
                .blocks
                .get(usize::from(block))
                .and_then(|entries| entries.get((code & 63) as usize))
                .copied()
                .unwrap_or(Upper::Ask),
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
            let got = match table.upper(u32::from(c)) {
                Upper::Same => c.to_string().into_bytes(),
                Upper::Bytes { bytes, len } => bytes.get(..usize::from(len)).unwrap_or_default().to_vec(),
                Upper::Ask => expected.clone(),
            };
            assert_eq!(got, expected, "{c:?}");
        }
        let bytes = table.blocks.len() * std::mem::size_of::<[Upper; 64]>() + table.index.len() * 2;
        assert!(bytes < 160 * 1024, "case table of {bytes} bytes");
    }
}
