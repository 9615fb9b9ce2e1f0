//! Buttons and lights: the start/capture button, the status LED and an optional flash relay.
//! Backends (`rppal` on a Pi, `sim` elsewhere) share the button decoder here, so debounce and
//! long-press behave the same in tests as on the booth.

mod rppal;
mod sim;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{Config, GpioBackend};
pub use sim::SimGpio;

/// What a person did with the button, after debouncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonEvent {
    /// A short press: start a session, take the next photo.
    Press,
    /// Held for `service_hold_ms`: the service action (resume the printer, retry failed prints).
    Hold,
}

/// The status LED tells a customer, from across the room, whether the booth is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedMode {
    Off,
    /// Ready for a customer.
    Steady,
    /// Working (capturing, printing).
    Blink,
    /// Needs staff (printer or camera fault).
    FastBlink,
}

message_error!(GpioError);

pub trait Gpio: Send + Sync {
    /// The backend's name as the configuration spells it.
    fn backend(&self) -> &'static str;
    fn set_led(&self, mode: LedMode);
    /// Lights the flash or relay pin (if configured) for the duration of a capture.
    fn set_flash(&self, on: bool);
    /// The simulated backend, which accepts presses from the kiosk API and tests.
    fn as_sim(&self) -> Option<&SimGpio> {
        None
    }
}

/// Starts the configured backend; button events arrive on `events`.
pub fn from_config(config: &Config, events: mpsc::UnboundedSender<ButtonEvent>) -> Result<Box<dyn Gpio>, GpioError> {
    let decoder = ButtonDecoder::new(config.gpio.debounce_ms, config.gpio.service_hold_ms);
    match config.gpio.backend {
        GpioBackend::Sim => Ok(Box::new(SimGpio::new(events))),
        GpioBackend::Rppal => Ok(Box::new(rppal::RppalGpio::start(&config.gpio, decoder, events)?)),
    }
}

/// Turns raw edges of an active-low button into presses and holds.
///
/// A press counts on release, after it has lasted at least `debounce_ms`: interference on long
/// wires makes spikes far shorter than a finger, so they never become presses, and the release
/// decides between a press and a hold without a timer. Edges closer than `debounce_ms` to the last
/// accepted edge are contact bounce and ignored.
#[derive(Debug, Clone)]
pub struct ButtonDecoder {
    debounce_ms: u64,
    hold_ms: u64,
    pressed_at: Option<u64>,
    last_edge: Option<u64>,
}

impl ButtonDecoder {
    pub fn new(debounce_ms: u32, hold_ms: u32) -> ButtonDecoder {
        ButtonDecoder {
            debounce_ms: u64::from(debounce_ms),
            hold_ms: u64::from(hold_ms),
            pressed_at: None,
            last_edge: None,
        }
    }

    /// Feeds one edge: `down` is true when the button closed (the pin went low). `at_ms` is any
    /// monotonic clock in milliseconds.
    pub fn edge(&mut self, down: bool, at_ms: u64) -> Option<ButtonEvent> {
        if let Some(last) = self.last_edge {
            if at_ms.saturating_sub(last) < self.debounce_ms {
                return None;
            }
        }
        match (down, self.pressed_at) {
            (true, None) => {
                self.last_edge = Some(at_ms);
                self.pressed_at = Some(at_ms);
                None
            }
            (false, Some(start)) => {
                self.last_edge = Some(at_ms);
                self.pressed_at = None;
                let held = at_ms.saturating_sub(start);
                if held >= self.hold_ms {
                    Some(ButtonEvent::Hold)
                } else if held >= self.debounce_ms {
                    Some(ButtonEvent::Press)
                } else {
                    None
                }
            }
            // A repeated level (a missed edge): resynchronise without an event.
            (true, Some(_)) => {
                self.pressed_at = Some(at_ms);
                None
            }
            (false, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_press_and_a_hold() {
        let mut d = ButtonDecoder::new(50, 3000);
        assert_eq!(d.edge(true, 1000), None);
        assert_eq!(d.edge(false, 1200), Some(ButtonEvent::Press));
        assert_eq!(d.edge(true, 5000), None);
        assert_eq!(d.edge(false, 8100), Some(ButtonEvent::Hold));
    }

    #[test]
    fn bounce_is_one_press() {
        let mut d = ButtonDecoder::new(50, 3000);
        let edges = [
            (true, 0),
            (false, 3),
            (true, 6),
            (false, 9),
            (true, 12),
            (false, 150),
            (true, 160),
            (false, 170),
        ];
        let events: Vec<_> = edges.iter().filter_map(|&(down, t)| d.edge(down, t)).collect();
        assert_eq!(events, [ButtonEvent::Press]);
    }

    #[test]
    fn a_spike_shorter_than_debounce_is_not_a_press() {
        let mut d = ButtonDecoder::new(50, 3000);
        assert_eq!(d.edge(true, 1000), None);
        // Released 20 ms later: within debounce, so ignored as bounce; the level is still "down".
        assert_eq!(d.edge(false, 1020), None);
        // The real release comes later and the press counts only once.
        assert_eq!(d.edge(false, 1300), Some(ButtonEvent::Press));
        assert_eq!(d.edge(false, 1400), None);
    }
}
