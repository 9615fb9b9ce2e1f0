//! The typed sections of the configuration file, one struct per `[section]`.
//!
//! No field has a default here: every key is given a value by `assets/photobooth.toml`, which is
//! merged under the user's file before these are deserialised (see `config/mod.rs`). Only keys that
//! are genuinely optional (`Option<_>`: absent means "not set") may be left out of that file.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A key whose value is one of a closed set of lower-case names (`backend = "file"`).
macro_rules! choice {
    ($name:ident { $($variant:ident),+ }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($variant),+
        }
    };
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Booth {
    pub name: String,
    /// Whole sum; converted to tiyin with integer math only.
    pub price_per_copy: i64,
    pub max_copies: u32,
    pub order_ttl_s: u32,
    pub data_dir: Option<PathBuf>,
    /// The kiosk's language until a customer switches it: uz, ru or en.
    pub language: Language,
    /// Offset of the booth's local time from UTC in minutes, for dates printed on photos
    /// (Uzbekistan: +300, no daylight saving). Stored times stay UTC.
    pub utc_offset_minutes: i32,
    /// `paid` (customers pay with Payme) or `event` (a prepaid party: guests print for free, up
    /// to `[event] max_prints`).
    pub mode: super::Mode,
    /// Take no orders while the system clock is not synchronised. Not set: on when systemd runs
    /// the daemon, off otherwise (see `Config::requires_synced_clock`).
    pub require_synced_clock: Option<bool>,
    /// The file systemd-timesyncd creates once the clock is synchronised.
    pub clock_synced_file: PathBuf,
    /// When customers are expected (local time), for `photoboothd_open` and its alerts.
    pub open_hours: crate::booth::open_hours::OpenHours,
}

choice!(Language { Uz, Ru, En });

impl Language {
    /// The code the kiosk, the database and Payme's checkout (`l=`) use.
    pub fn code(self) -> &'static str {
        match self {
            Language::Uz => "uz",
            Language::Ru => "ru",
            Language::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        match code {
            "uz" => Some(Language::Uz),
            "ru" => Some(Language::Ru),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

/// The kiosk flow's knobs: how many retakes, and how long each waiting screen waits for a
/// customer before it gives up and returns to the attract screen.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub max_retakes: u32,
    pub review_timeout_s: u32,
    pub copies_timeout_s: u32,
    pub done_timeout_s: u32,
    pub error_timeout_s: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub kiosk_listen: SocketAddr,
    pub webhook_listen: SocketAddr,
    /// The kiosk API has no authentication: a `kiosk_listen` off loopback needs this set.
    pub allow_lan: bool,
    /// A listener serving only `GET /metrics`, for a fleet's Prometheus over a VPN; off when unset.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payme {
    pub merchant_id: String,
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    pub checkout_base: String,
    pub account_field: String,
    /// Where Payme's checkout sends the customer after paying or cancelling (`c=` in the link).
    pub return_url: Option<String>,
    pub fiscal: Option<Fiscal>,
}

// Hand-written so that `{:?}` of a config can never print the key.
impl fmt::Debug for Payme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payme")
            .field("merchant_id", &self.merchant_id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_file", &self.key_file)
            .field("checkout_base", &self.checkout_base)
            .field("account_field", &self.account_field)
            .field("return_url", &self.return_url)
            .field("fiscal", &self.fiscal)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fiscal {
    pub title: String,
    pub ikpu: String,
    pub package_code: String,
    pub vat_percent: u8,
    /// The receipt line of a digital-only order (`[digital] price`): its own IKPU code and title.
    pub digital_ikpu: Option<String>,
    pub digital_title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Printer {
    pub backend: PrinterBackend,
    /// A template name from `assets/templates/` (without `.toml`).
    pub layout: String,
    /// Prints per roll or pack; 0 means media is not counted.
    pub capacity: u32,
    /// Warn (log and status) when fewer prints than this are left.
    pub warn_below: u32,
    /// escpos: `tcp://host:port`, `/dev/usb/lpN` or a serial device.
    pub device: Option<String>,
    /// escpos: 384 (58 mm) or 576 (80 mm).
    pub width_dots: u32,
    /// cups: the queue name.
    pub queue: Option<String>,
    /// cups: the media keyword, e.g. `w288h432` or `w288h432-div2`.
    pub media: Option<String>,
    /// cups: extra `-o name=value` options, e.g. `["StpLaminate=Glossy"]`.
    pub options: Vec<String>,
    /// file: where PNGs go; default `data_dir/prints`.
    pub dir: Option<PathBuf>,
    /// Not read from the file: the page the printer's driver prints (a CUPS queue's PPD), filled in
    /// from the printer at start-up (`with_driver_page`); layouts are composed at it when set.
    #[serde(skip)]
    pub page: Option<crate::layout::fit::PageGeometry>,
}

choice!(PrinterBackend { File, Escpos, Cups });

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub backend: CameraBackend,
    /// Photos per session.
    pub shots: u32,
    pub countdown_s: u32,
    /// A capture process still running after this is killed.
    pub timeout_s: u32,
    pub width: u32,
    pub height: u32,
    /// rpicam: pass `--immediate` (only right with fixed exposure, gain and white balance).
    pub immediate: bool,
    /// Appended to the capture command line, one argument per element.
    pub extra_args: Vec<String>,
    /// gphoto2: tries after a busy or I/O error, with backoff.
    pub retries: u32,
    /// Show the live mirror on the attract screen too (the camera then runs all day).
    pub live_idle: bool,
    /// Live view frame size and rate (rpicam-vid and the sim camera; gphoto2 uses the camera's own).
    pub live_width: u32,
    pub live_height: u32,
    pub live_fps: u32,
}

choice!(CameraBackend { Sim, Rpicam, Gphoto2 });

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpio {
    pub backend: GpioBackend,
    /// BCM number of the start/capture button (to ground; the internal pull-up is used).
    pub button_pin: u8,
    pub debounce_ms: u32,
    /// Holding the button this long is a service action instead of a press.
    pub service_hold_ms: u32,
    /// BCM number of the status LED.
    pub led_pin: Option<u8>,
    /// BCM number of a flash or relay lit during capture.
    pub flash_pin: Option<u8>,
}

choice!(GpioBackend { Sim, Rppal });

/// How long photos stay on the card and how much room must stay free (see `booth::janitor`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// A paid order's composed page stays this many days, so reprints work.
    pub keep_pages_days: u32,
    /// Keep every file of every session at least this many hours (0: only as long as needed).
    pub keep_hours: u32,
    /// Below this much free space on the data directory's file system no session starts.
    pub min_free_mb: u64,
}

/// Development switches. Off unless a configuration file turns them on; `photoboothd` run with no
/// configuration file at all (the README's first command) turns them on and says so.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dev {
    /// `POST /api/dev/button` (with the simulated GPIO).
    pub enabled: bool,
}

/// `[digital]`: download links for the customer's photos (the link's life is `src/digital/`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digital {
    pub enabled: bool,
    /// The tunnel's HTTPS address (`https://booth-1.example.com`); links are `{public_url}/d/{token}`.
    pub public_url: Option<String>,
    pub link_hours: u32,
    /// Whole sum for "digital only, no print"; unset, digital copies come only with a paid print.
    pub price: Option<i64>,
    /// A small QR of the link in a corner of the printed page.
    pub qr_on_print: bool,
}
