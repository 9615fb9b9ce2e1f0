//! Test harness: runs the real `photoboothd` binary on ephemeral ports with a real SQLite file in
//! a temporary directory, and talks to it over real HTTP.
#![allow(dead_code)]

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
/// 20 000 sum per copy, in tiyin.
pub const PRICE_TIYIN: i64 = 2_000_000;

pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub kiosk: SocketAddr,
    pub webhook: SocketAddr,
    /// TOML inside `[payme]` (may open further tables such as `[camera]`); used at each (re)start.
    pub extra: String,
    /// TOML appended to the `[printer]` table.
    pub printer_extra: String,
    /// Extra environment for the daemon process.
    pub env: Vec<(String, String)>,
}

pub fn config_text(data_dir: &Path, extra: &str) -> String {
    config_text_full(data_dir, extra, "")
}

pub fn config_text_full(data_dir: &Path, extra: &str, printer_extra: &str) -> String {
    format!(
        r#"
[booth]
name = "Test Booth"
price_per_copy = 20000
max_copies = 10
order_ttl_s = 600
data_dir = "{}"

[http]
kiosk_listen = "127.0.0.1:0"
webhook_listen = "127.0.0.1:0"

[payme]
merchant_id = "587f72c72cac0d162c722ae2"
key = "{KEY}"
checkout_base = "https://test.paycom.uz"
account_field = "order_id"
{extra}
[printer]
backend = "file"
{printer_extra}
"#,
        data_dir.display()
    )
}

impl Daemon {
    pub async fn start() -> Daemon {
        Daemon::start_with("").await
    }

    /// `extra` is TOML placed inside the `[payme]` table (e.g. a `[payme.fiscal]` section).
    pub async fn start_with(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon {
            dir,
            child: None,
            kiosk: "127.0.0.1:1".parse().unwrap(),
            webhook: "127.0.0.1:1".parse().unwrap(),
            extra: extra.to_string(),
            printer_extra: String::new(),
            env: Vec::new(),
        };
        d.spawn().await;
        d
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("photobooth.toml")
    }

    async fn spawn(&mut self) {
        std::fs::write(
            self.config_path(),
            config_text_full(&self.data_dir(), &self.extra, &self.printer_extra),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .env_remove("PAYME_KEY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("STATE_DIRECTORY")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn photoboothd");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(info) = RuntimeInfo::read(&self.data_dir()) {
                if info.pid == pid {
                    self.kiosk = info.kiosk;
                    self.webhook = info.webhook;
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("photoboothd exited with {status} at start:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "photoboothd did not become ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

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
        child.wait().unwrap()
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
        let r = client::request(
            self.kiosk,
            method,
            path,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
        .expect("kiosk reachable");
        (r.status, r.json().unwrap_or(Value::Null))
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
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.order(id).await;
            if v["status"] == status {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} never reached {status}: {v}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
        let dir = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon {
            dir,
            child: None,
            kiosk: "127.0.0.1:1".parse().unwrap(),
            webhook: "127.0.0.1:1".parse().unwrap(),
            extra: String::new(),
            printer_extra: String::new(),
            env: Vec::new(),
        };
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

    async fn spawn_on_written_config(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .env_remove("PAYME_KEY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("STATE_DIRECTORY")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn photoboothd");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(info) = RuntimeInfo::read(&self.data_dir()) {
                if info.pid == pid {
                    self.kiosk = info.kiosk;
                    self.webhook = info.webhook;
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("photoboothd exited with {status} at start:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "photoboothd did not become ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Daemon {
    /// The running daemon's process id, e.g. for `/proc/<pid>/status` (tests/hostile_clients.rs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}
