//! The printer trait and the choice of backend from the configuration.

mod file;

use std::fmt;
use std::path::Path;

use image::RgbImage;

use crate::config::{Config, PrinterBackend};
pub use file::FilePrinter;

/// One composed page and how many copies of it to print.
pub struct PrintRequest<'a> {
    pub job_id: i64,
    pub order_id: i64,
    pub copies: u32,
    pub page: &'a RgbImage,
}

#[derive(Debug)]
pub struct PrintError {
    pub message: String,
}

impl fmt::Display for PrintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PrintError {}

/// A printer backend. `print` blocks until the printer has taken every copy; the print loop calls
/// it from a blocking thread.
pub trait Printer: Send + Sync {
    /// The backend's name as the configuration spells it.
    fn backend(&self) -> &'static str;
    fn print(&self, request: &PrintRequest<'_>) -> Result<(), PrintError>;
}

pub fn from_config(config: &Config, data_dir: &Path) -> Box<dyn Printer> {
    match config.printer.backend {
        PrinterBackend::File => Box::new(FilePrinter::new(data_dir.join("prints"))),
    }
}
