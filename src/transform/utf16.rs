//! UTF-16 (little- or big-endian code units, no byte order mark).
//!
//! `encoding_rs` decodes UTF-16 but, following the WHATWG standard, never encodes to it, so the
//! encoder is here. Every uppercase is writable in UTF-16, so only undecodable input (a lone
//! surrogate) passes through unchanged, as the two bytes it was.

/// Uppercases `input` as UTF-16 into `out`, passing lone surrogates through (counted in
/// `invalid`); returns how many bytes at the end form an unfinished character (an odd byte, or a
/// high surrogate waiting for its pair), which are not written.
pub(super) fn push(input: &[u8], big_endian: bool, out: &mut Vec<u8>, invalid: &mut u64) -> usize {
    let unit = |pair: &[u8]| -> u16 {
        let bytes = [pair.first().copied().unwrap_or(0), pair.get(1).copied().unwrap_or(0)];
        if big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        }
    };
    let mut at = 0;
    while let Some(first) = input.get(at..at + 2) {
        let high = unit(first);
        let (decoded, len) = match high {
            0xD800..=0xDBFF => match input.get(at + 2..at + 4) {
                None => return input.len() - at,
                Some(second) => match unit(second) {
                    low @ 0xDC00..=0xDFFF => {
                        let scalar = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                        (char::from_u32(scalar), 4)
                    }
                    _ => (None, 2),
                },
            },
            0xDC00..=0xDFFF => (None, 2),
            _ => (char::from_u32(u32::from(high)), 2),
        };
        let original = input.get(at..at + len).unwrap_or_default();
        match decoded {
            Some(c) => push_upper(c, original, big_endian, out),
            None => {
                *invalid += original.len() as u64;
                out.extend_from_slice(original);
            }
        }
        at += len;
    }
    input.len() - at
}

fn push_upper(c: char, original: &[u8], big_endian: bool, out: &mut Vec<u8>) {
    let mut upper = c.to_uppercase();
    if upper.len() == 1 && upper.clone().next() == Some(c) {
        out.extend_from_slice(original);
        return;
    }
    for upper in upper.by_ref() {
        let mut units = [0u16; 2];
        for unit in upper.encode_utf16(&mut units) {
            out.extend_from_slice(&if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() });
        }
    }
}

/// Encodes `text` as UTF-16, for clients that must send it.
pub fn encode(text: &str, big_endian: bool) -> Vec<u8> {
    text.encode_utf16()
        .flat_map(|unit| if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() })
        .collect()
}
