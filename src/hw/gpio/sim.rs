//! The simulated GPIO backend: presses come from the kiosk API (`POST /api/dev/button`) and
//! tests; the LED and flash states are kept so `/api/status` and tests can see them.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::{ButtonEvent, Gpio, LedMode};

pub struct SimGpio {
    events: mpsc::UnboundedSender<ButtonEvent>,
    outputs: Mutex<(LedMode, bool)>,
}

impl SimGpio {
    pub fn new(events: mpsc::UnboundedSender<ButtonEvent>) -> SimGpio {
        SimGpio {
            events,
            outputs: Mutex::new((LedMode::Off, false)),
        }
    }

    /// Acts as if the button was pressed (or held). False if nothing listens any more.
    pub fn press(&self, event: ButtonEvent) -> bool {
        self.events.send(event).is_ok()
    }

    pub fn led(&self) -> LedMode {
        self.outputs.lock().map(|o| o.0).unwrap_or(LedMode::Off)
    }

    pub fn flash(&self) -> bool {
        self.outputs.lock().map(|o| o.1).unwrap_or(false)
    }
}

impl Gpio for SimGpio {
    fn backend(&self) -> &'static str {
        "sim"
    }

    fn set_led(&self, mode: LedMode) {
        if let Ok(mut o) = self.outputs.lock() {
            o.0 = mode;
        }
    }

    fn set_flash(&self, on: bool) {
        if let Ok(mut o) = self.outputs.lock() {
            o.1 = on;
        }
    }

    fn as_sim(&self) -> Option<&SimGpio> {
        Some(self)
    }
}
