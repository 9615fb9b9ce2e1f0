//! The one configuration file: parsing, validation and the built-in defaults.
//!
//! `assets/photobooth.toml` is embedded and parsed first; a user file is parsed the same way, so the
//! defaults and the documented example can never drift apart. Every error names the file and the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The documented example, which is also the configuration `photoboothd` runs on with no arguments.
pub const DEFAULT_TOML: &str = include_str!("../assets/photobooth.toml");

/// Where a configuration came from, for error messages.
const BUILT_IN: &str = "<built-in defaults>";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub booth: Booth,
    pub http: Http,
    pub payme: Payme,
    pub printer: Printer,
    #[serde(default)]
    pub camera: Camera,
    #[serde(default)]
    pub gpio: Gpio,
    #[serde(default)]
    pub session: Session,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Booth {
    #[serde(default = "default_name")]
    pub name: String,
    /// Whole sum; converted to tiyin with integer math only.
    #[serde(default = "default_price")]
    pub price_per_copy: i64,
    #[serde(default = "default_max_copies")]
    pub max_copies: u32,
    #[serde(default = "default_order_ttl")]
    pub order_ttl_s: u32,
    pub data_dir: Option<PathBuf>,
    /// The kiosk's language until a customer switches it: uz, ru or en.
    #[serde(default)]
    pub language: Language,
    /// Offset of the booth's local time from UTC in minutes, for dates printed on photos
    /// (Uzbekistan: +300, no daylight saving). Stored times stay UTC.
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
}

fn default_utc_offset() -> i32 {
    300
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Uz,
    Ru,
    En,
}

/// The kiosk flow's knobs: how many retakes, and how long each waiting screen waits for a
/// customer before it gives up and returns to the attract screen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    #[serde(default = "default_max_retakes")]
    pub max_retakes: u32,
    #[serde(default = "default_review_timeout")]
    pub review_timeout_s: u32,
    #[serde(default = "default_copies_timeout")]
    pub copies_timeout_s: u32,
    #[serde(default = "default_done_timeout")]
    pub done_timeout_s: u32,
    #[serde(default = "default_error_timeout")]
    pub error_timeout_s: u32,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            max_retakes: default_max_retakes(),
            review_timeout_s: default_review_timeout(),
            copies_timeout_s: default_copies_timeout(),
            done_timeout_s: default_done_timeout(),
            error_timeout_s: default_error_timeout(),
        }
    }
}

fn default_max_retakes() -> u32 {
    2
}
fn default_review_timeout() -> u32 {
    60
}
fn default_copies_timeout() -> u32 {
    60
}
fn default_done_timeout() -> u32 {
    15
}
fn default_error_timeout() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    #[serde(default = "default_kiosk_listen")]
    pub kiosk_listen: SocketAddr,
    #[serde(default = "default_webhook_listen")]
    pub webhook_listen: SocketAddr,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payme {
    #[serde(default)]
    pub merchant_id: String,
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_checkout_base")]
    pub checkout_base: String,
    #[serde(default = "default_account_field")]
    pub account_field: String,
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
            .field("fiscal", &self.fiscal)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fiscal {
    pub title: String,
    pub ikpu: String,
    pub package_code: String,
    pub vat_percent: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Printer {
    #[serde(default)]
    pub backend: PrinterBackend,
    /// A template name from `assets/templates/` (without `.toml`).
    #[serde(default = "default_layout")]
    pub layout: String,
    /// Prints per roll or pack; 0 means media is not counted.
    #[serde(default)]
    pub capacity: u32,
    /// Warn (log and status) when fewer prints than this are left.
    #[serde(default = "default_warn_below")]
    pub warn_below: u32,
    /// escpos: `tcp://host:port`, `/dev/usb/lpN` or a serial device.
    pub device: Option<String>,
    /// escpos: 384 (58 mm) or 576 (80 mm).
    #[serde(default = "default_width_dots")]
    pub width_dots: u32,
    /// cups: the queue name.
    pub queue: Option<String>,
    /// cups: the media keyword, e.g. `w288h432` or `w288h432-div2`.
    pub media: Option<String>,
    /// cups: extra `-o name=value` options, e.g. `["StpLaminate=Glossy"]`.
    #[serde(default)]
    pub options: Vec<String>,
    /// file: where PNGs go; default `data_dir/prints`.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrinterBackend {
    #[default]
    File,
    Escpos,
    Cups,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    #[serde(default)]
    pub backend: CameraBackend,
    /// Photos per session.
    #[serde(default = "default_shots")]
    pub shots: u32,
    #[serde(default = "default_countdown")]
    pub countdown_s: u32,
    /// A capture process still running after this is killed.
    #[serde(default = "default_camera_timeout")]
    pub timeout_s: u32,
    #[serde(default = "default_camera_width")]
    pub width: u32,
    #[serde(default = "default_camera_height")]
    pub height: u32,
    /// rpicam: pass `--immediate` (only right with fixed exposure, gain and white balance).
    #[serde(default)]
    pub immediate: bool,
    /// Appended to the capture command line, one argument per element.
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// gphoto2: tries after a busy or I/O error, with backoff.
    #[serde(default = "default_camera_retries")]
    pub retries: u32,
    /// Show the live mirror on the attract screen too (the camera then runs all day).
    #[serde(default)]
    pub live_idle: bool,
    /// Live view frame size and rate (rpicam-vid and the sim camera; gphoto2 uses the camera's own).
    #[serde(default = "default_live_width")]
    pub live_width: u32,
    #[serde(default = "default_live_height")]
    pub live_height: u32,
    #[serde(default = "default_live_fps")]
    pub live_fps: u32,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            backend: CameraBackend::default(),
            shots: default_shots(),
            countdown_s: default_countdown(),
            timeout_s: default_camera_timeout(),
            width: default_camera_width(),
            height: default_camera_height(),
            immediate: false,
            extra_args: Vec::new(),
            retries: default_camera_retries(),
            live_idle: false,
            live_width: default_live_width(),
            live_height: default_live_height(),
            live_fps: default_live_fps(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraBackend {
    #[default]
    Sim,
    Rpicam,
    Gphoto2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpio {
    #[serde(default)]
    pub backend: GpioBackend,
    /// BCM number of the start/capture button (to ground; the internal pull-up is used).
    #[serde(default = "default_button_pin")]
    pub button_pin: u8,
    #[serde(default = "default_debounce")]
    pub debounce_ms: u32,
    /// Holding the button this long is a service action instead of a press.
    #[serde(default = "default_service_hold")]
    pub service_hold_ms: u32,
    /// BCM number of the status LED.
    pub led_pin: Option<u8>,
    /// BCM number of a flash or relay lit during capture.
    pub flash_pin: Option<u8>,
}

impl Default for Gpio {
    fn default() -> Self {
        Gpio {
            backend: GpioBackend::default(),
            button_pin: default_button_pin(),
            debounce_ms: default_debounce(),
            service_hold_ms: default_service_hold(),
            led_pin: None,
            flash_pin: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpioBackend {
    #[default]
    Sim,
    Rppal,
}

fn default_layout() -> String {
    "strip-2x6".into()
}
fn default_warn_below() -> u32 {
    20
}
fn default_width_dots() -> u32 {
    576
}
fn default_shots() -> u32 {
    3
}
fn default_countdown() -> u32 {
    3
}
fn default_camera_timeout() -> u32 {
    10
}
fn default_camera_width() -> u32 {
    4056
}
fn default_camera_height() -> u32 {
    3040
}
fn default_camera_retries() -> u32 {
    2
}
fn default_live_width() -> u32 {
    960
}
fn default_live_height() -> u32 {
    540
}
fn default_live_fps() -> u32 {
    15
}
fn default_button_pin() -> u8 {
    17
}
fn default_debounce() -> u32 {
    50
}
fn default_service_hold() -> u32 {
    3000
}
fn default_name() -> String {
    "Photo Booth".into()
}
fn default_price() -> i64 {
    20_000
}
fn default_max_copies() -> u32 {
    10
}
fn default_order_ttl() -> u32 {
    600
}
fn default_kiosk_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_webhook_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}
fn default_checkout_base() -> String {
    "https://test.paycom.uz".into()
}
fn default_account_field() -> String {
    "order_id".into()
}

/// A configuration that cannot be used, with the file it came from.
#[derive(Debug)]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source_name, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The embedded defaults.
    pub fn built_in() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_TOML, BUILT_IN)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            message: format!("cannot read the file: {e}"),
        })?;
        Config::parse(&text, &name)
    }

    /// `path` when given, otherwise the built-in defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => Config::built_in(),
        }
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            source_name: source_name.to_string(),
            // toml's message already names the key and shows the line.
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate().map_err(|message| ConfigError {
            source_name: source_name.to_string(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let b = &self.booth;
        if b.price_per_copy <= 0 {
            return Err("booth.price_per_copy must be a whole number of sum above 0".into());
        }
        // The largest order must fit Payme's amount (tiyin) in an i64 with room to spare.
        if b.price_per_copy > 100_000_000 {
            return Err("booth.price_per_copy is above 100 000 000 sum; is it given in tiyin?".into());
        }
        if !(1..=100).contains(&b.max_copies) {
            return Err("booth.max_copies must be between 1 and 100".into());
        }
        if !(5..=86_400).contains(&b.order_ttl_s) {
            return Err("booth.order_ttl_s must be between 5 and 86400 seconds".into());
        }
        if !(-720..=840).contains(&b.utc_offset_minutes) {
            return Err("booth.utc_offset_minutes must be between -720 and 840".into());
        }
        let t = &self.session;
        if t.max_retakes > 10 {
            return Err("session.max_retakes must be at most 10".into());
        }
        for (key, value) in [
            ("session.review_timeout_s", t.review_timeout_s),
            ("session.copies_timeout_s", t.copies_timeout_s),
            ("session.done_timeout_s", t.done_timeout_s),
            ("session.error_timeout_s", t.error_timeout_s),
        ] {
            if !(2..=3600).contains(&value) {
                return Err(format!("{key} must be between 2 and 3600 seconds"));
            }
        }
        if b.name.trim().is_empty() {
            return Err("booth.name must not be empty".into());
        }
        // Port 0 (the OS picks) is allowed on both, for tests.
        if self.http.kiosk_listen == self.http.webhook_listen && self.http.kiosk_listen.port() != 0 {
            return Err("http.kiosk_listen and http.webhook_listen must differ".into());
        }
        let p = &self.payme;
        if !(p.checkout_base.starts_with("https://") || p.checkout_base.starts_with("http://")) {
            return Err("payme.checkout_base must be an http(s) URL".into());
        }
        // These end up inside the base64 checkout parameters, where `;` and `=` are separators.
        for (key, value) in [
            ("payme.merchant_id", &p.merchant_id),
            ("payme.account_field", &p.account_field),
        ] {
            if value.contains([';', '=', ' ']) {
                return Err(format!("{key} must not contain ';', '=' or spaces"));
            }
        }
        if p.account_field.is_empty() {
            return Err("payme.account_field must not be empty".into());
        }
        if p.key.is_some() && p.key_file.is_some() {
            return Err("set payme.key or payme.key_file, not both".into());
        }
        if let Some(key) = &p.key {
            if key.trim().is_empty() {
                return Err("payme.key is empty".into());
            }
        }
        if let Some(f) = &p.fiscal {
            if f.title.trim().is_empty() {
                return Err("payme.fiscal.title must not be empty".into());
            }
            if f.ikpu.len() != 17 || !f.ikpu.bytes().all(|c| c.is_ascii_digit()) {
                return Err("payme.fiscal.ikpu must be the 17-digit IKPU (MXIK) code".into());
            }
            if f.package_code.trim().is_empty() {
                return Err("payme.fiscal.package_code must not be empty".into());
            }
            if f.vat_percent > 100 {
                return Err("payme.fiscal.vat_percent must be between 0 and 100".into());
            }
        }
        self.validate_hardware()
    }

    fn validate_hardware(&self) -> Result<(), String> {
        let pr = &self.printer;
        if let Err(e) = crate::layout::template::load(&pr.layout) {
            return Err(format!("printer.layout: {e}"));
        }
        if !pr
            .layout
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            || pr.layout.is_empty()
        {
            return Err("printer.layout must be a template name such as \"strip-2x6\"".into());
        }
        match pr.backend {
            PrinterBackend::Escpos => {
                if pr.device.as_deref().is_none_or(|d| d.trim().is_empty()) {
                    return Err("printer.device is required for the escpos backend (tcp://host:port, /dev/usb/lp0 or a serial device)".into());
                }
                if pr.width_dots != 384 && pr.width_dots != 576 {
                    return Err("printer.width_dots must be 384 (58 mm) or 576 (80 mm)".into());
                }
            }
            PrinterBackend::Cups => {
                if pr.queue.as_deref().is_none_or(|q| q.trim().is_empty()) {
                    return Err("printer.queue is required for the cups backend".into());
                }
            }
            PrinterBackend::File => {}
        }
        for option in &pr.options {
            if !option.contains('=') || option.starts_with('-') {
                return Err(format!("printer.options entry {option:?} must look like name=value"));
            }
        }
        let c = &self.camera;
        if !(1..=8).contains(&c.shots) {
            return Err("camera.shots must be between 1 and 8".into());
        }
        if c.countdown_s > 30 {
            return Err("camera.countdown_s must be at most 30".into());
        }
        if !(1..=120).contains(&c.timeout_s) {
            return Err("camera.timeout_s must be between 1 and 120".into());
        }
        if !(64..=10_000).contains(&c.width) || !(64..=10_000).contains(&c.height) {
            return Err("camera.width and camera.height must be between 64 and 10000 pixels".into());
        }
        if c.retries > 10 {
            return Err("camera.retries must be at most 10".into());
        }
        if !(160..=4096).contains(&c.live_width) || !(120..=4096).contains(&c.live_height) {
            return Err("camera.live_width must be 160..=4096 and camera.live_height 120..=4096 pixels".into());
        }
        if !(1..=60).contains(&c.live_fps) {
            return Err("camera.live_fps must be between 1 and 60".into());
        }
        let g = &self.gpio;
        for (key, pin) in [
            ("gpio.button_pin", Some(g.button_pin)),
            ("gpio.led_pin", g.led_pin),
            ("gpio.flash_pin", g.flash_pin),
        ] {
            if pin.is_some_and(|p| p > 27) {
                return Err(format!("{key} must be a BCM GPIO number from 0 to 27"));
            }
        }
        let pins: Vec<u8> = [Some(g.button_pin), g.led_pin, g.flash_pin]
            .into_iter()
            .flatten()
            .collect();
        if (1..pins.len()).any(|i| pins[..i].contains(&pins[i])) {
            return Err("gpio.button_pin, gpio.led_pin and gpio.flash_pin must be different pins".into());
        }
        if !(5..=1000).contains(&g.debounce_ms) {
            return Err("gpio.debounce_ms must be between 5 and 1000".into());
        }
        if !(500..=30_000).contains(&g.service_hold_ms) {
            return Err("gpio.service_hold_ms must be between 500 and 30000".into());
        }
        Ok(())
    }

    /// Price of one copy in tiyin (1 sum = 100 tiyin).
    pub fn price_per_copy_tiyin(&self) -> i64 {
        self.booth.price_per_copy * 100
    }

    /// Now as the booth's wall clock reads it, in ms: only for dates printed on photos.
    pub fn local_time_ms(&self, utc_ms: i64) -> i64 {
        utc_ms + i64::from(self.booth.utc_offset_minutes) * 60_000
    }

    /// Where the `file` printer writes.
    pub fn prints_dir(&self) -> PathBuf {
        self.printer
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("prints"))
    }

    /// The data directory: the configured one, systemd's `$STATE_DIRECTORY`, or `./data`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.booth.data_dir {
            return dir.clone();
        }
        // systemd may pass several directories separated by ':'; ours is the first.
        if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
            if let Some(first) = state.to_string_lossy().split(':').next() {
                if !first.is_empty() {
                    return PathBuf::from(first);
                }
            }
        }
        // Installed from the .deb but run by hand (the CLI over SSH): the service's directory.
        let packaged = Path::new("/var/lib/photoboothd");
        if packaged.is_dir() {
            return packaged.to_path_buf();
        }
        PathBuf::from("data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_parse_and_match_the_documented_values() {
        let c = Config::built_in().unwrap();
        assert_eq!(c.booth.price_per_copy, 20_000);
        assert_eq!(c.price_per_copy_tiyin(), 2_000_000);
        assert_eq!(c.booth.max_copies, 10);
        assert_eq!(c.booth.order_ttl_s, 600);
        assert_eq!(c.http.kiosk_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http.webhook_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.payme.checkout_base, "https://test.paycom.uz");
        assert_eq!(c.payme.account_field, "order_id");
        assert!(c.payme.fiscal.is_none());
        assert_eq!(c.printer.backend, PrinterBackend::File);
    }

    #[test]
    fn unknown_key_names_the_key_and_the_file() {
        let text = DEFAULT_TOML.replace("max_copies = 10", "max_copies = 10\nmax_copiez = 3");
        let err = Config::parse(&text, "/etc/photobooth/photobooth.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/photobooth/photobooth.toml"), "{msg}");
        assert!(msg.contains("max_copiez"), "{msg}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (from, to, key) in [
            ("price_per_copy = 20000", "price_per_copy = 0", "booth.price_per_copy"),
            ("max_copies = 10", "max_copies = 0", "booth.max_copies"),
            ("order_ttl_s = 600", "order_ttl_s = 4", "booth.order_ttl_s"),
            ("price_per_copy = 20000", "price_per_copy = 200.5", "price_per_copy"),
            (
                "kiosk_listen = \"127.0.0.1:8080\"",
                "kiosk_listen = \"nowhere\"",
                "kiosk_listen",
            ),
            ("backend = \"file\"", "backend = \"laser\"", "backend"),
        ] {
            let text = DEFAULT_TOML.replace(from, to);
            assert_ne!(text, DEFAULT_TOML, "replacement {from} did not apply");
            let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(msg.contains(key), "{msg} should name {key}");
            assert!(msg.starts_with("x.toml"), "{msg}");
        }
    }

    #[test]
    fn fiscal_section_is_checked() {
        let text = format!(
            "{DEFAULT_TOML}\n[payme.fiscal]\ntitle = \"Photo\"\nikpu = \"123\"\npackage_code = \"1\"\nvat_percent = 12\n"
        );
        let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(msg.contains("payme.fiscal.ikpu"), "{msg}");
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let text = DEFAULT_TOML.replace("# key = \"...\"", "key = \"s3cr3t-key\"");
        let c = Config::parse(&text, "x.toml").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-key"));
    }
}
