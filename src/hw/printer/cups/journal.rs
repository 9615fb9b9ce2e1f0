//! The restart journal: which CUPS job carries which print-loop job, so a daemon restart in the
//! middle of a print waits for the job already in CUPS instead of sending it again. One file per
//! print-loop job under `data_dir/cups-jobs/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::parse::looks_like_request;

/// Which CUPS job carries which print-loop job, from `lp` until the job is finished (or cancelled by
/// us). In memory, and in a folder when one is set, so that it survives a restart.
///
/// An entry is one line, `<request> order=<order id> copies=<copies>`. The order and copies must
/// match for the entry to count, so a stale entry can never stand in for a different job that got
/// the same id (a database started afresh next to an old journal).
pub(super) struct Journal {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<i64, String>>,
}

fn journal_line(request: &str, order_id: i64, copies: u32) -> String {
    format!("{request} order={order_id} copies={copies}")
}

/// The request of a journal line, if the line is whole and (where it says) for this order and copies.
fn journal_request(line: &str, order_id: i64, copies: u32) -> Option<String> {
    let mut words = line.split_whitespace();
    let request = words.next().filter(|r| looks_like_request(r))?;
    for word in words {
        let matches = match word.split_once('=') {
            Some(("order", v)) => v == order_id.to_string(),
            Some(("copies", v)) => v == copies.to_string(),
            // Written by a later version: ignore what we do not know.
            _ => true,
        };
        if !matches {
            return None;
        }
    }
    Some(request.to_string())
}

fn write_synced(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

impl Journal {
    /// A journal in memory only (lost on restart).
    pub(super) fn in_memory() -> Journal {
        Journal {
            dir: None,
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// A journal kept in `dir` (created when needed), so it survives a restart.
    pub(super) fn in_dir(dir: PathBuf) -> Journal {
        Journal {
            dir: Some(dir),
            memory: Mutex::new(HashMap::new()),
        }
    }

    fn file(&self, job_id: i64) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("job-{job_id}")))
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<i64, String>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(&self, job_id: i64, order_id: i64, copies: u32) -> Option<String> {
        let on_disk = self.file(job_id).and_then(|f| std::fs::read_to_string(f).ok());
        let line = on_disk.or_else(|| self.memory().get(&job_id).cloned())?;
        let request = journal_request(&line, order_id, copies);
        if request.is_none() {
            tracing::warn!(job_id, entry = %line.trim(), "cups: a journal entry for another job; ignored");
            self.remove(job_id);
        }
        request
    }

    pub(super) fn put(&self, job_id: i64, order_id: i64, copies: u32, request: &str) {
        let line = journal_line(request, order_id, copies);
        self.memory().insert(job_id, line.clone());
        let (Some(dir), Some(file)) = (&self.dir, self.file(job_id)) else {
            return;
        };
        // Written aside and renamed, so a crash never leaves half an id; synced before and after
        // the rename, so a power cut right after `lp` (CUPS keeps the job it spooled) cannot lose
        // the entry and have the next start send the print again.
        let tmp = dir.join(format!(".job-{job_id}.tmp"));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| write_synced(&tmp, &format!("{line}\n")))
            .and_then(|()| std::fs::rename(&tmp, &file))
            .and_then(|()| std::fs::File::open(dir)?.sync_all());
        if let Err(e) = written {
            // Only a restart in the next minutes would miss it; not worth failing a paid print over.
            tracing::warn!(dir = %dir.display(), error = %e, "cups: cannot write the job journal");
        }
    }

    pub(super) fn remove(&self, job_id: i64) {
        self.memory().remove(&job_id);
        if let Some(file) = self.file(job_id) {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %file.display(), error = %e, "cups: cannot remove a journal entry"),
            }
        }
    }

    /// Every CUPS job we are waiting for or left behind.
    pub(super) fn requests(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.memory().values().cloned().collect();
        if let Some(dir) = &self.dir {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with("job-") {
                        lines.extend(std::fs::read_to_string(entry.path()).ok());
                    }
                }
            }
        }
        let mut all: Vec<String> = Vec::new();
        for request in lines.iter().filter_map(|l| l.split_whitespace().next()) {
            if looks_like_request(request) && !all.iter().any(|r| r == request) {
                all.push(request.to_string());
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_survives_in_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal {
            dir: Some(dir.path().join("cups-jobs")),
            memory: Mutex::new(HashMap::new()),
        };
        assert_eq!(journal.get(5, 50, 2), None);
        journal.put(5, 50, 2, "DNP-12");
        journal.put(6, 60, 1, "DNP-13");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cups-jobs/job-5")).unwrap(),
            "DNP-12 order=50 copies=2\n"
        );
        // A new journal on the same folder (a restart) still knows.
        let again = Journal {
            dir: Some(dir.path().join("cups-jobs")),
            memory: Mutex::new(HashMap::new()),
        };
        assert_eq!(again.get(5, 50, 2).as_deref(), Some("DNP-12"));
        let mut all = again.requests();
        all.sort();
        assert_eq!(all, ["DNP-12", "DNP-13"]);
        again.remove(5);
        again.remove(5);
        assert_eq!(again.get(5, 50, 2), None);
        assert!(!dir.path().join("cups-jobs/job-5").exists());
        // An entry for another order (a new database reusing job ids) is dropped, not trusted.
        assert_eq!(again.get(6, 61, 1), None);
        assert!(!dir.path().join("cups-jobs/job-6").exists());
        // So is a damaged one. A bare request id (written by hand) counts.
        std::fs::write(dir.path().join("cups-jobs/job-9"), "garbage\n").unwrap();
        assert_eq!(again.get(9, 90, 1), None);
        std::fs::write(dir.path().join("cups-jobs/job-10"), "DNP-20\n").unwrap();
        assert_eq!(again.get(10, 100, 3).as_deref(), Some("DNP-20"));
    }
}
