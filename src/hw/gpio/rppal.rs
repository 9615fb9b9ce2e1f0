//! The Raspberry Pi backend through the rppal API (the `rpi-pal` fork). Uses the GPIO character
//! device, so it works on Pi 5 and Bookworm where sysfs GPIO is gone. Pin numbers are BCM.

use std::sync::Mutex;

use rppal::gpio::{Gpio as Chip, InputPin, OutputPin, Trigger};
use tokio::sync::mpsc;

use super::{ButtonDecoder, ButtonEvent, Gpio, GpioError, LedMode};
use crate::config;

pub struct RppalGpio {
    // Kept alive: dropping the input pin would stop its interrupt thread.
    _button: InputPin,
    led: Option<Mutex<OutputPin>>,
    flash: Option<Mutex<OutputPin>>,
}

fn describe(e: rppal::gpio::Error, what: &str) -> GpioError {
    match e {
        rppal::gpio::Error::PermissionDenied(path) => GpioError(format!(
            "no permission to use {path} for the {what}: add the service user to the `gpio` group \
             (systemd: SupplementaryGroups=gpio) or set gpio.backend = \"sim\""
        )),
        other => GpioError(format!(
            "cannot use the GPIO for the {what}: {other} (not a Raspberry Pi? set gpio.backend = \"sim\")"
        )),
    }
}

impl RppalGpio {
    pub fn start(
        cfg: &config::Gpio,
        mut decoder: ButtonDecoder,
        events: mpsc::UnboundedSender<ButtonEvent>,
    ) -> Result<RppalGpio, GpioError> {
        let chip = Chip::new().map_err(|e| describe(e, "button"))?;
        let mut button = chip
            .get(cfg.button_pin)
            .map_err(|e| describe(e, "button"))?
            .into_input_pullup();
        // Our decoder does the debouncing on the kernel's edge timestamps, identically to `sim`.
        button
            .set_async_interrupt(Trigger::Both, None, move |event| {
                let down = event.trigger == Trigger::FallingEdge;
                let at_ms = event.timestamp.as_millis() as u64;
                if let Some(e) = decoder.edge(down, at_ms) {
                    let _ = events.send(e);
                }
            })
            .map_err(|e| describe(e, "button"))?;
        let output = |pin: Option<u8>, what: &str| -> Result<Option<Mutex<OutputPin>>, GpioError> {
            pin.map(|p| {
                chip.get(p)
                    .map(|p| Mutex::new(p.into_output_low()))
                    .map_err(|e| describe(e, what))
            })
            .transpose()
        };
        Ok(RppalGpio {
            _button: button,
            led: output(cfg.led_pin, "status LED")?,
            flash: output(cfg.flash_pin, "flash")?,
        })
    }
}

impl Gpio for RppalGpio {
    fn backend(&self) -> &'static str {
        "rppal"
    }

    fn set_led(&self, mode: LedMode) {
        let Some(led) = &self.led else { return };
        let Ok(mut pin) = led.lock() else { return };
        // Software PWM at a few hertz is a blink; rppal runs it on its own thread.
        let result = match mode {
            LedMode::Off => pin.clear_pwm().map(|()| pin.set_low()),
            LedMode::Steady => pin.clear_pwm().map(|()| pin.set_high()),
            LedMode::Blink => pin.set_pwm_frequency(1.0, 0.5),
            LedMode::FastBlink => pin.set_pwm_frequency(5.0, 0.5),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot drive the status LED");
        }
    }

    fn set_flash(&self, on: bool) {
        let Some(flash) = &self.flash else { return };
        if let Ok(mut pin) = flash.lock() {
            if on {
                pin.set_high();
            } else {
                pin.set_low();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// rpi-pal reads the kernel version with this pattern (its `system.rs`) to find a Pi 5's PWM
    /// chip; the build serves `regex` from regex-lite (vendor/regex), which must still parse it.
    #[test]
    fn the_regex_rpi_pal_gets_reads_proc_version() {
        let re = regex::Regex::new(r"Linux version (?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)");
        let re = re.expect("rpi-pal's pattern compiles");
        let line = "Linux version 6.12.25+rpt-rpi-2712 (serge@raspberrypi.com) (gcc-12) #1 SMP PREEMPT";
        let caps = re.captures(line).expect("it matches");
        let part = |name: &str| caps.name(name).map(|m| m.as_str());
        assert_eq!(
            (part("major"), part("minor"), part("patch")),
            (Some("6"), Some("12"), Some("25"))
        );
    }
}
