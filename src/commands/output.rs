//! How the read-only commands (`status`, `history`, `check`) show things: times, durations,
//! tables. Presentation only: no database, no decisions. Times are UTC.

use std::io::Write;

use chrono::{DateTime, Utc};

/// JavaScript's `toISOString()` form, which the old backend endpoint served: the JSON outputs'
/// one time format.
pub fn js_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time for a table: to the second, UTC said once in the column header.
pub fn short_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A compact span for a person: `42s`, `4m12s`, `42m`, `3h12m`, `2d04h`. Precision shrinks as
/// the span grows: nobody reads seconds in a lag of hours.
pub fn span(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (m, h, days) = (secs / 60, secs / 3600, secs / 86_400);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=599 => format!("{m}m{:02}s", secs % 60),
        600..=3599 => format!("{m}m"),
        3600..=86_399 => format!("{h}h{:02}m", m % 60),
        _ => format!("{days}d{:02}h", h % 24),
    }
}

/// A run's duration: tenths of a second under a minute, [`span`] above.
pub fn run_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        span(d)
    }
}

/// One line of at most `max` characters: line breaks become spaces, a cut ends with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Column alignment: text left, numbers right.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A plain-text table: a header row, then rows; columns two spaces apart, as wide as their
/// widest cell. The last column is not padded (it is often a long error message).
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let header: Vec<String> = self.columns.iter().map(|(h, _)| (*h).to_owned()).collect();
        let all: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let last = self.columns.len().saturating_sub(1);
        let mut out = String::new();
        for row in all {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                match self.columns[c].1 {
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                    Align::Left if c == last => line.push_str(cell),
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints to stdout. A closed pipe (`status | head`) is not worth a failure.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_compact_and_lose_precision_as_they_grow() {
        let s = chrono::Duration::seconds;
        assert_eq!(span(s(-5)), "0s");
        assert_eq!(span(s(42)), "42s");
        assert_eq!(span(s(252)), "4m12s");
        assert_eq!(span(s(42 * 60 + 7)), "42m");
        assert_eq!(span(s(3 * 3600 + 12 * 60 + 59)), "3h12m");
        assert_eq!(span(s(2 * 86_400 + 4 * 3600)), "2d04h");
        assert_eq!(run_duration(chrono::Duration::milliseconds(2_345)), "2.3s");
        assert_eq!(run_duration(s(252)), "4m12s");
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abcd", 4), "abcd");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("N", Align::Right),
            ("NOTE", Align::Left),
        ]);
        t.row(vec!["a".into(), "100".into(), "x".into()]);
        t.row(vec!["long-name".into(), "2".into(), "".into()]);
        assert_eq!(
            t.render(),
            "NAME         N  NOTE\na          100  x\nlong-name    2\n"
        );
    }
}
