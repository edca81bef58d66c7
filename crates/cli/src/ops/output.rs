//! Printing the operator commands' results: a table for people or one JSON document for
//! scripts, chosen by `--format`.

use std::fmt::Write as _;
use std::time::Duration;

use comfy_table::{presets, CellAlignment, Table};
use serde_json::Value;

use crate::Format;

/// Prints a result: `json` as one document in JSON mode, else what `table` renders.
pub(super) fn emit(format: Format, json: &Value, table: impl FnOnce() -> String) {
    match format {
        Format::Json => println!("{json}"),
        Format::Table => println!("{}", table()),
    }
}

/// A two-column `field | value` table.
pub(super) fn fields<K, V>(rows: impl IntoIterator<Item = (K, V)>) -> Table
where
    K: Into<String>,
    V: Into<String>,
{
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        table.add_row([k.into(), v.into()]);
    }
    table
}

/// A table with a header row; `right` lists the columns aligned right (numbers).
pub(super) fn grid(header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    for &i in right {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// A duration for people: `850ms`, `42s`, `4m 59s`, `2h 5m`, `3d 4h`.
pub(super) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (days, hours, mins, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    let parts = [(days, "d"), (hours, "h"), (mins, "m"), (s, "s")];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    for (n, unit) in parts.iter().skip(first).take(2) {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{n}{unit}");
    }
    out
}

/// A latency for people: `0.42 ms`, `12.3 ms`, `1.20 s`.
pub(super) fn latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[allow(clippy::cast_precision_loss)] // for display
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An optional figure, `-` when unknown.
pub(super) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Milliseconds as a JSON number (saturating).
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        let cases = [
            (Duration::from_millis(850), "850ms"),
            (Duration::from_secs(42), "42s"),
            (Duration::from_secs(299), "4m 59s"),
            (Duration::from_secs(2 * 3600 + 5 * 60 + 9), "2h 5m"),
            (Duration::from_secs(3 * 86_400 + 4 * 3600), "3d 4h"),
            (Duration::from_secs(3600), "1h 0m"),
        ];
        for (d, text) in cases {
            assert_eq!(duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 200 * 1024), "3.2 MiB");
    }
}
