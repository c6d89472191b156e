//! Markdown pieces the report is built from: tables, numbered notes, numbers as people read them.
//!
//! Formatting only: nothing here knows what a figure means. Figures are written as upcase writes
//! them everywhere ([`upcase::format`]).

use upcase::format::decimal;

pub use upcase::format::thousands;

/// A figure with `digits` decimals and thousands separated; "—" when there is none.
pub fn number(value: Option<f64>, digits: usize) -> String {
    value.filter(|v| v.is_finite()).map_or_else(|| "—".to_owned(), |value| decimal(value, digits))
}

/// A figure with about three significant digits; "—" when there is none.
pub fn significant(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => number(Some(v), 0),
        Some(v) if v >= 10.0 => number(Some(v), 1),
        Some(v) => number(Some(v), 2),
        None => "—".to_owned(),
    }
}

/// `a ÷ b`, when both are there and `b` is not zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// Numbered notes under a table; the same text gets the same number.
#[derive(Debug, Default)]
pub struct Notes {
    texts: Vec<String>,
}

impl Notes {
    /// The mark of `text` (`[2]`), numbering it if it is new.
    pub fn mark(&mut self, text: &str) -> String {
        let index = match self.texts.iter().position(|t| t == text) {
            Some(index) => index,
            None => {
                self.texts.push(text.to_owned());
                self.texts.len() - 1
            }
        };
        format!("[{}]", index + 1)
    }

    /// The notes, one a line (two spaces at the end: a Markdown line break).
    pub fn render(&self) -> String {
        if self.texts.is_empty() {
            return String::new();
        }
        let lines: Vec<String> =
            self.texts.iter().enumerate().map(|(i, text)| format!("[{}] {text}", i + 1)).collect();
        format!("\n{}\n", lines.join("  \n"))
    }
}

/// A Markdown table; with `numbers`, every column after the first is right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>], numbers: bool) -> String {
    let align: Vec<&str> =
        (0..header.len()).map(|i| if i == 0 || !numbers { " --- " } else { " ---: " }).collect();
    let mut lines = vec![format!("| {} |", header.join(" | ")), format!("|{}|", align.join("|"))];
    lines.extend(rows.iter().map(|row| format!("| {} |", row.join(" | "))));
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(number(Some(1234.5), 1), "1,234.5");
        assert_eq!(number(Some(999.96), 1), "1,000.0");
        assert_eq!(number(Some(-0.001), 2), "0.00");
        assert_eq!(number(None, 2), "—");
        assert_eq!(significant(Some(4.256)), "4.26");
        assert_eq!(significant(Some(42.56)), "42.6");
        assert_eq!(significant(Some(42_556.8)), "42,557");
    }

    #[test]
    fn notes_number_each_text_once() {
        let mut notes = Notes::default();
        assert_eq!(notes.mark("a"), "[1]");
        assert_eq!(notes.mark("b"), "[2]");
        assert_eq!(notes.mark("a"), "[1]");
        assert_eq!(notes.render(), "\n[1] a  \n[2] b\n");
    }

    #[test]
    fn tables_align_numbers_right() {
        let rows = vec![vec!["x".to_owned(), "1".to_owned()]];
        assert_eq!(table(&["name", "n"], &rows, true), "| name | n |\n| --- | ---: |\n| x | 1 |\n");
    }
}
