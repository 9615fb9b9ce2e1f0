//! What a well-typed configuration must also satisfy: ranges, required-by-backend keys and rules
//! across keys. One function per section; each error names the key it is about (the file is added
//! by the caller).

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::sections::PrinterBackend;
use super::Config;

/// A value that is well-typed but unusable: the key (`section.key`) and a sentence that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

type Checked = Result<(), Invalid>;

/// `Err` naming `key` unless `ok`.
fn require(ok: bool, key: &'static str, message: impl Into<String>) -> Checked {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            key,
            message: message.into(),
        })
    }
}

/// `Err` unless `value` is in `range`: "`key` must be between `lo` and `hi``unit`".
fn between<T: PartialOrd + Display>(key: &'static str, value: T, range: RangeInclusive<T>, unit: &str) -> Checked {
    let message = format!("{key} must be between {} and {}{unit}", range.start(), range.end());
    require(range.contains(&value), key, message)
}

/// `Err` unless `value <= max`: "`key` must be at most `max``unit`".
fn at_most<T: PartialOrd + Display>(key: &'static str, value: T, max: T, unit: &str) -> Checked {
    require(value <= max, key, format!("{key} must be at most {max}{unit}"))
}

/// Every section's rules, in file order.
pub fn config(c: &Config) -> Checked {
    booth(c)?;
    session(c)?;
    http(c)?;
    payme(c)?;
    printer(c)?;
    camera(c)?;
    gpio(c)?;
    super::owner::service(c)?;
    super::owner::event(c)?;
    storage(c)?;
    digital(c)
}

fn storage(c: &Config) -> Checked {
    let s = &c.storage;
    at_most("storage.keep_pages_days", s.keep_pages_days, 3650, " (ten years)")?;
    at_most("storage.keep_hours", s.keep_hours, 24 * 3650, " (ten years)")
}

fn digital(c: &Config) -> Checked {
    let d = &c.digital;
    if let Some(url) = &d.public_url {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or("");
        require(
            !rest.is_empty() && !rest.contains(['?', '#', ' ']),
            "digital.public_url",
            "digital.public_url must be an http(s) address such as \"https://booth-1.example.com\"",
        )?;
    }
    between("digital.link_hours", d.link_hours, 1..=24 * 31, " (31 days)")?;
    let Some(price) = d.price else { return Ok(()) };
    require(
        (1..=100_000_000).contains(&price),
        "digital.price",
        "digital.price must be a whole number of sum from 1 to 100 000 000",
    )?;
    let Some(f) = &c.payme.fiscal else { return Ok(()) };
    let ikpu = f.digital_ikpu.as_deref().unwrap_or("");
    require(
        ikpu.len() == 17 && ikpu.bytes().all(|b| b.is_ascii_digit()),
        "payme.fiscal.digital_ikpu",
        "payme.fiscal.digital_ikpu (the 17-digit IKPU of digital copies) is required when digital.price is set",
    )
}

fn booth(c: &Config) -> Checked {
    let b = &c.booth;
    require(
        b.price_per_copy > 0,
        "booth.price_per_copy",
        "booth.price_per_copy must be a whole number of sum above 0",
    )?;
    // The largest order must fit Payme's amount (tiyin) in an i64 with room to spare.
    require(
        b.price_per_copy <= 100_000_000,
        "booth.price_per_copy",
        "booth.price_per_copy is above 100 000 000 sum; is it given in tiyin?",
    )?;
    between("booth.max_copies", b.max_copies, 1..=100, "")?;
    between("booth.order_ttl_s", b.order_ttl_s, 5..=86_400, " seconds")?;
    between("booth.utc_offset_minutes", b.utc_offset_minutes, -720..=840, "")?;
    require(!b.name.trim().is_empty(), "booth.name", "booth.name must not be empty")
}

fn session(c: &Config) -> Checked {
    let t = &c.session;
    at_most("session.max_retakes", t.max_retakes, 10, "")?;
    for (key, value) in [
        ("session.review_timeout_s", t.review_timeout_s),
        ("session.copies_timeout_s", t.copies_timeout_s),
        ("session.done_timeout_s", t.done_timeout_s),
        ("session.error_timeout_s", t.error_timeout_s),
    ] {
        between(key, value, 2..=3600, " seconds")?;
    }
    Ok(())
}

fn http(c: &Config) -> Checked {
    let h = &c.http;
    // The kiosk API has no password: off loopback only when the owner says so.
    require(
        h.kiosk_listen.ip().is_loopback() || h.allow_lan,
        "http.kiosk_listen",
        format!(
            "http.kiosk_listen {} is not a loopback address; the kiosk API has no password, so serving it on the network needs http.allow_lan = true",
            h.kiosk_listen
        ),
    )?;
    // Port 0 (the OS picks) is allowed on both, for tests.
    require(
        h.kiosk_listen != h.webhook_listen || h.kiosk_listen.port() == 0,
        "http.webhook_listen",
        "http.kiosk_listen and http.webhook_listen must differ",
    )?;
    require(
        h.metrics_listen
            .is_none_or(|m| m.port() == 0 || (m != h.kiosk_listen && m != h.webhook_listen)),
        "http.metrics_listen",
        "http.metrics_listen must differ from the kiosk and webhook listeners",
    )
}

fn payme(c: &Config) -> Checked {
    let p = &c.payme;
    require(
        p.checkout_base.starts_with("https://") || p.checkout_base.starts_with("http://"),
        "payme.checkout_base",
        "payme.checkout_base must be an http(s) URL",
    )?;
    // The checkout link is `key=value` pairs joined by `;`: a `;` would end the URL early.
    require(
        p.return_url
            .as_ref()
            .is_none_or(|u| (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(';')),
        "payme.return_url",
        "payme.return_url must be an http(s) URL without ';'",
    )?;
    // These end up inside the base64 checkout parameters, where `;` and `=` are separators.
    for (key, value) in [
        ("payme.merchant_id", &p.merchant_id),
        ("payme.account_field", &p.account_field),
    ] {
        require(
            !value.contains([';', '=', ' ']),
            key,
            format!("{key} must not contain ';', '=' or spaces"),
        )?;
    }
    require(
        !p.account_field.is_empty(),
        "payme.account_field",
        "payme.account_field must not be empty",
    )?;
    require(
        p.key.is_none() || p.key_file.is_none(),
        "payme.key",
        "set payme.key or payme.key_file, not both",
    )?;
    require(
        p.key.as_ref().is_none_or(|k| !k.trim().is_empty()),
        "payme.key",
        "payme.key is empty",
    )?;
    let Some(f) = &p.fiscal else { return Ok(()) };
    require(
        !f.title.trim().is_empty(),
        "payme.fiscal.title",
        "payme.fiscal.title must not be empty",
    )?;
    require(
        f.ikpu.len() == 17 && f.ikpu.bytes().all(|c| c.is_ascii_digit()),
        "payme.fiscal.ikpu",
        "payme.fiscal.ikpu must be the 17-digit IKPU (MXIK) code",
    )?;
    require(
        !f.package_code.trim().is_empty(),
        "payme.fiscal.package_code",
        "payme.fiscal.package_code must not be empty",
    )?;
    require(
        f.vat_percent <= 100,
        "payme.fiscal.vat_percent",
        "payme.fiscal.vat_percent must be between 0 and 100",
    )
}

fn printer(c: &Config) -> Checked {
    let pr = &c.printer;
    if let Err(e) = crate::layout::template::load(&pr.layout) {
        return require(false, "printer.layout", format!("printer.layout: {e}"));
    }
    require(
        !pr.layout.is_empty()
            && pr
                .layout
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "printer.layout",
        "printer.layout must be a template name such as \"strip-2x6\"",
    )?;
    match pr.backend {
        PrinterBackend::Escpos => {
            require(
                pr.device.as_deref().is_some_and(|d| !d.trim().is_empty()),
                "printer.device",
                "printer.device is required for the escpos backend (tcp://host:port, /dev/usb/lp0 or a serial device)",
            )?;
            require(
                pr.width_dots == 384 || pr.width_dots == 576,
                "printer.width_dots",
                "printer.width_dots must be 384 (58 mm) or 576 (80 mm)",
            )?;
        }
        PrinterBackend::Cups => require(
            pr.queue.as_deref().is_some_and(|q| !q.trim().is_empty()),
            "printer.queue",
            "printer.queue is required for the cups backend",
        )?,
        PrinterBackend::File => {}
    }
    pr.options.iter().try_for_each(|option| {
        require(
            option.contains('=') && !option.starts_with('-'),
            "printer.options",
            format!("printer.options entry {option:?} must look like name=value"),
        )
    })
}

fn camera(c: &Config) -> Checked {
    let cam = &c.camera;
    between("camera.shots", cam.shots, 1..=8, "")?;
    at_most("camera.countdown_s", cam.countdown_s, 30, "")?;
    between("camera.timeout_s", cam.timeout_s, 1..=120, "")?;
    require(
        (64..=10_000).contains(&cam.width) && (64..=10_000).contains(&cam.height),
        "camera.width",
        "camera.width and camera.height must be between 64 and 10000 pixels",
    )?;
    at_most("camera.retries", cam.retries, 10, "")?;
    require(
        (160..=4096).contains(&cam.live_width) && (120..=4096).contains(&cam.live_height),
        "camera.live_width",
        "camera.live_width must be 160..=4096 and camera.live_height 120..=4096 pixels",
    )?;
    between("camera.live_fps", cam.live_fps, 1..=60, "")
}

fn gpio(c: &Config) -> Checked {
    let g = &c.gpio;
    for (key, pin) in [
        ("gpio.button_pin", Some(g.button_pin)),
        ("gpio.led_pin", g.led_pin),
        ("gpio.flash_pin", g.flash_pin),
    ] {
        require(
            pin.is_none_or(|p| p <= 27),
            key,
            format!("{key} must be a BCM GPIO number from 0 to 27"),
        )?;
    }
    let pins: Vec<u8> = [Some(g.button_pin), g.led_pin, g.flash_pin]
        .into_iter()
        .flatten()
        .collect();
    require(
        !(1..pins.len()).any(|i| pins[..i].contains(&pins[i])),
        "gpio.led_pin",
        "gpio.button_pin, gpio.led_pin and gpio.flash_pin must be different pins",
    )?;
    between("gpio.debounce_ms", g.debounce_ms, 5..=1000, "")?;
    between("gpio.service_hold_ms", g.service_hold_ms, 500..=30_000, "")
}
