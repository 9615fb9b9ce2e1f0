//! What the CUPS tests share: running the CUPS tools, and deciding whether the real scheduler (and
//! our capture backend) is here to test against. `.ci/cups-setup.sh` sets them up.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Our test backend as CUPS runs it (installed from `tests/fixtures/cups/photoboothd-capture`).
pub const CAPTURE_BACKEND: &str = "/usr/lib/cups/backend/photoboothd-capture";
/// Where the queues' captures go; sticky and world-writable, since cupsd writes as `lp`.
pub const CAPTURE_ROOT: &str = "/tmp/photoboothd-cups-capture";

/// A queue name of this test process's own, never used before: the process id, a counter, and the
/// clock, so a queue a killed earlier run left behind with the same process id is not reused.
pub fn queue_name(kind: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "photoboothd-{kind}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a CUPS tool in the C locale.
pub fn tool(tool: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool)
        .args(args)
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
}

/// Runs an admin command that must work; its stdout.
pub fn must(name: &str, args: &[&str]) -> String {
    let out = tool(name, args);
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why the scheduler and the capture backend cannot be tested against, if they cannot.
pub fn scheduler_problem() -> Option<&'static str> {
    let running = String::from_utf8_lossy(&tool("lpstat", &["-r"]).stdout).contains("scheduler is running");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cups/photoboothd-capture");
    if !running {
        Some("the CUPS scheduler is not running (`lpstat -r` does not say \"scheduler is running\")")
    } else if std::fs::read(CAPTURE_BACKEND).ok() != std::fs::read(&fixture).ok() {
        Some("the photoboothd-capture CUPS backend is missing or out of date in /usr/lib/cups/backend")
    } else {
        None
    }
}

/// False, after saying `SKIPPED: <problem>` on stdout (`super::skip`), when there is a problem; in
/// CI (`CI` set) a problem fails the test instead.
pub fn testable(problem: Option<&str>) -> bool {
    let Some(problem) = problem else { return true };
    super::skip(&format!(
        "CUPS test: {problem}; run .ci/cups-setup.sh as root to enable it"
    ));
    false
}
