//! The printer trait, the printer's reported state, and the choice of backend from the
//! configuration. One backend per file.

pub mod cups;
mod escpos;
mod file;
pub mod raster;

use std::fmt;

use image::RgbImage;
use serde::Serialize;

use crate::config::{Config, PrinterBackend};
pub use crate::layout::fit::PageGeometry;
pub use escpos::EscposPrinter;
pub use file::FilePrinter;

/// One composed page (at the printer's native resolution) and how many copies of it to print.
pub struct PrintRequest<'a> {
    pub job_id: i64,
    pub order_id: i64,
    pub copies: u32,
    pub page: &'a RgbImage,
}

#[derive(Debug, Clone)]
pub struct PrintError {
    pub message: String,
    /// Worth retrying by itself (connection refused, printer busy); otherwise a person must act.
    pub transient: bool,
    /// Some of the job may already be on paper (the failure came mid-transfer).
    pub may_have_printed: bool,
}

impl PrintError {
    pub fn transient(message: impl Into<String>) -> PrintError {
        PrintError {
            message: message.into(),
            transient: true,
            may_have_printed: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> PrintError {
        PrintError {
            message: message.into(),
            transient: false,
            may_have_printed: false,
        }
    }

    /// The same error, saying whether some of the job may already be on paper.
    pub fn maybe_printed(self, may_have_printed: bool) -> PrintError {
        PrintError {
            may_have_printed,
            ..self
        }
    }
}

impl fmt::Display for PrintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PrintError {}

/// What the printer says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrinterState {
    Ready,
    /// Printing or processing; new work waits in its queue.
    Busy,
    /// The queue is stopped or paused (CUPS stops a queue after an error) and needs a resume.
    Stopped,
    MediaEmpty,
    Offline,
    /// The printer reports an error other than media (`media-jam-error`, `door-open-error`…):
    /// nothing prints until someone acts.
    Error,
    /// One of our jobs is held or stopped in the printer's queue (CUPS's `retry-job` policy holds a
    /// job whose backend failed, `resources-are-not-ready`): it will not print by itself soon.
    JobStuck,
    /// The print scheduler (cupsd) does not answer; it clears by itself when the scheduler is back.
    SchedulerUnreachable,
    /// The printer does not answer status requests (many thermal printers never do).
    Unknown,
}

impl PrinterState {
    /// Whether a new paid session may start: only states that will print without a person.
    pub fn can_print(self) -> bool {
        matches!(self, PrinterState::Ready | PrinterState::Busy | PrinterState::Unknown)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrinterStatus {
    pub state: PrinterState,
    /// Machine-readable reasons as the printer gives them (IPP keywords such as `media-empty-error`).
    pub reasons: Vec<String>,
}

impl PrinterStatus {
    pub fn new(state: PrinterState) -> PrinterStatus {
        PrinterStatus {
            state,
            reasons: Vec::new(),
        }
    }
}

/// A printer backend. Every method may block (device I/O, child processes); callers run them on a
/// blocking thread.
pub trait Printer: Send + Sync {
    /// The backend's name as the configuration spells it.
    fn backend(&self) -> &'static str;
    /// Prints every copy of the page, returning once the printer (or its queue) has taken them.
    fn print(&self, request: &PrintRequest<'_>) -> Result<(), PrintError>;
    /// The printer's current state; must return within a few seconds.
    fn status(&self) -> PrinterStatus;
    /// Resumes a stopped queue after the owner refilled media. A no-op where nothing can stop.
    /// Returns what it did beyond resuming, for the technician (e.g. a stale error it cleared).
    fn resume(&self) -> Result<Vec<String>, PrintError> {
        Ok(Vec::new())
    }
    /// The page the printer's driver prints, when it dictates one (a CUPS driver's printable area);
    /// every layout is then composed at exactly this size. `None`: the layout's own size.
    fn page_size(&self) -> Option<PageGeometry> {
        None
    }
    /// How many equal strips side by side the media is cut into (`-div2` media: 2), so a page
    /// drawn without a template (the receipt) keeps its text off the cut.
    fn strips(&self) -> u32 {
        1
    }
}

pub fn from_config(config: &Config) -> Result<Box<dyn Printer>, String> {
    match config.printer.backend {
        PrinterBackend::File => Ok(Box::new(FilePrinter::new(config.prints_dir()))),
        PrinterBackend::Escpos => Ok(Box::new(EscposPrinter::from_config(&config.printer)?)),
        PrinterBackend::Cups => {
            let p = &config.printer;
            let queue = p
                .queue
                .as_deref()
                .ok_or("printer.queue is required for the cups backend")?;
            let printer = cups::CupsPrinter::new(queue, p.media.as_deref(), &p.options)?
                .with_journal_dir(config.data_dir().join("cups-jobs"))
                .with_driver_page(std::path::Path::new(cups::PPD_DIR))?;
            Ok(Box::new(printer))
        }
    }
}
