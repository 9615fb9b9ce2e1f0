//! Calendar dates without a date library: UTC milliseconds to a proleptic Gregorian date and
//! back (Howard Hinnant's `civil_from_days` / `days_from_civil`), and the one formatter every
//! printed or shown date goes through. Times are UTC unless the caller shifted them first
//! (`Config::local_time_ms`).

const DAY_S: i64 = 86_400;

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, or `None` if malformed.
pub fn days_from_date(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let year = parts.next()?.parse::<i64>().ok()?;
    let month = parts.next()?.parse::<u32>().ok()?;
    let day = parts.next()?.parse::<u32>().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Formats milliseconds with `%Y %m %d %H %M %S %%`. Unknown codes are copied as they are (a
/// template's format is checked when it is loaded, before a print gets this far).
pub fn format(ms: i64, format: &str) -> String {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(DAY_S));
    let of_day = secs.rem_euclid(DAY_S);
    let mut out = String::with_capacity(format.len() + 8);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{year:04}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('H') => out.push_str(&format!("{:02}", of_day / 3600)),
            Some('M') => out.push_str(&format!("{:02}", of_day % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", of_day % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC`, as the CLI and receipts show times.
pub fn format_utc(ms: i64) -> String {
    format(ms, "%Y-%m-%d %H:%M UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates() {
        for (text, days) in [
            ("1970-01-01", Some(0)),
            ("2000-02-29", Some(11_016)),
            ("2026-11-27", Some(20_784)),
            ("2026-13-01", None),
            ("yesterday", None),
        ] {
            assert_eq!(days_from_date(text), days, "{text}");
        }
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 59, 11_016, 20_784, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format(1_795_000_000_000, "%d.%m.%Y"), "18.11.2026");
        assert_eq!(format(1_795_000_000_000, "%Y-%m-%d %H:%M"), "2026-11-18 11:06");
        assert_eq!(format(951_782_400_000, "%d/%m/%Y 100%%"), "29/02/2000 100%");
        assert_eq!(format(-1, "%Y-%m-%d %H:%M"), "1969-12-31 23:59");
        assert_eq!(format(1_700_000_000_999, "%H:%M:%S %q"), "22:13:20 %q");
        assert_eq!(format(-1000, "%Y-%m-%d %H:%M:%S"), "1969-12-31 23:59:59");
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_795_000_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
