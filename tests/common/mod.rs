//! Test harness: runs the real `photoboothd` binary on ephemeral ports with a real SQLite file in
//! a temporary directory, and talks to it over real HTTP.
#![allow(dead_code)]

pub mod cups;
pub mod fake_escpos;
pub mod jpeg;
pub mod live;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use photoboothd::client;
use photoboothd::daemon::RuntimeInfo;
use photoboothd::payme::auth::basic_header;
use serde_json::{json, Value};

/// A key with the characters real Payme keys carry, including a `:` (split on the first only).
pub const KEY: &str = "Test:KEY%&?@#!aBcDeFgHiJkLmNoPqRsT";
/// How long a daemon may take to start, and to stop after SIGTERM, before a test or bench gives up.
pub const START_LIMIT: Duration = Duration::from_secs(20);
pub const STOP_LIMIT: Duration = Duration::from_secs(30);
/// 20 000 sum per copy, in tiyin.
pub const PRICE_TIYIN: i64 = 2_000_000;

/// A kiosk or service menu reply, `(status, body)`, that must be a refusal: `status`, and in the
/// body `reason`, the code the page shows its message for. Panics with the whole reply otherwise.
pub trait Refusal {
    fn refused(&self, status: u16, reason: &str);
}

impl Refusal for (u16, Value) {
    #[track_caller]
    fn refused(&self, status: u16, reason: &str) {
        let (got, v) = self;
        assert_eq!((*got, v["reason"].as_str()), (status, Some(reason)), "{v}");
    }
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    process: Option<Process>,
    pub kiosk: SocketAddr,
    pub webhook: SocketAddr,
    /// TOML inside `[payme]` (may open further tables such as `[camera]`); used at each (re)start.
    pub extra: String,
    /// TOML appended to the `[printer]` table.
    pub printer_extra: String,
    /// Extra environment for the daemon process.
    pub env: Vec<(String, String)>,
}

/// The configuration tests and benches start from: the test key, ephemeral ports, the file
/// printer. Every key it does not set has its built-in value (`assets/photobooth.toml`). Each
/// `String` is TOML placed at the end of its table; `tail` may open further tables.
pub struct TestConfig {
    pub name: String,
    pub data_dir: PathBuf,
    pub kiosk_listen: String,
    pub webhook_listen: String,
    pub booth: String,
    pub payme: String,
    pub printer: String,
    pub tail: String,
}

impl TestConfig {
    pub fn new(data_dir: &Path) -> TestConfig {
        TestConfig {
            name: "Test Booth".into(),
            data_dir: data_dir.to_path_buf(),
            kiosk_listen: "127.0.0.1:0".into(),
            webhook_listen: "127.0.0.1:0".into(),
            booth: String::new(),
            payme: String::new(),
            printer: String::new(),
            tail: String::new(),
        }
    }

    pub fn text(&self) -> String {
        format!(
            r#"
[booth]
name = "{name}"
price_per_copy = 20000
data_dir = "{data}"
{booth}
[http]
kiosk_listen = "{kiosk}"
webhook_listen = "{webhook}"

[dev]
enabled = true

[payme]
merchant_id = "587f72c72cac0d162c722ae2"
key = "{KEY}"
{payme}
[printer]
backend = "file"
{printer}
{tail}"#,
            name = self.name,
            data = self.data_dir.display(),
            booth = self.booth,
            kiosk = self.kiosk_listen,
            webhook = self.webhook_listen,
            payme = self.payme,
            printer = self.printer,
            tail = self.tail,
        )
    }
}

pub fn config_text(data_dir: &Path, extra: &str) -> String {
    config_text_full(data_dir, extra, "")
}

/// `extra` inside `[payme]` (it may open further tables), `printer_extra` inside `[printer]`.
pub fn config_text_full(data_dir: &Path, extra: &str, printer_extra: &str) -> String {
    TestConfig {
        payme: extra.to_string(),
        printer: printer_extra.to_string(),
        ..TestConfig::new(data_dir)
    }
    .text()
}

/// The daemon binary: `PHOTOBOOTHD_BIN` (benches run a release build that way) or Cargo's.
pub fn binary() -> PathBuf {
    std::env::var_os("PHOTOBOOTHD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_photoboothd")))
}

/// One `photoboothd run` child process on a written configuration, its stderr appended to `log`.
/// Dropping it kills the process.
pub struct Process {
    child: Option<Child>,
    data_dir: PathBuf,
    log: PathBuf,
}

impl Process {
    /// `rust_log`: `RUST_LOG` for the daemon (`None`: its default).
    pub fn spawn(
        bin: &Path,
        config: &Path,
        data_dir: &Path,
        log: &Path,
        rust_log: Option<&str>,
        env: &[(String, String)],
    ) -> Process {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the daemon log");
        let mut command = Command::new(bin);
        command
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .env_remove("PAYME_KEY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("STATE_DIRECTORY")
            // Not "under systemd" unless a test says so (booth.require_synced_clock's default).
            .env_remove("INVOCATION_ID")
            .env_remove("NOTIFY_SOCKET")
            .envs(rust_log.map(|l| ("RUST_LOG", l)))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} (run `cargo build --release` first)", bin.display()));
        Process {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The runtime file this process wrote once ready; panics if it exited instead.
    pub fn poll_ready(&mut self) -> Option<RuntimeInfo> {
        let pid = self.pid();
        if let Some(info) = RuntimeInfo::read(&self.data_dir).filter(|i| i.pid == pid) {
            return Some(info);
        }
        if let Ok(Some(status)) = self.child.as_mut().expect("running").try_wait() {
            panic!("photoboothd exited with {status} at start:\n{}", self.log_text());
        }
        None
    }

    /// Waits (sleeping the thread) until ready, at most `limit`.
    pub fn wait_ready_blocking(&mut self, limit: Duration) -> RuntimeInfo {
        let deadline = Instant::now() + limit;
        loop {
            match self.poll_ready() {
                Some(info) => return info,
                None if Instant::now() >= deadline => panic!("photoboothd not ready:\n{}", self.log_text()),
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Waits (on the runtime) until ready, at most `limit`.
    pub async fn wait_ready(&mut self, limit: Duration) -> RuntimeInfo {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(info) = self.poll_ready() {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("photoboothd did not become ready:\n{}", self.log_text());
    }

    /// SIGKILL: no shutdown code runs, like a power cut for the process.
    /// SIGKILL: no shutdown code runs, like a power cut for the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: the graceful path systemd takes.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) with a valid pid and signal has no memory effects.
        unsafe { libc_kill(child.id() as i32, 15) };
        child.wait().expect("wait for photoboothd")
    }

    /// SIGTERM, then wait for the exit (SIGKILL after `limit`); returns how long the stop took.
    pub fn stop(&mut self, limit: Duration) -> Duration {
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let started = Instant::now();
        // SAFETY: kill(2) with a valid pid and signal has no memory effects.
        unsafe { libc_kill(child.id() as i32, 15) };
        while started.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("photoboothd did not stop within {limit:?} of SIGTERM; killing it");
        let _ = child.kill();
        let _ = child.wait();
        started.elapsed()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bench's knob: `--flag N` on the command line (`cargo bench --bench x -- --flag N`), else the
/// environment variable `var`, else `default`. Unknown arguments (`--bench`) are ignored.
pub fn knob(flag: &str, var: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let from_args = args
        .windows(2)
        .filter(|pair| pair[0] == flag)
        .find_map(|pair| pair[1].parse().ok());
    from_args
        .or_else(|| std::env::var(var).ok()?.parse().ok())
        .unwrap_or(default)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values (NaN for none).
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A random 24-hex Payme transaction id.
pub fn random_payme_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One JSON-RPC call to `/payme` with the `Authorization` value `auth`: the parsed reply of an
/// HTTP 200 (a result or an error), or what went wrong.
pub async fn payme_call(webhook: SocketAddr, auth: &str, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({ "method": method, "params": params, "id": 1 }).to_string();
    let reply = client::request(
        webhook,
        "POST",
        "/payme",
        &[("authorization", auth), ("content-type", "text/json; charset=UTF-8")],
        body,
    )
    .await
    .map_err(|e| format!("{method}: {e}"))?;
    if reply.status != 200 {
        return Err(format!("{method}: HTTP {}", reply.status));
    }
    reply.json().map_err(|e| format!("{method}: reply is not JSON: {e}"))
}

/// A JSON request to the kiosk API: the status and the JSON reply (`null` if it is not JSON).
pub async fn kiosk_request(kiosk: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, Value), String> {
    let r = client::request(
        kiosk,
        method,
        path,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
    .map_err(|e| format!("{method} {path}: {e}"))?;
    Ok((r.status, r.json().unwrap_or(Value::Null)))
}

/// The daemon binary a bench runs (it must exist).
pub fn bench_binary() -> PathBuf {
    let bin = binary();
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build --release` first",
        bin.display()
    );
    println!("photoboothd binary: {}", bin.display());
    bin
}

/// Runs a bench's `future` (which may spawn `!Send` tasks) on a current-thread runtime; it returns
/// how many `failures` there were, and any make the process exit with status 1.
pub fn run_local(future: impl std::future::Future<Output = u64>, failures: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let errors = tokio::task::LocalSet::new().block_on(&runtime, future);
    if errors > 0 {
        println!("FAILED: {errors} {failures}");
        std::process::exit(1);
    }
}

/// How many orders and print jobs a database file holds in each status, and how many Payme
/// transactions: one line for a bench's report.
pub fn store_report(db: &Path) -> String {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return format!("cannot open {}", db.display());
    };
    let by_status = |table: &str| -> String {
        let sql = format!("SELECT status, count(*) FROM {table} GROUP BY status ORDER BY status");
        let rows = conn.prepare(&sql).and_then(|mut stmt| {
            stmt.query_map([], |r| {
                Ok(format!("{} {}", r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        });
        rows.map_or_else(|e| e.to_string(), |rows| rows.join(", "))
    };
    let transactions: i64 = conn
        .query_row("SELECT count(*) FROM payme_transactions", [], |r| r.get(0))
        .unwrap_or(-1);
    format!(
        "orders: {}; print jobs: {}; {transactions} Payme transactions",
        by_status("orders"),
        by_status("print_jobs")
    )
}

/// The machine's CPU time by column of the first line of `/proc/stat` (user, nice, system, idle,
/// iowait, irq, softirq, steal, ...), in clock ticks; empty without /proc.
pub fn machine_cpu_ticks() -> Vec<u64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect()
}

/// A `kB` or count field of `/proc/<pid>/status`, e.g. `VmRSS:` or `Threads:`.
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Daemon {
    pub async fn start() -> Daemon {
        Daemon::start_with("").await
    }

    /// `extra` is TOML placed inside the `[payme]` table (e.g. a `[payme.fiscal]` section).
    pub async fn start_with(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon::new(dir);
        d.extra = extra.to_string();
        d.spawn().await;
        d
    }

    fn new(dir: tempfile::TempDir) -> Daemon {
        Daemon {
            dir,
            process: None,
            kiosk: "127.0.0.1:1".parse().unwrap(),
            webhook: "127.0.0.1:1".parse().unwrap(),
            extra: String::new(),
            printer_extra: String::new(),
            env: Vec::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("photobooth.toml")
    }

    /// Writes the default configuration and starts the daemon on it.
    async fn spawn(&mut self) {
        std::fs::write(
            self.config_path(),
            config_text_full(&self.data_dir(), &self.extra, &self.printer_extra),
        )
        .unwrap();
        self.spawn_on_written_config().await;
    }

    async fn spawn_on_written_config(&mut self) {
        let mut process = Process::spawn(
            &binary(),
            &self.config_path(),
            &self.data_dir(),
            &self.dir.path().join("daemon.log"),
            Some("info"),
            &self.env,
        );
        let info = process.wait_ready(START_LIMIT).await;
        self.kiosk = info.kiosk;
        self.webhook = info.webhook;
        self.process = Some(process);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, like a power cut for the process.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// SIGTERM and wait: the graceful path systemd takes.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.process.take().expect("running").terminate()
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// A raw POST to /payme with the given headers; returns the HTTP status and the parsed body.
    pub async fn post_payme(&self, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> (u16, Value) {
        let r = client::request(self.webhook, "POST", "/payme", headers, body.into())
            .await
            .expect("webhook reachable");
        let v = r
            .json()
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", r.body));
        (r.status, v)
    }

    /// One JSON-RPC call with the right key; asserts HTTP 200 and the echoed id.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.rpc_with_key(KEY, method, params).await
    }

    pub async fn rpc_with_key(&self, key: &str, method: &str, params: Value) -> Value {
        let id = 4242;
        let body = json!({ "method": method, "params": params, "id": id }).to_string();
        let auth = basic_header(key);
        let (status, v) = self
            .post_payme(
                &[("authorization", &auth), ("content-type", "text/json; charset=UTF-8")],
                body,
            )
            .await;
        assert_eq!(status, 200, "{method}: {v}");
        assert_eq!(v["id"], id, "{method}: {v}");
        v
    }

    pub async fn kiosk(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        kiosk_request(self.kiosk, method, path, body)
            .await
            .expect("kiosk reachable")
    }

    /// Out of service: the kiosk refuses both a new session and an order with `status` and `reason`.
    pub async fn sells_nothing(&self, status: u16, reason: &str) {
        self.kiosk("POST", "/api/session/start", "")
            .await
            .refused(status, reason);
        self.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#)
            .await
            .refused(status, reason);
    }

    /// A new order of `copies`; returns its id and amount in tiyin.
    pub async fn new_order(&self, copies: u32) -> (String, i64) {
        let (status, v) = self
            .kiosk("POST", "/api/generate-qr", &json!({ "copies": copies }).to_string())
            .await;
        assert_eq!(status, 200, "{v}");
        (
            v["order_id"].as_i64().unwrap().to_string(),
            v["amount_tiyin"].as_i64().unwrap(),
        )
    }

    pub async fn order(&self, id: &str) -> Value {
        let (status, v) = self.kiosk("GET", &format!("/api/orders/{id}"), "").await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Polls the kiosk API until the order has `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        self.wait_for(
            &format!("order {id} to reach {status}"),
            || self.order(id),
            |v| v["status"] == status,
        )
        .await
    }

    /// A read-only connection to the daemon's database, for counting what was written.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir().join(photoboothd::store::DB_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Every row of every table, to show that a rejected request wrote nothing.
    pub fn snapshot(&self) -> Vec<String> {
        let db = self.db();
        let mut rows = Vec::new();
        for table in [
            "orders",
            "payme_transactions",
            "print_jobs",
            "fiscal_receipts",
            "settings",
        ] {
            let mut stmt = db.prepare(&format!("SELECT * FROM {table} ORDER BY rowid")).unwrap();
            let columns = stmt.column_count();
            let mut q = stmt.query([]).unwrap();
            while let Some(row) = q.next().unwrap() {
                let cells: Vec<String> = (0..columns).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
                rows.push(format!("{table}: {}", cells.join(", ")));
            }
        }
        rows
    }

    pub fn prints(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data_dir().join("prints"))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".png"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Makes the next print job's first copy of `order` go into a pipe ([`mkfifo`]): the print loop
    /// waits there, mid-job, until the test reads it. Returns the job's id and the pipe.
    pub fn pipe_next_print(&self, order: &str) -> (i64, PathBuf) {
        let job = self.count("SELECT coalesce(max(id), 0) + 1 FROM print_jobs");
        let prints = self.data_dir().join("prints");
        std::fs::create_dir_all(&prints).unwrap();
        let pipe = prints.join(format!(".order-{order}-job-{job}-copy-1.png.tmp"));
        mkfifo(&pipe);
        (job, pipe)
    }

    /// The first page the file printer wrote, after checking it wrote `count` pages in all.
    pub fn first_print(&self, count: usize) -> image::DynamicImage {
        let prints = self.prints();
        assert_eq!(prints.len(), count, "{prints:?}");
        image::open(self.data_dir().join("prints").join(&prints[0])).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// `mkfifo(3)`: a named pipe the file printer opens as its temporary file and then blocks on until
/// the test reads it, which holds the print loop in the middle of a job for as long as needed.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other memory effects.
    let rc = unsafe { mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), std::io::Error::last_os_error());
}

/// A test that cannot run on this machine (no cupsd, no Chromium, not root...): prints
/// `SKIPPED: <why>` straight to stdout, past the test harness's capture, so a `cargo test` that
/// skipped something does not read as a full pass. With `CI` set it fails instead: CI installs
/// everything the tests need.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why} (CI is set, so this is a failure, not a skip)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "SKIPPED: {why}");
}

/// Asserts that `text` (`what`: the command output, log or page it is) holds every needle.
pub fn assert_contains_all(what: &str, text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{what} lacks {needle:?}:\n{text}");
    }
}

pub fn now_ms() -> i64 {
    photoboothd::clock::now_ms()
}

/// A fresh 24-hex Payme id.
pub fn payme_id(n: u64) -> String {
    format!("{:024x}", n ^ 0x5305_e3ba_b097_f420_u64 ^ (now_ms() as u64) << 20)
}

pub fn account(order: &str) -> Value {
    json!({ "order_id": order })
}

/// The `result` of a JSON-RPC reply; fails the test on an `error` reply.
pub fn result(v: &Value) -> &Value {
    assert!(v.get("error").is_none(), "expected a result, got {v}");
    &v["result"]
}

/// The fields of a CheckTransaction result, which a GetStatement item must repeat exactly.
pub const CHECK_FIELDS: [&str; 6] = [
    "create_time",
    "perform_time",
    "cancel_time",
    "transaction",
    "state",
    "reason",
];

pub fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error, got {v}"))
}

impl Daemon {
    /// A daemon on a whole configuration file of the test's own: `full_toml` gets the data folder
    /// (`<temp dir>/data`, which `data_dir()`, `prints()` and `db()` read) and returns the file's
    /// text; it may create files next to it (under the data folder's parent). Restart such a daemon
    /// with `restart_same_config()`: `restart()` rewrites the default configuration.
    pub async fn start_with_config(full_toml: impl FnOnce(&Path) -> String) -> Daemon {
        Daemon::start_with_config_env(Vec::new(), full_toml).await
    }

    /// As `start_with_config`, with extra environment for the daemon process (kept on restarts).
    pub async fn start_with_config_env(env: Vec<(String, String)>, full_toml: impl FnOnce(&Path) -> String) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon::new(dir);
        d.env = env;
        let text = full_toml(&d.data_dir());
        std::fs::write(d.config_path(), text).unwrap();
        d.spawn_on_written_config().await;
        d
    }

    /// Kills the daemon and starts it again on the configuration file as it is.
    pub async fn restart_same_config(&mut self) {
        self.kill();
        self.spawn_on_written_config().await;
    }
}

impl Daemon {
    /// The running daemon's process id, e.g. for `/proc/<pid>/status` (tests/hostile_clients.rs).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("running").pid()
    }
}

/// A whole paid session, for tests that need one (tests/fleet.rs).
impl Daemon {
    /// A whole session: photos, accept, `copies`, payment, printed, back to idle. Needs a fast
    /// camera (`countdown_s = 0`). Returns the order's id, its amount in tiyin and Payme's id.
    pub async fn paid_session(&self, copies: u32) -> (String, i64, String) {
        self.to_copies_screen().await;
        let (order, amount) = self.new_order(copies).await;
        let payme_id = self.pay(&order, amount).await;
        self.wait_stage("done").await;
        // Leave the done screen now (it may already have timed out by itself).
        let _ = self.kiosk("POST", "/api/session/dismiss", "").await;
        self.wait_stage("idle").await;
        (order, amount, payme_id)
    }
}

/// Kiosk session helpers: drive the touch screen's API and pay like Payme would.
impl Daemon {
    pub async fn session_view(&self) -> Value {
        let (status, v) = self.kiosk("GET", "/api/session", "").await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Polls `probe` until `done` accepts its value (every 25 ms, for at most 30 s); fails the test
    /// with the last value and the daemon's log if it never does.
    pub async fn wait_for<Fut>(&self, what: &str, probe: impl FnMut() -> Fut, done: impl Fn(&Value) -> bool) -> Value
    where
        Fut: std::future::Future<Output = Value>,
    {
        poll(Duration::from_secs(30), Duration::from_millis(25), probe, done, |v| {
            format!("never saw {what}: {v}\n{}", self.log())
        })
        .await
    }

    /// Polls `/api/session` until the session reaches `stage`.
    pub async fn wait_stage(&self, stage: &str) -> Value {
        self.wait_for(
            &format!("the session to reach {stage}"),
            || self.session_view(),
            |v| v["stage"] == stage,
        )
        .await
    }

    /// `POST /api/session/{action}`.
    pub async fn session_act(&self, action: &str) -> (u16, Value) {
        self.kiosk("POST", &format!("/api/session/{action}"), "").await
    }

    /// A session from the attract screen to the copies screen (photos taken, accepted); returns
    /// its view there. Needs a fast camera (`countdown_s = 0`).
    pub async fn to_copies_screen(&self) -> Value {
        let (status, v) = self.session_act("start").await;
        assert_eq!(status, 200, "{v}");
        self.wait_stage("review").await;
        let (status, v) = self.session_act("accept").await;
        assert_eq!(status, 200, "{v}");
        self.wait_stage("choose_copies").await
    }

    /// Create and Perform for the whole amount, as Payme does after the customer paid.
    pub async fn pay(&self, order_id: &str, amount: i64) -> String {
        let id = payme_id(order_id.parse().unwrap_or(0));
        self.create_tx(&id, order_id, amount).await;
        self.perform_tx(&id).await;
        id
    }

    /// A new order of `copies` that Payme has created its transaction for, not yet performed:
    /// returns the order id and the Payme id.
    pub async fn created_order(&self, copies: u32) -> (String, String) {
        let (order, amount) = self.new_order(copies).await;
        let id = payme_id(order.parse().unwrap_or(0));
        self.create_tx(&id, &order, amount).await;
        (order, id)
    }

    /// CreateTransaction `id` for the order's whole amount; asserts it was created (state 1).
    pub async fn create_tx(&self, id: &str, order_id: &str, amount: i64) {
        let create = self.create_at(id, now_ms(), amount, order_id).await;
        assert_eq!(create["result"]["state"], 1, "{create}");
    }

    /// CreateTransaction as Payme sends it: transaction `id` made at `time` (ms), `amount` in
    /// tiyin, for `order_id`. Returns the reply as it is.
    pub async fn create_at(&self, id: &str, time: i64, amount: i64, order_id: &str) -> Value {
        self.rpc(
            "CreateTransaction",
            json!({ "id": id, "time": time, "amount": amount, "account": account(order_id) }),
        )
        .await
    }

    /// PerformTransaction `id`; asserts it was performed (state 2).
    pub async fn perform_tx(&self, id: &str) {
        let perform = self.rpc("PerformTransaction", json!({ "id": id })).await;
        assert_eq!(perform["result"]["state"], 2, "{perform}");
    }

    /// A GET on the webhook listener (the public side: /payme and /d/).
    pub async fn public_get(&self, path: &str, headers: &[(&str, &str)]) -> client::Response {
        client::request(self.webhook, "GET", path, headers, Vec::new())
            .await
            .expect("webhook listener reachable")
    }

    /// A writable connection to the daemon's database, for moving time along (expiry tests).
    pub fn db_rw(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.data_dir().join(photoboothd::store::DB_FILE)).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db
    }
}

impl Daemon {
    /// A kiosk request with extra headers; returns the status, the JSON body and `Set-Cookie`.
    pub async fn kiosk_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value, Option<String>) {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let r = client::request(self.kiosk, method, path, &all, body.to_string())
            .await
            .expect("kiosk reachable");
        (r.status, r.json().unwrap_or(Value::Null), r.set_cookie.clone())
    }

    /// A service-menu request with `Authorization: Bearer <token>` when a token is given.
    pub async fn service(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, v, _) = self.kiosk_with(method, path, &headers, body).await;
        (status, v)
    }

    /// Unlocks the service menu with `pin`; returns the token.
    pub async fn service_token(&self, pin: &str) -> String {
        let (status, v) = self
            .service("POST", "/api/service/unlock", None, &json!({ "pin": pin }).to_string())
            .await;
        assert_eq!(status, 200, "{v}");
        v["token"].as_str().expect("a token").to_string()
    }

    /// Runs `photoboothd ARGS --config <this daemon's config>`; returns success and stdout+stderr.
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        run_cli(&self.config_path(), args, Some("info"))
    }

    /// Waits until no print job is queued or printing: whatever the print loop was going to send
    /// has been sent.
    pub async fn wait_queue_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count("SELECT count(*) FROM print_jobs WHERE status IN ('queued', 'printing')") > 0 {
            assert!(
                Instant::now() < deadline,
                "the print queue never emptied:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/api/status` until `accepting_orders` is `accepting`.
    pub async fn wait_accepting(&self, accepting: bool) -> Value {
        let status = || async { self.kiosk("GET", "/api/status", "").await.1 };
        self.wait_for(&format!("accepting_orders {accepting}"), status, |v| {
            v["accepting_orders"] == accepting
        })
        .await
    }
}

/// Runs `probe` every `every` until `done` accepts its value, and returns that value; fails the
/// test with `fail(last value)` once `limit` has passed. The harness's one polling loop: for what a
/// daemon does in its own time, without asserting on how long it takes.
pub async fn poll<V, Fut>(
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Fut,
    done: impl Fn(&V) -> bool,
    fail: impl FnOnce(&V) -> String,
) -> V
where
    Fut: std::future::Future<Output = V>,
{
    let deadline = Instant::now() + limit;
    loop {
        let v = probe().await;
        if done(&v) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("{}", fail(&v));
        }
        tokio::time::sleep(every).await;
    }
}

/// `photoboothd ARGS --config CONFIG` as a technician runs it, with no key from the environment or
/// a systemd credential: whether it succeeded, and stdout then stderr.
pub fn run_cli(config: &Path, args: &[&str], rust_log: Option<&str>) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PAYME_KEY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("RUST_LOG")
        .envs(rust_log.map(|l| ("RUST_LOG", l)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
