//! The owner's sections of the configuration: the service menu's PIN (`[service]`), the booth's
//! mode and the prepaid event (`[booth] mode`, `[event]`): their types, their rules, and the PIN's
//! hash. Defaults live in `assets/photobooth.toml` like every other key's.

use std::fmt;

use serde::Deserialize;

use super::validate::Invalid;
use super::Config;

/// `[booth] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Paid,
    Event,
}

/// The owner's service menu on the touch screen. Without a PIN it does not exist (404).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Digits, kept as a string so a leading zero counts ("0123").
    pub pin: Option<String>,
    /// The SHA-256 of the PIN in hex, as `photoboothd service-pin` prints it.
    pub pin_sha256: Option<String>,
}

// Hand-written so that `{:?}` of a config never prints the PIN.
impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("pin_sha256", &self.pin_sha256.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A prepaid party (`[booth] mode = "event"`, or an event started from the service menu).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Sheets the printer may output for the event; 0 = no cap.
    pub max_prints: u32,
    /// Printed on the layout instead of the booth's name, e.g. the couple's names.
    pub title: String,
    /// Printed on the layout instead of today's date, as written ("12.06.2026").
    pub date: String,
    /// How long the event's photos stay downloadable.
    pub keep_days: u32,
}

/// The longest event title or date the layout takes.
pub const EVENT_TEXT_MAX: usize = 80;
/// PIN length bounds: short enough to type, long enough not to guess at the lockout's pace.
pub const PIN_LEN: std::ops::RangeInclusive<usize> = 4..=12;

/// Checks an event's title or date: one line, not too long.
pub fn check_event_text(key: &str, value: &str) -> Result<(), String> {
    if value.chars().count() > EVENT_TEXT_MAX || value.chars().any(char::is_control) {
        return Err(format!("{key} must be one line of at most {EVENT_TEXT_MAX} characters"));
    }
    Ok(())
}

/// Checks a PIN: digits only, 4 to 12 of them.
pub fn check_pin(pin: &str) -> Result<(), String> {
    if !PIN_LEN.contains(&pin.len()) || !pin.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("a PIN is {} to {} digits", PIN_LEN.start(), PIN_LEN.end()));
    }
    Ok(())
}

/// SHA-256 of a PIN, as `[service] pin_sha256` holds it (hex).
pub fn pin_sha256(pin: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(pin.as_bytes()).into()
}

fn invalid(key: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        key,
        message: message.into(),
    }
}

/// `[service]`: one PIN, in one of its two forms.
pub(super) fn service(c: &Config) -> Result<(), Invalid> {
    let s = &c.service;
    if s.pin.is_some() && s.pin_sha256.is_some() {
        return Err(invalid(
            "service.pin",
            "set service.pin or service.pin_sha256, not both",
        ));
    }
    if let Some(pin) = &s.pin {
        check_pin(pin).map_err(|e| invalid("service.pin", format!("service.pin: {e}, in quotes (\"0123\")")))?;
    }
    if let Some(hash) = &s.pin_sha256 {
        if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                "service.pin_sha256",
                "service.pin_sha256 must be 64 hex digits, as `photoboothd service-pin` prints",
            ));
        }
    }
    Ok(())
}

/// `[event]`: texts the layout can take, a sane gallery lifetime.
pub(super) fn event(c: &Config) -> Result<(), Invalid> {
    let e = &c.event;
    check_event_text("event.title", &e.title).map_err(|m| invalid("event.title", m))?;
    check_event_text("event.date", &e.date).map_err(|m| invalid("event.date", m))?;
    if !(1..=3650).contains(&e.keep_days) {
        return Err(invalid("event.keep_days", "event.keep_days must be between 1 and 3650"));
    }
    Ok(())
}

impl Config {
    /// The SHA-256 of the service PIN, or `None` when the service menu is off.
    pub fn service_pin_hash(&self) -> Option<[u8; 32]> {
        if let Some(pin) = &self.service.pin {
            return Some(pin_sha256(pin));
        }
        let hex = self.service.pin_sha256.as_deref()?;
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_keeps_its_leading_zero_and_matches_its_hash() {
        let c = Config::parse("[service]\npin = \"0123\"\n", "x.toml").unwrap();
        let hex: String = pin_sha256("0123").iter().map(|b| format!("{b:02x}")).collect();
        let h = Config::parse(&format!("[service]\npin_sha256 = \"{hex}\"\n"), "x.toml").unwrap();
        assert_eq!(c.service_pin_hash(), h.service_pin_hash());
        assert_ne!(c.service_pin_hash(), Some(pin_sha256("123")));
        assert_eq!(Config::built_in().unwrap().service_pin_hash(), None);
        assert!(!format!("{c:?}").contains("0123"));
    }

    #[test]
    fn bad_pins_and_event_texts_name_their_key() {
        for (text, key) in [
            ("[service]\npin = \"12a4\"\n", "service.pin"),
            ("[service]\npin = \"123\"\n", "service.pin"),
            ("[service]\npin_sha256 = \"abc\"\n", "service.pin_sha256"),
            ("[event]\ntitle = \"a\\nb\"\n", "event.title"),
            ("[event]\nkeep_days = 0\n", "event.keep_days"),
        ] {
            let err = Config::parse(text, "x.toml").unwrap_err();
            assert_eq!(err.key, Some(key), "{text}: {err}");
        }
        let c = Config::parse("[booth]\nmode = \"event\"\n[event]\nmax_prints = 3\n", "x.toml").unwrap();
        assert_eq!(
            (c.booth.mode, c.event.max_prints, c.event.keep_days),
            (Mode::Event, 3, 30)
        );
    }
}
