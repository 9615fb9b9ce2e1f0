//! CSV exports for spreadsheets: `orders --csv` and `stats --csv`. UTF-8 with a byte-order mark (so
//! spreadsheet programs do not guess a legacy code page), a header row, CRLF line ends (RFC 4180),
//! amounts both in sum with two decimals and in exact integer tiyin, times in the booth's local
//! time. `--csv-sep ';'` suits locales whose spreadsheets split on semicolons.

use std::io::{BufWriter, Write};

use crate::booth::OrderView;
use crate::config::Config;
use crate::layout::receipt::format_utc;
use crate::store::reports::Day;

const BOM: &str = "\u{feff}";

/// Checks a `--csv-sep` value: one character that cannot be confused with a field's content.
pub fn separator(text: &str) -> Result<char, String> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !matches!(c, '"' | '\r' | '\n') && !c.is_alphanumeric() && c != '.' => Ok(c),
        _ => Err(format!(
            "--csv-sep {text:?} must be one character such as ',' ';' or a tab, not a quote, letter, digit or dot"
        )),
    }
}

/// Tiyin as sum with two decimals: 4000050 → "40000.50".
pub fn sum_2dp(tiyin: i64) -> String {
    let sign = if tiyin < 0 { "-" } else { "" };
    let abs = tiyin.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// One CSV field, quoted only when it holds the separator, a quote or a line break.
fn field(value: &str, sep: char) -> String {
    if value.contains([sep, '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn write_rows(header: &[&str], rows: impl Iterator<Item = Vec<String>>, sep: char) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let line = |cells: Vec<String>| {
        let mut text = cells
            .iter()
            .map(|c| field(c, sep))
            .collect::<Vec<_>>()
            .join(&sep.to_string());
        text.push_str("\r\n");
        text
    };
    let fail = |e: std::io::Error| format!("cannot write the CSV: {e}");
    out.write_all(BOM.as_bytes()).map_err(fail)?;
    out.write_all(line(header.iter().map(|h| h.to_string()).collect()).as_bytes())
        .map_err(fail)?;
    for row in rows {
        out.write_all(line(row).as_bytes()).map_err(fail)?;
    }
    out.flush().map_err(fail)
}

/// Local time as `YYYY-MM-DD HH:MM`, which spreadsheets read as a date and time; empty for none.
fn local_time(config: &Config, ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms > 0 => format_utc(config.local_time_ms(ms))
            .trim_end_matches(" UTC")
            .to_string(),
        _ => String::new(),
    }
}

/// Every order given, oldest first.
pub fn orders(config: &Config, views: &[OrderView], sep: char) -> Result<(), String> {
    const HEADER: [&str; 10] = [
        "order_id",
        "created",
        "paid",
        "status",
        "kind",
        "copies",
        "amount_sum",
        "amount_tiyin",
        "session_id",
        "note",
    ];
    let rows = views.iter().rev().map(|v| {
        vec![
            v.order_id.to_string(),
            local_time(config, Some(v.created_at)),
            local_time(config, v.paid_at),
            v.status.as_str().to_string(),
            v.kind.as_str().to_string(),
            v.copies.to_string(),
            sum_2dp(v.amount_tiyin),
            v.amount_tiyin.to_string(),
            v.session_id.map(|s| s.to_string()).unwrap_or_default(),
            if v.paid_after_customer_left {
                "paid after the customer left".to_string()
            } else {
                String::new()
            },
        ]
    });
    write_rows(&HEADER, rows, sep)
}

/// One row per local day.
pub fn stats(days: &[Day], sep: char) -> Result<(), String> {
    const HEADER: [&str; 9] = [
        "day",
        "sessions",
        "paid_orders",
        "refunded_orders",
        "revenue_sum",
        "revenue_tiyin",
        "prints",
        "print_failures",
        "camera_failures",
    ];
    let rows = days.iter().map(|d| {
        vec![
            format_utc(d.day * 86_400_000)[..10].to_string(),
            d.sessions.to_string(),
            d.paid_orders.to_string(),
            d.refunded_orders.to_string(),
            sum_2dp(d.revenue_tiyin),
            d.revenue_tiyin.to_string(),
            d.prints.to_string(),
            d.print_failures.to_string(),
            d.camera_failures.to_string(),
        ]
    });
    write_rows(&HEADER, rows, sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_have_two_decimals_and_fields_are_quoted_only_when_needed() {
        assert_eq!(sum_2dp(4_000_000), "40000.00");
        assert_eq!(sum_2dp(4_000_050), "40000.50");
        assert_eq!(sum_2dp(-5), "-0.05");
        assert_eq!(field("plain", ','), "plain");
        assert_eq!(field("a;b", ';'), "\"a;b\"");
        assert_eq!(field("say \"hi\"", ','), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn separators_are_single_unambiguous_characters() {
        assert_eq!(separator(";"), Ok(';'));
        assert_eq!(separator("\t"), Ok('\t'));
        for bad in ["", ";;", "\"", "a", "7", "."] {
            assert!(separator(bad).is_err(), "{bad:?}");
        }
    }
}
