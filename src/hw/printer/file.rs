//! The `file` printer: one PNG per copy under `data_dir/prints/`. The default on a machine with no
//! printer, and what tests read back to see exactly what would have been printed.

use std::path::PathBuf;

use super::{PrintError, PrintRequest, Printer, PrinterState, PrinterStatus};

pub struct FilePrinter {
    dir: PathBuf,
}

impl FilePrinter {
    pub fn new(dir: PathBuf) -> FilePrinter {
        FilePrinter { dir }
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> PrintError {
        // A full or read-only disk may clear up; retrying is cheap and harmless.
        PrintError::transient(format!("cannot {what} in {}: {e}", self.dir.display()))
    }
}

impl Printer for FilePrinter {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn print(&self, r: &PrintRequest<'_>) -> Result<(), PrintError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.failed("create the folder", e))?;
        let mut png = Vec::new();
        r.page
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| self.failed("encode the page", e))?;
        for copy in 1..=r.copies {
            let name = format!("order-{}-job-{}-copy-{copy}.png", r.order_id, r.job_id);
            // Written aside and renamed, so a reader never sees half a print.
            let tmp = self.dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, &png).map_err(|e| self.failed("write a print", e))?;
            std::fs::rename(&tmp, self.dir.join(&name)).map_err(|e| self.failed("write a print", e))?;
        }
        Ok(())
    }

    fn status(&self) -> PrinterStatus {
        // The folder is the paper: if it cannot be created, nothing can print.
        match std::fs::create_dir_all(&self.dir) {
            Ok(()) => PrinterStatus::new(PrinterState::Ready),
            Err(e) => PrinterStatus {
                state: PrinterState::Offline,
                reasons: vec![format!("folder: {e}")],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn writes_one_png_per_copy() {
        let dir = tempfile::tempdir().unwrap();
        let printer = FilePrinter::new(dir.path().join("prints"));
        let page = RgbImage::from_pixel(10, 10, Rgb([1, 2, 3]));
        printer
            .print(&PrintRequest {
                job_id: 4,
                order_id: 9,
                copies: 2,
                page: &page,
            })
            .unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("prints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["order-9-job-4-copy-1.png", "order-9-job-4-copy-2.png"]);
        let back = image::open(dir.path().join("prints/order-9-job-4-copy-2.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(back, page);
    }
}
