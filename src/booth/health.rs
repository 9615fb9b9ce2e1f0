//! What the booth knows about its own hardware right now: the printer's last reported state, the
//! media counter, the camera's last error. The print loop and the camera update it; the kiosk API
//! reads it to refuse a paid session the booth cannot finish, and `/api/status` shows it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::RwLock;

use serde::Serialize;

use crate::hw::printer::{PrinterState, PrinterStatus};
use crate::store::media::Media;
use crate::store::OrderKind;

pub struct Health {
    pub printer_backend: &'static str,
    pub camera_backend: &'static str,
    pub gpio_backend: &'static str,
    printer: RwLock<Option<PrinterStatus>>,
    media: RwLock<Option<Media>>,
    camera_error: RwLock<Option<String>>,
    /// The prepaid event that runs, if any (booth::event keeps it current).
    event: RwLock<Option<super::event::EventInfo>>,
    /// Last time the print loop went round, and when the print in progress started (0: none), in
    /// `clock::mono_ms` (a wall-clock jump must not look like a stuck loop); the watchdog stops
    /// pinging systemd when these say the loop is stuck.
    print_loop_at: AtomicI64,
    printing_since: AtomicI64,
    /// The store, to know whether the disk takes writes (set once at start-up).
    store: std::sync::OnceLock<std::sync::Arc<crate::store::Store>>,
    /// The data directory and the free space it must keep (`[storage] min_free_mb`).
    disk: std::sync::OnceLock<(std::path::PathBuf, u64)>,
    /// The file whose existence says the clock is synchronised, when orders wait for it.
    clock_synced_file: std::sync::OnceLock<std::path::PathBuf>,
    /// Set once that file was seen: the clock stays synchronised for the life of the process
    /// (timesyncd's file lasts until reboot), so a synced booth stats nothing per request.
    clock_seen_synced: AtomicBool,
    /// The last free-space reading, `(clock::mono_ms, bytes)`: every webhook Check and status poll
    /// asks for the blockers, and a statvfs each time was a measurable part of a Check
    /// (BENCHMARKS.md, issue 17), while free space on a booth moves over minutes.
    disk_free: std::sync::Mutex<Option<(i64, Option<u64>)>>,
}

/// How long a free-space reading stands.
const DISK_FREE_TTL_MS: i64 = 1_000;

/// A print loop that has not gone round for this long, while not printing, is stuck.
const LOOP_STUCK_MS: i64 = 2 * 60 * 1000;
/// No single print (a dye-sub job of many copies included) takes this long.
const PRINT_STUCK_MS: i64 = 30 * 60 * 1000;

named_enum! {
    /// Why the booth cannot take a paid session: one enum for the kiosk, `/api/status`, the CLI and
    /// metrics. Serialises to the stable snake_case code the UI and alert rules match on. `ALL`
    /// gives metrics one `photoboothd_blocked{reason}` series each, so an alert can tell "not
    /// blocked" from "no data".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum BlockReason {
        /// SQLite cannot write (disk full, read-only card).
        StoreFailed = "store_failed",
        /// The media counter reached 0.
        MediaCounterEmpty = "media_counter_empty",
        /// The printer (or its queue) is stopped.
        PrinterStopped = "printer_stopped",
        /// The printer reports no paper or ribbon.
        PrinterMediaEmpty = "printer_media_empty",
        /// The printer does not answer.
        PrinterOffline = "printer_offline",
        /// The printer reports an `*-error` reason (CUPS's reason in the message).
        PrinterError = "printer_error",
        /// A job is held or stopped in the printer's queue.
        PrinterJobStuck = "printer_job_stuck",
        /// The print scheduler (cupsd) cannot be reached.
        SchedulerUnreachable = "scheduler_unreachable",
        /// Free disk space is below `[storage] min_free_mb`.
        DiskLow = "disk_low",
        /// The system clock is not synchronised yet.
        ClockUnsynced = "clock_unsynced",
        /// The event's prints are used up.
        EventOver = "event_over",
    }
}

impl BlockReason {
    /// Whether paid jobs already queued must wait too (the others only refuse new sessions).
    pub fn stops_printing(self) -> bool {
        !matches!(
            self,
            BlockReason::DiskLow | BlockReason::ClockUnsynced | BlockReason::EventOver
        )
    }

    /// Whether this blocker stops an order of `kind`. Prints need everything; digital copies need
    /// only storage (to keep the photos and the record) and a clock (for the link's expiry).
    pub fn stops(self, kind: OrderKind) -> bool {
        match kind {
            OrderKind::Print => true,
            OrderKind::Digital => match self {
                BlockReason::StoreFailed | BlockReason::DiskLow | BlockReason::ClockUnsynced => true,
                BlockReason::MediaCounterEmpty
                | BlockReason::PrinterStopped
                | BlockReason::PrinterMediaEmpty
                | BlockReason::PrinterOffline
                | BlockReason::PrinterError
                | BlockReason::PrinterJobStuck
                | BlockReason::SchedulerUnreachable
                | BlockReason::EventOver => false,
            },
        }
    }
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a paid session cannot start, for the kiosk and the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub reason: BlockReason,
    /// The reason in words, for the technician (status, logs); the kiosk shows its own text per code.
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct PrinterView {
    pub backend: &'static str,
    /// `None` until the first status check.
    pub state: Option<PrinterState>,
    pub reasons: Vec<String>,
    pub media_left: Option<i64>,
    pub media_capacity: Option<i64>,
    pub media_low: bool,
}

#[derive(Debug, Serialize)]
pub struct CameraView {
    pub backend: &'static str,
    pub ready: bool,
    pub last_error: Option<String>,
}

impl Health {
    pub fn new(printer_backend: &'static str, camera_backend: &'static str, gpio_backend: &'static str) -> Health {
        Health {
            printer_backend,
            camera_backend,
            gpio_backend,
            printer: RwLock::new(None),
            media: RwLock::new(None),
            camera_error: RwLock::new(None),
            event: RwLock::new(None),
            print_loop_at: AtomicI64::new(crate::clock::mono_ms()),
            printing_since: AtomicI64::new(0),
            store: std::sync::OnceLock::new(),
            disk: std::sync::OnceLock::new(),
            clock_synced_file: std::sync::OnceLock::new(),
            clock_seen_synced: AtomicBool::new(false),
            disk_free: std::sync::Mutex::new(None),
        }
    }

    /// Lets `blockers` refuse sessions while `dir`'s file system has less than `min_free_mb` free.
    pub fn watch_disk(&self, dir: std::path::PathBuf, min_free_mb: u64) {
        let _ = self.disk.set((dir, min_free_mb.saturating_mul(1024 * 1024)));
    }

    /// Lets `blockers` refuse orders until `file` exists (systemd-timesyncd's "synchronized").
    pub fn require_synced_clock(&self, file: std::path::PathBuf) {
        let _ = self.clock_synced_file.set(file);
    }

    /// Whether the clock is known to be synchronised (always true when nobody asked to wait).
    pub fn clock_synced(&self) -> bool {
        let Some(file) = self.clock_synced_file.get() else {
            return true;
        };
        if self.clock_seen_synced.load(Ordering::Relaxed) {
            return true;
        }
        let synced = file.exists();
        if synced {
            self.clock_seen_synced.store(true, Ordering::Relaxed);
        }
        synced
    }

    /// Free bytes on `dir`, read again only when the last reading is older than a second.
    fn disk_free(&self, dir: &std::path::Path) -> Option<u64> {
        let now = crate::clock::mono_ms();
        let mut last = self.disk_free.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some((at, free)) if now - at < DISK_FREE_TTL_MS => free,
            _ => {
                let free = free_bytes(dir);
                *last = Some((now, free));
                free
            }
        }
    }

    /// Lets `blocker` see storage faults.
    pub fn watch_store(&self, store: std::sync::Arc<crate::store::Store>) {
        let _ = self.store.set(store);
    }

    pub fn print_loop_beat(&self, now: i64) {
        self.print_loop_at.store(now, Ordering::Relaxed);
    }

    pub fn print_started(&self, now: i64) {
        self.printing_since.store(now, Ordering::Relaxed);
    }

    pub fn print_finished(&self, now: i64) {
        self.printing_since.store(0, Ordering::Relaxed);
        self.print_loop_beat(now);
    }

    /// `Some(why)` when the print loop looks stuck.
    pub fn print_loop_stuck(&self, now: i64) -> Option<String> {
        let since = self.printing_since.load(Ordering::Relaxed);
        if since != 0 {
            return (now - since > PRINT_STUCK_MS).then(|| format!("one print has run for {} s", (now - since) / 1000));
        }
        let at = self.print_loop_at.load(Ordering::Relaxed);
        (now - at > LOOP_STUCK_MS).then(|| format!("the print loop has not run for {} s", (now - at) / 1000))
    }

    pub fn set_printer(&self, status: PrinterStatus) {
        if let Ok(mut p) = self.printer.write() {
            *p = Some(status);
        }
    }

    pub fn set_media(&self, media: Option<Media>) {
        if let Ok(mut m) = self.media.write() {
            *m = media;
        }
    }

    pub fn set_camera_error(&self, error: Option<String>) {
        if let Ok(mut c) = self.camera_error.write() {
            *c = error;
        }
    }

    pub fn set_event(&self, event: Option<super::event::EventInfo>) {
        if let Ok(mut e) = self.event.write() {
            *e = event;
        }
    }

    /// The running prepaid event, if any.
    pub fn event(&self) -> Option<super::event::EventInfo> {
        self.event.read().ok().and_then(|e| e.clone())
    }

    pub fn printer_state(&self) -> Option<PrinterStatus> {
        self.printer.read().ok().and_then(|p| p.clone())
    }

    pub fn media(&self) -> Option<Media> {
        self.media.read().ok().and_then(|m| *m)
    }

    /// `Some` while the booth must not take a paid session: the first of `blockers`, which the
    /// kiosk shows.
    pub fn blocker(&self) -> Option<Blocker> {
        self.blockers().into_iter().next()
    }

    /// What stops an order of `kind` now: a digital-only order needs storage and a clock, not a
    /// printer (see `BlockReason::stops`).
    pub fn blocker_for(&self, kind: OrderKind) -> Option<Blocker> {
        self.blockers().into_iter().find(|b| b.reason.stops(kind))
    }

    /// Every blocker that holds now, most fundamental first.
    pub fn blockers(&self) -> Vec<Blocker> {
        let mut found = Vec::new();
        if let Some(fault) = self.store.get().and_then(|s| s.write_fault()) {
            found.push(Blocker {
                reason: BlockReason::StoreFailed,
                message: format!("the booth cannot save orders ({fault}); free disk space or call staff"),
            });
        }
        found.extend(self.disk_blocker());
        if !self.clock_synced() {
            found.push(Blocker {
                reason: BlockReason::ClockUnsynced,
                message: "the system clock is not synchronised yet (no network time); orders wait until it is (booth.require_synced_clock)".into(),
            });
        }
        if let Some(media) = self.media() {
            if media.remaining <= 0 {
                found.push(Blocker {
                    reason: BlockReason::MediaCounterEmpty,
                    message: "the printer is out of paper (counter at 0); load a new roll and run `photoboothd printer resume --refill`".into(),
                });
            }
        }
        found.extend(self.printer_blocker());
        found.extend(self.event_blocker());
        found
    }

    /// `Some` while the printer must not be sent jobs: the first blocker that stops printing (not
    /// the disk watermark, the clock or an event's used-up cap, whose paid or free orders still
    /// print).
    pub fn print_blocker(&self) -> Option<Blocker> {
        self.blockers().into_iter().find(|b| b.reason.stops_printing())
    }

    /// An event whose prints are used up takes no more sessions; its last orders still print.
    fn event_blocker(&self) -> Option<Blocker> {
        let event = self.event()?;
        event.over().then(|| Blocker {
            reason: BlockReason::EventOver,
            message: format!("the event's {} prints are used up", event.max_prints),
        })
    }

    fn disk_blocker(&self) -> Option<Blocker> {
        let (dir, min_free) = self.disk.get()?;
        // A file system we cannot ask about is not reported as full: the store's write fault
        // covers a disk that really fails.
        let free = self.disk_free(dir)?;
        (free < *min_free).then(|| Blocker {
            reason: BlockReason::DiskLow,
            message: format!(
                "only {} MB free on {} (storage.min_free_mb = {}); delete old files or use a bigger card",
                free / (1024 * 1024),
                dir.display(),
                min_free / (1024 * 1024)
            ),
        })
    }

    fn printer_blocker(&self) -> Option<Blocker> {
        let status = self.printer_state()?;
        let (reason, what) = match status.state {
            PrinterState::Stopped => (BlockReason::PrinterStopped, "the printer queue is stopped"),
            PrinterState::MediaEmpty => (BlockReason::PrinterMediaEmpty, "the printer is out of paper or ribbon"),
            PrinterState::Offline => (BlockReason::PrinterOffline, "the printer is offline"),
            PrinterState::Error => (BlockReason::PrinterError, "the printer reports an error"),
            PrinterState::JobStuck => (
                BlockReason::PrinterJobStuck,
                "a print job is stuck in the printer's queue",
            ),
            PrinterState::SchedulerUnreachable => (
                BlockReason::SchedulerUnreachable,
                "the print scheduler (CUPS) does not answer",
            ),
            PrinterState::Ready | PrinterState::Busy | PrinterState::Unknown => return None,
        };
        let message = if status.reasons.is_empty() {
            what.to_string()
        } else {
            format!("{what} ({})", status.reasons.join(", "))
        };
        Some(Blocker { reason, message })
    }

    pub fn printer_view(&self, warn_below: u32) -> PrinterView {
        let status = self.printer_state();
        let media = self.media();
        PrinterView {
            backend: self.printer_backend,
            state: status.as_ref().map(|s| s.state),
            reasons: status.map(|s| s.reasons).unwrap_or_default(),
            media_left: media.map(|m| m.remaining),
            media_capacity: media.map(|m| m.capacity),
            media_low: media.is_some_and(|m| m.remaining < i64::from(warn_below)),
        }
    }

    pub fn camera_view(&self) -> CameraView {
        let last_error = self.camera_error.read().ok().and_then(|c| c.clone());
        CameraView {
            backend: self.camera_backend,
            ready: last_error.is_none(),
            last_error,
        }
    }
}

/// Bytes an unprivileged process may still write on `dir`'s file system (`statvfs`'s `f_bavail`).
pub fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a properly sized, writable
    // struct that statvfs(3) fills in; nothing else is touched.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return None;
    }
    // The field types differ between 32- and 64-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let free = (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64);
    Some(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_block_reason_once() {
        // `ALL` comes from the declaration itself (named_enum!), so it has every variant; each code
        // must be distinct and be what the reason serialises to for the UI.
        let codes: std::collections::HashSet<&str> = BlockReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), BlockReason::ALL.len());
        for r in BlockReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn the_print_loop_is_stuck_only_past_its_limits() {
        let h = Health::new("file", "sim", "sim");
        h.print_loop_beat(0);
        assert_eq!(h.print_loop_stuck(LOOP_STUCK_MS), None);
        assert!(h.print_loop_stuck(LOOP_STUCK_MS + 1).is_some());
        h.print_started(1_000);
        assert_eq!(h.print_loop_stuck(LOOP_STUCK_MS * 5), None);
        assert!(h.print_loop_stuck(1_000 + PRINT_STUCK_MS + 1).is_some());
        h.print_finished(2_000);
        assert_eq!(h.print_loop_stuck(2_000), None);
    }

    #[test]
    fn blocks_on_printer_faults_and_an_empty_counter_only() {
        let h = Health::new("file", "sim", "sim");
        assert_eq!(h.blocker(), None);
        h.set_printer(PrinterStatus::new(PrinterState::Unknown));
        assert_eq!(h.blocker(), None);
        h.set_printer(PrinterStatus {
            state: PrinterState::MediaEmpty,
            reasons: vec!["media-empty-error".into()],
        });
        let b = h.blocker().unwrap();
        assert_eq!(b.reason, BlockReason::PrinterMediaEmpty);
        assert!(b.message.contains("media-empty-error"));
        h.set_printer(PrinterStatus::new(PrinterState::Ready));
        h.set_media(Some(Media {
            capacity: 10,
            remaining: 0,
            loaded_at: 0,
        }));
        assert_eq!(h.blocker().unwrap().reason, BlockReason::MediaCounterEmpty);
    }

    #[test]
    fn digital_copies_are_stopped_only_by_storage_and_clock() {
        let h = Health::new("file", "sim", "sim");
        h.set_printer(PrinterStatus::new(PrinterState::MediaEmpty));
        assert_eq!(
            h.blocker_for(OrderKind::Print).unwrap().reason,
            BlockReason::PrinterMediaEmpty
        );
        assert_eq!(h.blocker_for(OrderKind::Digital), None);
        for reason in [
            BlockReason::StoreFailed,
            BlockReason::DiskLow,
            BlockReason::ClockUnsynced,
        ] {
            assert!(reason.stops(OrderKind::Digital) && reason.stops(OrderKind::Print));
        }
        assert!(!BlockReason::PrinterOffline.stops(OrderKind::Digital));
    }

    #[test]
    fn cups_faults_have_their_own_blockers_with_cups_reasons() {
        let h = Health::new("cups", "sim", "sim");
        for (state, reason, cups) in [
            (PrinterState::Error, BlockReason::PrinterError, "media-jam-error"),
            (
                PrinterState::JobStuck,
                BlockReason::PrinterJobStuck,
                "job DNP-4: resources-are-not-ready",
            ),
            (
                PrinterState::SchedulerUnreachable,
                BlockReason::SchedulerUnreachable,
                "cups-scheduler-unreachable: lpstat: Bad file descriptor",
            ),
        ] {
            h.set_printer(PrinterStatus {
                state,
                reasons: vec![cups.into()],
            });
            let b = h.blocker().unwrap();
            assert_eq!(b.reason, reason);
            assert!(b.message.contains(cups), "{}", b.message);
        }
    }

    #[test]
    fn disk_low_and_an_unsynced_clock_block_and_every_blocker_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let h = Health::new("file", "sim", "sim");
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        // No file system has this much free: the watermark is crossed.
        h.watch_disk(dir.path().to_path_buf(), u64::MAX / (1024 * 1024));
        let synced = dir.path().join("synchronized");
        h.require_synced_clock(synced.clone());
        h.set_printer(PrinterStatus::new(PrinterState::Offline));
        let reasons: Vec<BlockReason> = h.blockers().iter().map(|b| b.reason).collect();
        assert_eq!(
            reasons,
            [
                BlockReason::DiskLow,
                BlockReason::ClockUnsynced,
                BlockReason::PrinterOffline
            ]
        );
        assert!(h.blockers()[0].message.contains("storage.min_free_mb"));
        assert_eq!(h.blocker().unwrap().reason, BlockReason::DiskLow);
        std::fs::write(&synced, "").unwrap();
        assert!(h.clock_synced());
        assert!(!h.blockers().iter().any(|b| b.reason == BlockReason::ClockUnsynced));
    }

    #[test]
    fn enough_free_space_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let h = Health::new("file", "sim", "sim");
        h.watch_disk(dir.path().to_path_buf(), 0);
        assert_eq!(h.blocker(), None);
    }
}
