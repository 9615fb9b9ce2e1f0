//! Storage faults under the real daemon: a full disk and a read-only database while Payme creates
//! and performs, and a full disk while the print loop writes a print. Payme must get HTTP 200 with
//! -32400 (so it retries), nothing may be half written (a Perform either fully happened, state 2 +
//! paid order + job, or not at all), the kiosk must refuse new orders and sessions, the daemon must
//! keep running, and once the storage is back the same Payme retries must succeed and the paid job
//! print. See `docs/payme.md` (methods, error codes), and ARCHITECTURE.md "Invariants".
//!
//! How the faults are made (root cannot be stopped by file modes):
//! - disk full: a small tmpfs mounted over the data folder (or the print folder), filled with a
//!   filler file until ENOSPC; deleting the filler gives the space back;
//! - read-only database: `chattr +i` on the database and its WAL. On ext4 this makes even writes
//!   through already open descriptors fail (EPERM), which a read-only remount cannot do while the
//!   daemon holds the files open (EBUSY). Each test first proves its mechanism works on this machine.
//!
//! Without root, mount(8) or chattr(1) the tests are skipped with a message; when `CI` is set they
//! fail instead: CI runs as root on the same kind of machine as development, where all of this works.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use photoboothd::daemon::RuntimeInfo;
use serde_json::{json, Value};

const ENOSPC: i32 = 28;
const EPERM: i32 = 1;
/// Small photos, so a session started after recovery stays light. No free-space watermark: these
/// disks are 16 MB and fill on purpose, to test what happens when a write fails anyway (the
/// watermark, `storage.min_free_mb`, is tested in tests/unattended.rs).
const CAMERA: &str = "[camera]\nwidth = 320\nheight = 240\n[storage]\nmin_free_mb = 0\n";

// ---------------------------------------------------------------------------------------------
// Fault mechanisms and their clean-up.
// ---------------------------------------------------------------------------------------------

/// A fault mechanism is not available: skip (with the reason) or, under CI, fail.
fn unavailable(test: &str, mechanism: &str, why: &str) {
    skip(&format!(
        "{test}: {mechanism} is not available here: {why} (needs root with mount(8)/chattr(1); CI runs \
         as root on the same kind of machine)"
    ));
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let dir = dir.to_str().unwrap();
    run(
        "mount",
        &["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs", dir],
    )
}

/// Whether a tmpfs can be mounted here and filled to ENOSPC.
fn tmpfs_works() -> Result<(), String> {
    let probe = tempfile::tempdir().map_err(|e| e.to_string())?;
    mount_tmpfs(probe.path(), "256k")?;
    let filled = Filler::fill(probe.path());
    let full = write_fails(probe.path(), ENOSPC);
    drop(filled);
    run("umount", &[probe.path().to_str().unwrap()])?;
    full
}

/// Writing a new 8 KiB file in `dir` fails with `errno`.
fn write_fails(dir: &Path, errno: i32) -> Result<(), String> {
    let path = dir.join(".probe");
    let result = std::fs::write(&path, [7u8; 8192]);
    let _ = std::fs::remove_file(&path);
    match result {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        other => Err(format!(
            "a write in {} gave {other:?}, not errno {errno}",
            dir.display()
        )),
    }
}

/// Whether `chattr +i` on a file in `dir` makes writes through a descriptor opened before fail,
/// as it must for a database the daemon already holds open (ext4 does this; tmpfs does not).
fn immutable_works(dir: &Path) -> Result<(), String> {
    let path = dir.join(".immutable-probe");
    std::fs::write(&path, b"x").map_err(|e| e.to_string())?;
    let mut f = OpenOptions::new().append(true).open(&path).map_err(|e| e.to_string())?;
    let set = run("chattr", &["+i", path.to_str().unwrap()]);
    let write = f.write_all(b"y").and_then(|()| f.sync_all());
    let _ = run("chattr", &["-i", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    set?;
    match write {
        Err(e) if e.raw_os_error() == Some(EPERM) => Ok(()),
        other => Err(format!(
            "after chattr +i a write through an open file in {} gave {other:?}, not EPERM (this filesystem \
             does not enforce the immutable flag on open files)",
            dir.display()
        )),
    }
}

/// Mounts and immutable flags to undo, whatever happens.
#[derive(Default)]
struct Cleanup {
    mounts: Vec<PathBuf>,
    immutable: Vec<PathBuf>,
}

impl Cleanup {
    fn undo(&mut self) {
        for f in self.immutable.drain(..) {
            let _ = run("chattr", &["-i", f.to_str().unwrap()]);
        }
        for m in self.mounts.drain(..).rev() {
            let _ = run("umount", &["-l", m.to_str().unwrap()]);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.undo();
    }
}

/// A daemon with its fault clean-up: the daemon is killed before mounts go and flags clear, and
/// both before its temporary folder is removed.
struct Rig {
    d: Daemon,
    cleanup: Cleanup,
    pid: u32,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.d.kill();
        self.cleanup.undo();
    }
}

impl Rig {
    /// A daemon (with `env`) whose data folder (`at = ""`) or a folder inside it (`"prints"`) is a
    /// tmpfs.
    async fn on_tmpfs(at: &str, size: &str, env: Vec<(String, String)>) -> Rig {
        let mut cleanup = Cleanup::default();
        let d = Daemon::start_with_config_env(env, |data| {
            let dir = if at.is_empty() {
                data.to_path_buf()
            } else {
                data.join(at)
            };
            mount_tmpfs(&dir, size).unwrap_or_else(|e| panic!("{e}"));
            cleanup.mounts.push(dir);
            config_text_full(data, CAMERA, "")
        })
        .await;
        Rig::new(d, cleanup)
    }

    /// `on_tmpfs` where a tmpfs can be mounted and filled here; otherwise `test` is reported as
    /// skipped and there is no rig.
    async fn on_tmpfs_or_skip(test: &str, at: &str, size: &str, env: Vec<(String, String)>) -> Option<Rig> {
        if let Err(why) = tmpfs_works() {
            unavailable(test, "a tmpfs mount filled to ENOSPC", &why);
            return None;
        }
        Some(Rig::on_tmpfs(at, size, env).await)
    }

    async fn on_disk() -> Rig {
        let d = Daemon::start_with_config(|data| config_text_full(data, CAMERA, "")).await;
        Rig::new(d, Cleanup::default())
    }

    fn new(d: Daemon, cleanup: Cleanup) -> Rig {
        let pid = RuntimeInfo::read(&d.data_dir()).expect("runtime file").pid;
        Rig { d, cleanup, pid }
    }

    /// The daemon that started is still the one running and has not panicked.
    fn assert_still_running(&self, what: &str) {
        let info = RuntimeInfo::read(&self.d.data_dir()).expect("runtime file");
        assert_eq!(info.pid, self.pid, "{what}: the daemon restarted");
        assert!(
            Path::new(&format!("/proc/{}", self.pid)).exists(),
            "{what}: the daemon died:\n{}",
            self.d.log()
        );
        let log = self.d.log();
        assert!(!log.contains("panicked"), "{what}: the daemon panicked:\n{log}");
    }
}

/// A file that takes every free byte of a filesystem; dropping it gives the space back.
struct Filler(PathBuf);

impl Filler {
    fn fill(dir: &Path) -> Filler {
        let path = dir.join("filler.bin");
        let mut f = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let chunk = vec![0x5a_u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", dir.display()),
            }
        }
        Filler(path)
    }

    /// Frees about `bytes` again (whole pages).
    fn shrink(&self, bytes: u64) {
        let f = OpenOptions::new().write(true).open(&self.0).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(bytes)).unwrap();
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One way the store stops taking writes, and how it comes back.
enum Fault {
    /// The filesystem under the database is full.
    DiskFull { dir: PathBuf, filler: Option<Filler> },
    /// The database and its WAL are immutable.
    ReadOnly { files: Vec<PathBuf> },
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::DiskFull { .. } => "disk full",
            Fault::ReadOnly { .. } => "read-only database",
        }
    }

    fn inject(&mut self, cleanup: &mut Cleanup) {
        match self {
            Fault::DiskFull { dir, filler } => {
                *filler = Some(Filler::fill(dir));
                write_fails(dir, ENOSPC).unwrap();
            }
            Fault::ReadOnly { files } => {
                for f in files.iter() {
                    run("chattr", &["+i", f.to_str().unwrap()]).unwrap();
                    cleanup.immutable.push(f.clone());
                }
            }
        }
    }

    fn heal(&mut self, cleanup: &mut Cleanup) {
        match self {
            Fault::DiskFull { filler, .. } => *filler = None,
            Fault::ReadOnly { files } => {
                for f in files.iter() {
                    run("chattr", &["-i", f.to_str().unwrap()]).unwrap();
                }
                cleanup.immutable.retain(|f| !files.contains(f));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What is checked.
// ---------------------------------------------------------------------------------------------

/// Every row of every table, and every file the daemon writes outside the database: equal
/// snapshots mean a failed request wrote nothing.
fn full_snapshot(d: &Daemon) -> Vec<String> {
    let db = d.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let columns = stmt.column_count();
        let mut q = stmt.query([]).unwrap();
        while let Some(row) = q.next().unwrap() {
            let cells: Vec<String> = (0..columns).map(|i| cell(row.get_ref(i).unwrap())).collect();
            rows.push(format!("{table}: {}", cells.join(", ")));
        }
    }
    for sub in ["prints", "sessions"] {
        for entry in walk(&d.data_dir().join(sub)) {
            rows.push(format!("file: {entry}"));
        }
    }
    rows
}

fn cell(v: rusqlite::types::ValueRef<'_>) -> String {
    match v {
        rusqlite::types::ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        other => format!("{other:?}"),
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn prints_of(d: &Daemon, order: &str) -> Vec<String> {
    let prefix = format!("order-{order}-job-");
    d.prints().into_iter().filter(|n| n.starts_with(&prefix)).collect()
}

/// Files in the print folder that are not finished prints (a write cut short).
fn partial_prints(d: &Daemon) -> Vec<String> {
    walk(&d.data_dir().join("prints"))
        .into_iter()
        .filter(|p| !p.ends_with(".png") && !p.ends_with("filler.bin"))
        .collect()
}

fn assert_system_error(v: &Value, what: &str) {
    assert_eq!(error_code(v), -32400, "{what}: {v}");
    assert!(v.get("result").is_none(), "{what}: {v}");
    for lang in ["ru", "uz", "en"] {
        assert!(
            v["error"]["message"][lang].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: {v}"
        );
    }
}

/// The kiosk takes no new order and starts no session while the store cannot write, and says so
/// with a JSON error; nothing is written.
async fn assert_kiosk_refuses(d: &Daemon, what: &str) {
    let before = full_snapshot(d);
    let (status, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert!(
        (500..600).contains(&status),
        "{what}: generate-qr gave HTTP {status}: {v}"
    );
    assert!(
        v["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{what}: generate-qr: {v}"
    );
    let (status, v) = d.kiosk("POST", "/api/session/start", "").await;
    assert!(
        (500..600).contains(&status),
        "{what}: session start gave HTTP {status}: {v}"
    );
    assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{what}: {v}");
    let (status, v) = d.kiosk("GET", "/api/session", "").await;
    assert_eq!((status, &v["stage"]), (200, &json!("idle")), "{what}: {v}");
    assert_eq!(
        full_snapshot(d),
        before,
        "{what}: a refused kiosk request wrote something"
    );
}

// ---------------------------------------------------------------------------------------------
// The store fails under Create and Perform.
// ---------------------------------------------------------------------------------------------

async fn store_fault_scenario(rig: &mut Rig, mut fault: Fault) {
    let what = fault.name();
    let (order, amount) = rig.d.new_order(2).await;
    let acc = account(&order);
    let id = payme_id(order.parse().unwrap());
    let create = json!({ "id": id, "time": now_ms(), "amount": amount, "account": acc });

    // CreateTransaction while the store cannot write: -32400, twice, and nothing written.
    fault.inject(&mut rig.cleanup);
    let d = &rig.d;
    let before = full_snapshot(d);
    for attempt in 1..=2 {
        let v = d.rpc("CreateTransaction", create.clone()).await;
        assert_system_error(&v, &format!("{what}: CreateTransaction attempt {attempt}"));
        assert_eq!(full_snapshot(d), before, "{what}: a failed Create wrote something");
    }
    // Reads still answer.
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(error_code(&v), -31003, "{what}: {v}");
    let v = d
        .rpc("CheckPerformTransaction", json!({ "amount": amount, "account": acc }))
        .await;
    assert!(
        v["result"] == json!({ "allow": true }) || error_code(&v) == -32400,
        "{what}: CheckPerformTransaction: {v}"
    );
    assert_eq!(d.order(&order).await["status"], "awaiting_payment");
    assert_kiosk_refuses(d, what).await;
    rig.assert_still_running(what);

    // The space (or write access) returns: Payme's retry of the same Create succeeds.
    fault.heal(&mut rig.cleanup);
    let d = &rig.d;
    let v = d.rpc("CreateTransaction", create.clone()).await;
    assert_eq!(v["result"]["state"], 1, "{what}: Create after recovery: {v}");
    let created = v["result"].clone();

    // PerformTransaction while the store cannot write: -32400, and not a bit of it happened.
    fault.inject(&mut rig.cleanup);
    let d = &rig.d;
    let before = full_snapshot(d);
    for attempt in 1..=2 {
        let v = d.rpc("PerformTransaction", json!({ "id": id })).await;
        assert_system_error(&v, &format!("{what}: PerformTransaction attempt {attempt}"));
        assert_eq!(full_snapshot(d), before, "{what}: a failed Perform wrote something");
    }
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(
        v["result"],
        json!({ "create_time": created["create_time"], "perform_time": 0, "cancel_time": 0,
                "transaction": created["transaction"], "state": 1, "reason": null }),
        "{what}"
    );
    assert_eq!(
        d.count(&format!("SELECT count(*) FROM print_jobs WHERE order_id = {order}")),
        0
    );
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM orders WHERE id = {order} AND status = 'open' AND paid_at IS NULL"
        )),
        1
    );
    assert_kiosk_refuses(d, what).await;
    rig.assert_still_running(what);

    // Back again: Payme's retry of Perform succeeds, a repeat is identical, and the job prints.
    fault.heal(&mut rig.cleanup);
    let d = &rig.d;
    let performed = d.rpc("PerformTransaction", json!({ "id": id })).await;
    assert_eq!(
        performed["result"]["state"], 2,
        "{what}: Perform after recovery: {performed}"
    );
    assert_eq!(performed["result"]["transaction"], created["transaction"]);
    assert_eq!(d.rpc("PerformTransaction", json!({ "id": id })).await, performed);
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(
        v["result"],
        json!({ "create_time": created["create_time"], "perform_time": performed["result"]["perform_time"],
                "cancel_time": 0, "transaction": created["transaction"], "state": 2, "reason": null }),
        "{what}"
    );
    let printed = d.wait_for_status(&order, "printed").await;
    assert_eq!(printed["paid_at"], performed["result"]["perform_time"]);
    assert_eq!(prints_of(d, &order).len(), 2, "{what}: {:?}", d.prints());
    assert_eq!(
        d.count(&format!("SELECT count(*) FROM print_jobs WHERE order_id = {order}")),
        1
    );

    // The kiosk works again.
    let (status, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(status, 200, "{what}: generate-qr after recovery: {v}");
    let (status, v) = d.kiosk("POST", "/api/session/start", "").await;
    assert_eq!(status, 200, "{what}: session start after recovery: {v}");
    let integrity: String = d.db().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    rig.assert_still_running(what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_under_create_and_perform_gets_32400_writes_nothing_and_recovers() {
    let Some(mut rig) = Rig::on_tmpfs_or_skip("disk full", "", "16m", Vec::new()).await else {
        return;
    };
    let dir = rig.d.data_dir();
    store_fault_scenario(&mut rig, Fault::DiskFull { dir, filler: None }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_under_create_and_perform_gets_32400_writes_nothing_and_recovers() {
    let mut rig = Rig::on_disk().await;
    let data = rig.d.data_dir();
    if let Err(why) = immutable_works(&data) {
        return unavailable("read-only database", "chattr +i", &why);
    }
    let db = data.join(photoboothd::store::DB_FILE);
    let wal = data.join(format!("{}-wal", photoboothd::store::DB_FILE));
    assert!(wal.exists(), "the daemon keeps a WAL while it runs");
    store_fault_scenario(&mut rig, Fault::ReadOnly { files: vec![db, wal] }).await;
}

// ---------------------------------------------------------------------------------------------
// The print folder fills up while the print loop writes.
// ---------------------------------------------------------------------------------------------

/// Waits until the order's paid job has failed `attempts` times and waits in the queue.
async fn wait_for_failed_attempts(d: &Daemon, order: &str, attempts: i64) -> (String, i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row: Option<(String, i64, Option<String>)> = d
            .db()
            .query_row(
                "SELECT status, attempts, last_error FROM print_jobs WHERE order_id = ?1",
                [order],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok();
        if let Some((status, n, Some(error))) = &row {
            if status == "queued" && *n >= attempts {
                return (error.clone(), *n);
            }
        }
        assert!(
            Instant::now() < deadline,
            "order {order}: the job never failed {attempts} time(s): {row:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pay(d: &Daemon, copies: u32) -> String {
    let (order, amount) = d.new_order(copies).await;
    d.pay(&order, amount).await;
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_while_printing_retries_the_job_and_prints_once_space_returns() {
    let Some(rig) = Rig::on_tmpfs_or_skip("full print folder", "prints", "4m", Vec::new()).await else {
        return;
    };
    let d = &rig.d;
    let prints = d.data_dir().join("prints");

    // The print folder is full when the paid job arrives: the payment itself is unaffected, the
    // job fails as a transient fault, waits in the queue and is tried again.
    let filler = Filler::fill(&prints);
    let order = pay(d, 2).await;
    let (error, _) = wait_for_failed_attempts(d, &order, 2).await;
    assert!(error.contains("No space left on device"), "{error}");
    let v = d.order(&order).await;
    // Paid, its job back in the queue with the reason, waiting for its next try.
    assert_eq!(
        (&v["status"], &v["print"]["status"]),
        (&json!("paid"), &json!("queued")),
        "{v}"
    );
    assert!(
        v["print"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{v}"
    );
    assert!(prints_of(d, &order).is_empty(), "{:?}", d.prints());
    rig.assert_still_running("print folder full");

    // Space returns: the next retry prints it, once.
    drop(filler);
    d.wait_for_status(&order, "printed").await;
    let files = prints_of(d, &order);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(partial_prints(d).is_empty(), "{:?}", partial_prints(d));
    let size = std::fs::metadata(prints.join(&files[0])).unwrap().len();

    // The folder fills up half way through a job: the first copy is written, the second is not.
    // The retry after space returns leaves exactly one file per copy.
    let filler = Filler::fill(&prints);
    filler.shrink(size + size / 2);
    let order = pay(d, 3).await;
    let (error, _) = wait_for_failed_attempts(d, &order, 1).await;
    assert!(error.contains("No space left on device"), "{error}");
    let partial = prints_of(d, &order);
    assert_eq!(partial.len(), 1, "one copy fits in the space left: {partial:?}");
    drop(filler);
    d.wait_for_status(&order, "printed").await;
    let files = prints_of(d, &order);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(partial_prints(d).is_empty(), "{:?}", partial_prints(d));
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 2);
    rig.assert_still_running("print folder full");
}

/// The disk under both the database and the print folder (the default layout) fills up while the
/// print loop is writing a job: `copies` = 2 makes the second copy fail with ENOSPC (a transient
/// fault whose retry must be recorded), `copies` = 1 lets the print finish (its success must be
/// recorded). Neither record fits on the full disk, which stays full for `full_for`; once space
/// returns the job must still end printed, without a restart, with exactly one file per copy.
async fn disk_fills_mid_print(copies: u32, full_for: Duration, env: Vec<(String, String)>) {
    let what = format!("disk full mid-print, {copies} copies");
    let watchdog = !env.is_empty();
    let Some(rig) = Rig::on_tmpfs_or_skip(&what, "", "16m", env).await else {
        return;
    };
    let d = &rig.d;
    let (order, id) = d.created_order(copies).await;

    // The job's first copy will be written into a pipe: the print loop waits there mid-job.
    let (job, pipe) = d.pipe_next_print(&order);
    let v = d.rpc("PerformTransaction", json!({ "id": id })).await;
    assert_eq!(v["result"]["state"], 2, "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.count(&format!(
        "SELECT count(*) FROM print_jobs WHERE id = {job} AND status = 'printing'"
    )) == 0
    {
        assert!(
            Instant::now() < deadline,
            "{what}: the job was never claimed\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The disk fills while the job is printing; then the first copy goes through.
    let filler = Filler::fill(&d.data_dir());
    let first = tokio::task::spawn_blocking(move || std::fs::read(&pipe))
        .await
        .unwrap()
        .unwrap();
    assert!(first.starts_with(b"\x89PNG"), "{what}: copy 1 is not a PNG");
    // The rest of the job and the attempt to record its outcome happen on the full disk.
    tokio::time::sleep(full_for).await;
    let v = d.order(&order).await;
    assert_ne!(
        v["status"], "printed",
        "{what}: recorded as printed on a full disk: {v}"
    );
    rig.assert_still_running(&what);
    let log = d.log();
    assert!(!watchdog || log.contains("systemd watchdog enabled"), "{what}:\n{log}");
    // Under systemd a watchdog that stops being pinged is a restart, which forgets how the print
    // ended: the print loop waiting for the disk is not stuck.
    assert!(!log.contains("not pinging the systemd watchdog"), "{what}:\n{log}");
    // Journald writes to the same card: the first failure, then about a line a minute.
    let lines = log.matches("cannot record the print result").count() as u64;
    assert!(lines <= 2 + full_for.as_secs() / 60, "{what}: {lines} lines:\n{log}");

    drop(filler);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = d.order(&order).await;
        if v["status"] == "printed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: 30 s after space returned the paid job is still not printed: {v}\njobs: {:?}\n{}",
            full_snapshot(d)
                .into_iter()
                .filter(|r| r.starts_with("print_jobs"))
                .collect::<Vec<_>>(),
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(prints_of(d, &order).len(), copies as usize, "{what}: {:?}", d.prints());
    assert!(partial_prints(d).is_empty(), "{what}: {:?}", partial_prints(d));
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 1);
    rig.assert_still_running(&what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fills_mid_print_and_the_failed_copy_cannot_be_recorded_the_job_still_prints() {
    disk_fills_mid_print(2, Duration::from_millis(1500), Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fills_mid_print_and_the_finished_print_cannot_be_recorded_the_order_still_ends_printed() {
    disk_fills_mid_print(1, Duration::from_millis(1500), Vec::new()).await;
}

/// The disk stays full for longer than the watchdog gives a print loop that does not go round
/// (2 minutes) after the print went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_for_minutes_after_a_print_keeps_the_watchdog_pinged_and_prints_once() {
    let watchdog = vec![("WATCHDOG_USEC".to_string(), "2000000".to_string())];
    disk_fills_mid_print(1, Duration::from_secs(135), watchdog).await;
}

/// The disk is already full when the daemon starts (after a crash, an upgrade, a power cut): it
/// must start out of service, as it is when the disk fills while it runs, rather than exit and be
/// started again by systemd every 5 s while the kiosk shows the browser's error page. The job the
/// power cut caught mid-print cannot be requeued on the full disk: it is once space returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_on_a_full_disk_runs_out_of_service() {
    let what = "start on a full disk";
    let Some(mut rig) = Rig::on_tmpfs_or_skip(what, "", "16m", Vec::new()).await else {
        return;
    };
    let (order, id) = rig.d.created_order(1).await;
    let (job, pipe) = rig.d.pipe_next_print(&order);
    rig.d.perform_tx(&id).await;
    let printing = format!("SELECT count(*) FROM print_jobs WHERE id = {job} AND status = 'printing'");
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.d.count(&printing) == 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: the job was never claimed\n{}",
            rig.d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.d.kill();
    std::fs::remove_file(&pipe).unwrap();
    // The free-space watermark on (1 MB of this 16 MB disk), as in the default config.
    let config = std::fs::read_to_string(rig.d.config_path()).unwrap();
    std::fs::write(
        rig.d.config_path(),
        config.replace("min_free_mb = 0", "min_free_mb = 1"),
    )
    .unwrap();
    let data = rig.d.data_dir();
    let filler = Filler::fill(&data);
    write_fails(&data, ENOSPC).unwrap();
    let log = rig.d.dir.path().join("full-start.log");
    let mut process = Process::spawn(&binary(), &rig.d.config_path(), &data, &log, Some("info"), &[]);
    // The runtime file may not fit: where the kiosk listens is read from the log.
    let deadline = Instant::now() + Duration::from_secs(20);
    let kiosk: std::net::SocketAddr = loop {
        let text = process.log_text();
        let ready = text.lines().find(|l| l.contains("photoboothd ready"));
        if let Some(addr) = ready.and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("kiosk="))) {
            break addr.parse().unwrap();
        }
        // Panics with the log if the daemon exited.
        assert!(
            process.poll_ready().is_none(),
            "{what}: a runtime file fitted on the full disk"
        );
        assert!(Instant::now() < deadline, "{what}: the daemon did not start:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, v) = kiosk_request(kiosk, "GET", "/api/status", "").await.unwrap();
    assert_eq!((status, &v["accepting_orders"]), (200, &json!(false)), "{what}: {v}");
    // Space returns: the same process is back in service.
    drop(filler);
    let status = || async { kiosk_request(kiosk, "GET", "/api/status", "").await.unwrap().1 };
    poll(
        Duration::from_secs(30),
        Duration::from_millis(50),
        status,
        |v| v["accepting_orders"] == true,
        |v| format!("{what}: never back in service: {v}\n{}", process.log_text()),
    )
    .await;
    let order_status = || async {
        kiosk_request(kiosk, "GET", &format!("/api/orders/{order}"), "")
            .await
            .unwrap()
            .1
    };
    poll(
        Duration::from_secs(30),
        Duration::from_millis(50),
        order_status,
        |v| v["status"] == "printed",
        |v| format!("{what}: the interrupted job never printed: {v}\n{}", process.log_text()),
    )
    .await;
    assert_eq!(prints_of(&rig.d, &order).len(), 1, "{:?}", rig.d.prints());
    assert!(process.poll_ready().is_none());
}

// ---------------------------------------------------------------------------------------------
// What the kiosk shows while the store cannot write.
// ---------------------------------------------------------------------------------------------

async fn accepting(d: &Daemon) -> (bool, Value, bool) {
    let (status, v) = d.kiosk("GET", "/api/status", "").await;
    assert_eq!(status, 200, "{v}");
    let (status, session) = d.kiosk("GET", "/api/session", "").await;
    assert_eq!(status, 200, "{session}");
    (v["accepting_orders"] == true, v, session["accepting_orders"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_shows_out_of_service_while_the_store_cannot_write() {
    let Some(rig) = Rig::on_tmpfs_or_skip("disk full", "", "16m", Vec::new()).await else {
        return;
    };
    let d = &rig.d;
    let (ok, v, _) = accepting(d).await;
    assert!(ok, "{v}");

    let (order, _) = d.new_order(1).await;
    let filler = Filler::fill(&d.data_dir());
    // Writes fail: the kiosk's own order and Payme's Create.
    let (status, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert!(status >= 500, "{v}");
    let v = d.create_at(&payme_id(9), now_ms(), PRICE_TIYIN, &order).await;
    assert_system_error(&v, "Create on a full disk");

    // The kiosk page must show out of service (as it does for a stopped printer) rather than
    // invite a customer into a session that cannot be paid.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status_ok, status, session_ok) = accepting(d).await;
        if !status_ok && !session_ok && !status["blocker"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kiosk still shows the booth in service while the store cannot write: /api/status {status}, \
             /api/session accepting_orders={session_ok}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And back in service once writes work again.
    drop(filler);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status_ok, status, session_ok) = accepting(d).await;
        if status_ok && session_ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kiosk never came back in service: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(status, 200, "{v}");
    rig.assert_still_running("kiosk status");
}
