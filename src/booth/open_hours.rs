//! `[booth] open_hours`: when the booth expects customers, in the booth's local time. Nothing is
//! refused outside them; they only tell alerts (`photoboothd_open`) when a quiet booth is news.

use std::fmt;

use serde::{Deserialize, Deserializer};

const DAY_MINUTES: u32 = 24 * 60;

/// A daily window `"HH:MM-HH:MM"` (`"18:00-02:00"` runs past midnight); empty means always open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenHours {
    /// (from, to) in minutes after local midnight; `None`: always open.
    window: Option<(u32, u32)>,
}

impl OpenHours {
    pub fn parse(text: &str) -> Result<OpenHours, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(OpenHours::default());
        }
        let bad = || format!("{text:?} is not a daily window like \"10:00-22:00\"");
        let (from, to) = text.split_once('-').ok_or_else(bad)?;
        let (from, to) = (minutes(from).ok_or_else(bad)?, minutes(to).ok_or_else(bad)?);
        if from == to % DAY_MINUTES {
            return Err(format!(
                "{text:?} opens and closes at the same time; leave open_hours empty for always open"
            ));
        }
        Ok(OpenHours {
            window: Some((from, to)),
        })
    }

    /// Whether the booth is open at `local_ms` (UTC ms shifted into the booth's local time).
    pub fn is_open(&self, local_ms: i64) -> bool {
        let Some((from, to)) = self.window else {
            return true;
        };
        let now = (local_ms.rem_euclid(86_400_000) / 60_000) as u32;
        if from < to {
            (from..to).contains(&now)
        } else {
            now >= from || now < to
        }
    }
}

/// `HH:MM` to minutes after midnight; `24:00` is the end of the day.
fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl fmt::Display for OpenHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window {
            None => f.write_str("always"),
            Some((from, to)) => write!(f, "{:02}:{:02}-{:02}:{:02}", from / 60, from % 60, to / 60, to % 60),
        }
    }
}

impl<'de> Deserialize<'de> for OpenHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        OpenHours::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, m: i64) -> i64 {
        // Some day well after the epoch, to show only the time of day matters.
        20_000 * 86_400_000 + (h * 60 + m) * 60_000
    }

    #[test]
    fn a_day_window_is_open_from_its_start_until_its_end() {
        let hours = OpenHours::parse("10:00-22:00").unwrap();
        assert!(!hours.is_open(at(9, 59)));
        assert!(hours.is_open(at(10, 0)));
        assert!(hours.is_open(at(21, 59)));
        assert!(!hours.is_open(at(22, 0)));
        assert_eq!(hours.to_string(), "10:00-22:00");
    }

    #[test]
    fn a_window_may_run_past_midnight_and_empty_is_always() {
        let hours = OpenHours::parse("18:00-02:00").unwrap();
        assert!(hours.is_open(at(23, 0)) && hours.is_open(at(1, 59)));
        assert!(!hours.is_open(at(2, 0)) && !hours.is_open(at(12, 0)));
        assert!(OpenHours::parse("").unwrap().is_open(at(3, 0)));
        assert!(OpenHours::parse("08:00-24:00").unwrap().is_open(at(23, 59)));
    }

    #[test]
    fn malformed_windows_are_refused_with_the_text() {
        for bad in [
            "10-22",
            "10:00",
            "25:00-26:00",
            "10:60-11:00",
            "10:00-10:00",
            "0:00-24:00",
            "ten-twelve",
        ] {
            let e = OpenHours::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
