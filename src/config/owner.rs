//! The owner's sections of the configuration: the service menu's PIN (`[service]`), the booth's
//! mode and the prepaid event (`[booth] mode`, `[event]`). Kept beside `config.rs` so the money
//! path's settings stay short there.

use std::fmt;

use serde::Deserialize;

use super::Config;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Paid,
    Event,
}

/// The owner's service menu on the touch screen. Without a PIN it does not exist (404).
#[derive(Clone, Default, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Sheets the printer may output for the event; 0 = no cap.
    #[serde(default)]
    pub max_prints: u32,
    /// Printed on the layout instead of the booth's name, e.g. the couple's names.
    #[serde(default)]
    pub title: String,
    /// Printed on the layout instead of today's date, as written ("12.06.2026").
    #[serde(default)]
    pub date: String,
    /// How long the event's photos stay downloadable.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
}

impl Default for Event {
    fn default() -> Self {
        Event {
            max_prints: 0,
            title: String::new(),
            date: String::new(),
            keep_days: default_keep_days(),
        }
    }
}

fn default_keep_days() -> u32 {
    30
}

/// The longest event title or date the layout takes.
pub const EVENT_TEXT_MAX: usize = 80;
/// PIN length bounds: short enough to type, long enough not to guess in the lockout's pace.
pub const PIN_LEN: std::ops::RangeInclusive<usize> = 4..=12;

/// Checks an event's title or date: printable, one line, not too long.
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

impl Config {
    pub(super) fn validate_service(&self) -> Result<(), String> {
        let s = &self.service;
        if s.pin.is_some() && s.pin_sha256.is_some() {
            return Err("set service.pin or service.pin_sha256, not both".into());
        }
        if let Some(pin) = &s.pin {
            check_pin(pin).map_err(|e| format!("service.pin: {e}, in quotes (\"0123\")"))?;
        }
        if let Some(hash) = &s.pin_sha256 {
            if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err("service.pin_sha256 must be 64 hex digits, as `photoboothd service-pin` prints".into());
            }
        }
        let e = &self.event;
        check_event_text("event.title", &e.title)?;
        check_event_text("event.date", &e.date)?;
        if !(1..=3650).contains(&e.keep_days) {
            return Err("event.keep_days must be between 1 and 3650".into());
        }
        Ok(())
    }

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
