//! `Config::parse` on arbitrary UTF-8: it must return `Ok` or a `ConfigError`, never panic, blow
//! the stack or hang. On `Ok`, the checks `validate` promises must hold (so the rest of the daemon
//! can rely on them), and `{:?}` must never show the Payme key.

#![no_main]

use libfuzzer_sys::fuzz_target;
use photoboothd::config::{Config, PrinterBackend};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, "fuzz.toml") {
        Ok(c) => c,
        Err(e) => {
            // Every error names the file it came from.
            assert!(e.to_string().starts_with("fuzz.toml: "), "{e}");
            return;
        }
    };
    let b = &config.booth;
    assert!(b.price_per_copy > 0 && b.price_per_copy <= 100_000_000);
    assert!((1..=100).contains(&b.max_copies));
    // The largest order in tiyin fits an i64 with room to spare (Payme amounts are i64 tiyin).
    let largest = config
        .price_per_copy_tiyin()
        .checked_mul(i64::from(b.max_copies))
        .expect("largest order overflows");
    assert!(largest > 0);
    assert!((5..=86_400).contains(&b.order_ttl_s));
    assert!(!b.name.trim().is_empty());
    assert!(!config.payme.account_field.is_empty());
    assert!(!(config.payme.key.is_some() && config.payme.key_file.is_some()));
    if config.printer.backend == PrinterBackend::Escpos {
        assert!(matches!(config.printer.width_dots, 384 | 576));
    }
    // Local time for any plausible clock reading cannot overflow.
    let _ = config.local_time_ms(i64::MAX / 2);

    // Redaction: the key must not appear in `{:?}` unless some other field also holds its text.
    if let Some(key) = config.payme.key.clone() {
        if key.len() >= 6 {
            let shown = format!("{config:?}");
            let mut without = config.clone();
            without.payme.key = None;
            if !format!("{without:?}").contains(&key) {
                assert!(!shown.contains(&key), "Debug output shows the Payme key");
            }
        }
    }
});
