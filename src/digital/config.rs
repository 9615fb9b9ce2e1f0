//! What the `[digital]` section (`config::Digital`, defaults in `assets/photobooth.toml`) means:
//! the digital-only price, the link's lifetime, and whether links can work at all here.

use super::Links;
use crate::config::{Config, Digital};

impl Digital {
    /// Price of a digital-only order in tiyin, if digital-only is on sale.
    pub fn price_tiyin(&self) -> Option<i64> {
        self.price.map(|p| p * 100)
    }

    pub fn link_ms(&self) -> i64 {
        i64::from(self.link_hours) * 3_600_000
    }
}

/// Whether the booth talks to Payme's sandbox (test checkout): then a link to the webhook
/// listener's own address is acceptable for trying digital copies out.
pub fn sandbox(config: &Config) -> bool {
    config.payme.checkout_base.contains("test.paycom.uz")
}

/// Why digital copies are off for this configuration, or `None` when they are on.
pub fn off_reason(config: &Config) -> Option<&'static str> {
    let d = &config.digital;
    if !d.enabled {
        return Some("digital.enabled is false");
    }
    if d.public_url.is_none() && !sandbox(config) {
        return Some(
            "digital.public_url is not set: outside Payme's sandbox the link must be the tunnel's public HTTPS address",
        );
    }
    None
}

/// What the link maker (`link::attach_link`) is told: the one answer for Payme's PerformTransaction
/// and for an event's free orders, so a guest's link is made exactly like a paying customer's.
pub fn links(config: &Config) -> Links {
    Links {
        for_prints: off_reason(config).is_none(),
        link_ms: config.digital.link_ms(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, DEFAULT_TOML};

    #[test]
    fn defaults_and_checks() {
        let c = Config::built_in().unwrap();
        assert!(c.digital.enabled && !c.digital.qr_on_print);
        assert_eq!((c.digital.link_hours, c.digital.price), (72, None));
        // The built-in config talks to the sandbox: links may use the webhook's own address.
        assert_eq!(super::off_reason(&c), None);
        let prod = DEFAULT_TOML.replace("https://test.paycom.uz", "https://checkout.paycom.uz");
        let c = Config::parse(&prod, "x.toml").unwrap();
        assert!(super::off_reason(&c).unwrap().contains("public_url"));
        for (from, to, key) in [
            ("link_hours = 72", "link_hours = 0", "digital.link_hours"),
            (
                "# public_url = \"https://booth-1.example.com\"",
                "public_url = \"booth-1\"",
                "digital.public_url",
            ),
            ("# price = 10000", "price = -5", "digital.price"),
        ] {
            crate::config::assert_rejected(from, to, key);
        }
        // A digital-only price with fiscal receipts needs the digital product's own IKPU code.
        let fiscal = "\n[payme.fiscal]\ntitle = \"Photo\"\nikpu = \"10499001001000000\"\npackage_code = \"1\"\nvat_percent = 12\n";
        let text = format!("{}{fiscal}", DEFAULT_TOML.replace("# price = 10000", "price = 10000"));
        let msg = Config::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(msg.contains("payme.fiscal.digital_ikpu"), "{msg}");
    }
}
