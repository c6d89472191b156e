//! UTF-8, and the `ascii` byte mode: the default and fastest paths.
//!
//! Most traffic is ASCII, so both start with a bulk check (`is_ascii` reads a word at a time) and
//! uppercase ASCII runs in bulk; only other characters go through `char::to_uppercase`.

/// Uppercases `input` as UTF-8 into `out`, passing invalid bytes through (counted in
/// `invalid`); returns the length of the unfinished character at the end, which is not written.
pub(super) fn push(input: &[u8], out: &mut Vec<u8>, invalid: &mut u64) -> usize {
    if input.is_ascii() {
        push_ascii_upper(input, out);
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

/// Appends the full Unicode uppercase of `text`, copying ASCII runs in bulk.
pub(super) fn push_str_upper(text: &str, out: &mut Vec<u8>) {
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
pub(super) fn push_ascii_upper(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(input);
    if let Some(appended) = out.get_mut(start..) {
        appended.make_ascii_uppercase();
    }
}
