//! How figures and bytes are written for people, the same way in every report upcase prints:
//! `30,000` requests, `12.5%` lost, `"straße"…` as an excerpt of a reply.
//!
//! Pure formatting: nothing here measures, judges or does I/O.

/// `1234567` as `1,234,567`.
pub fn thousands(n: impl TryInto<u64>) -> String {
    let digits = n.try_into().map_or_else(|_| u64::MAX.to_string(), |n: u64| n.to_string());
    group_digits(&digits)
}

/// `1234.5` with `digits` decimals and thousands separated: `1,234.50`.
pub fn decimal(value: f64, digits: usize) -> String {
    let text = format!("{:.*}", digits, value.abs());
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    match fraction {
        Some(fraction) => format!("{sign}{}.{fraction}", group_digits(whole)),
        None => format!("{sign}{}", group_digits(whole)),
    }
}

/// Inserts a comma every three digits into a string of digits.
fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A share as a percentage with one decimal: `12.5%` (`0.0%` of nothing).
pub fn percent(part: usize, whole: usize) -> String {
    let share = if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    format!("{share:.1}%")
}

/// The first few bytes of `bytes`, quoted and escaped, to show in a message.
pub fn excerpt(bytes: &[u8]) -> String {
    const SHOWN: usize = 24;
    let shown = String::from_utf8_lossy(bytes.get(..SHOWN).unwrap_or(bytes));
    let more = if bytes.len() > SHOWN { "…" } else { "" };
    format!("{shown:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(7usize), "7");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1024usize), "1,024");
        assert_eq!(thousands(30_000u32), "30,000");
        assert_eq!(thousands(1_234_567u64), "1,234,567");
    }

    #[test]
    fn decimals_are_grouped_too() {
        assert_eq!(decimal(1234.5, 2), "1,234.50");
        assert_eq!(decimal(-1234567.0, 0), "-1,234,567");
        assert_eq!(decimal(-0.001, 1), "0.0");
    }

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(percent(50, 200), "25.0%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "0.0%");
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt(b"abc"), "\"abc\"");
        assert_eq!(excerpt(&[b'a'; 30]), format!("\"{}\"…", "a".repeat(24)));
        assert_eq!(excerpt(b"a\0b"), "\"a\\0b\"");
    }
}
