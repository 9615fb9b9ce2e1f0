//! Owners and fleets: `/metrics` after a paid session (checked by promtool), the metrics-only
//! listener, CSV exports, the deploy/ files (promtool, amtool), and a real Prometheus scraping a
//! running daemon and running every dashboard query and alert rule.
//!
//! promtool, amtool and prometheus come from Debian's `prometheus` and `prometheus-alertmanager`
//! (`.ci/prometheus-setup.sh`). Without them the tests print SKIPPED, except in CI.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use photoboothd::daemon::RuntimeInfo;
use serde_json::Value;

const FAST: &str = "[camera]\ncountdown_s = 0\nshots = 2\nwidth = 640\nheight = 480\n\
                    [session]\ndone_timeout_s = 30\n";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The tool's path, or `None` after saying why the test is skipped (a failure in CI).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip(&format!("{name} not found; install it with .ci/prometheus-setup.sh"));
    }
    found
}

/// Runs a tool; returns whether it succeeded and what it printed.
fn run(tool: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A daemon with a fast camera, a media counter of `capacity` and a metrics-only listener.
async fn booth(capacity: u32) -> Daemon {
    Daemon::start_with_config(|data_dir| {
        TestConfig {
            printer: format!("capacity = {capacity}"),
            // The [http] table ends with webhook_listen; the metrics listener joins it.
            webhook_listen: "127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0".into(),
            tail: FAST.into(),
            ..TestConfig::new(data_dir)
        }
        .text()
    })
    .await
}

fn metrics_addr(d: &Daemon) -> SocketAddr {
    RuntimeInfo::read(&d.data_dir())
        .and_then(|i| i.metrics)
        .expect("the runtime file names the metrics listener")
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = photoboothd::client::request(addr, "GET", path, &[], Vec::new())
        .await
        .expect("listener reachable");
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[tokio::test]
async fn a_paid_session_shows_in_metrics_and_the_csv_exports() {
    let Some(promtool) = tool("promtool") else { return };
    let mut d = booth(100).await;
    let (order, amount, payme_id) = d.paid_session(2).await;
    // A customer who leaves on the review screen.
    assert_eq!(d.kiosk("POST", "/api/session/start", "").await.0, 200);
    d.wait_stage("review").await;
    assert_eq!(d.kiosk("POST", "/api/session/cancel", "").await.0, 200);
    d.wait_stage("idle").await;
    // A request with a wrong key: one -32504.
    let (status, _) = d
        .post_payme(
            &[("authorization", "Basic d3Jvbmc6a2V5")],
            r#"{"method":"CheckTransaction","params":{},"id":1}"#,
        )
        .await;
    assert_eq!(status, 200);

    let (status, text) = get(metrics_addr(&d), "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let (ok, lint) = run(&promtool, &["check", "metrics"], Some(&text));
    assert!(ok && lint.trim().is_empty(), "promtool check metrics:\n{lint}\n{text}");
    for line in [
        format!("photoboothd_paid_tiyin_total{{kind=\"print\"}} {amount}"),
        "photoboothd_paid_tiyin_total{kind=\"digital\"} 0".into(),
        "photoboothd_refunded_tiyin_total 0".into(),
        "photoboothd_media_remaining 98".into(),
        "photoboothd_sessions_total{outcome=\"printed\"} 1".into(),
        "photoboothd_sessions_total{outcome=\"abandoned_review\"} 1".into(),
        "photoboothd_sessions_total{outcome=\"abandoned_payment\"} 0".into(),
        format!(
            "photoboothd_build_info{{version=\"{}\",booth=\"Test Booth\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "photoboothd_printer_up 1".into(),
        "photoboothd_blocked{reason=\"printer_offline\"} 0".into(),
        "photoboothd_open 1".into(),
        "photoboothd_webhook_errors_total{code=\"-32504\"} 1".into(),
    ] {
        assert!(text.contains(&line), "/metrics lacks {line:?}:\n{text}");
    }
    let last_payment = text
        .lines()
        .find_map(|l| l.strip_prefix("photoboothd_last_payment_timestamp_seconds "))
        .and_then(|v| v.parse::<i64>().ok())
        .expect("last payment timestamp");
    assert!((last_payment - now_ms() / 1000).abs() < 600, "{last_payment}");

    // The metrics listener serves nothing else; the kiosk listener serves the same metrics.
    assert_eq!(get(metrics_addr(&d), "/api/status").await.0, 404);
    let (status, kiosk_text) = get(d.kiosk, "/metrics").await;
    assert!(status == 200 && kiosk_text.contains("photoboothd_media_remaining 98"));

    // CSV: every order, a BOM, a header, sums with two decimals and in tiyin.
    let (ok, csv) = d.cli(&["orders", "--csv"]);
    assert!(ok, "{csv}");
    assert!(
        csv.starts_with("\u{feff}order_id,created,paid,status,kind,copies,amount_sum,amount_tiyin,session_id,note\r\n"),
        "{csv:?}"
    );
    let row = csv.lines().nth(1).expect("the order's row");
    let cells: Vec<&str> = row.trim_end().split(',').collect();
    assert_eq!(cells[0], order, "{csv}");
    assert_eq!(
        (cells[3], cells[4], cells[5], cells[6], cells[7]),
        ("printed", "print", "2", "40000.00", "4000000"),
        "{csv}"
    );
    let (ok, csv) = d.cli(&["orders", "--csv", "--csv-sep", ";"]);
    assert!(
        ok && csv.lines().nth(1).is_some_and(|l| l.contains(";40000.00;4000000;")),
        "{csv}"
    );
    let (ok, csv) = d.cli(&["stats", "--csv", "--days", "2"]);
    assert!(ok, "{csv}");
    assert!(
        csv.starts_with("\u{feff}day,sessions,paid_orders,refunded_orders,revenue_sum,revenue_tiyin,"),
        "{csv}"
    );
    assert!(csv.lines().any(|l| l.contains(",2,1,0,40000.00,4000000,2,")), "{csv}");
    let (ok, out) = d.cli(&["orders", "--csv", "--csv-sep", "ab"]);
    assert!(!ok && out.contains("--csv-sep"), "{out}");

    // A payment simulated with `photoboothd pay` (a development tool) is no money: not counted.
    let (simulated, _) = d.new_order(1).await;
    let (ok, out) = d.cli(&["pay", &simulated]);
    assert!(ok, "{out}");
    d.wait_for_status(&simulated, "printed").await;

    // A refund: paid stays, refunded grows (revenue is their difference).
    let cancel = d
        .rpc("CancelTransaction", serde_json::json!({ "id": payme_id, "reason": 5 }))
        .await;
    assert_eq!(cancel["result"]["state"], -2, "{cancel}");

    // Counters are the record's: a restart keeps them.
    d.restart_same_config().await;
    let (_, text) = get(metrics_addr(&d), "/metrics").await;
    for line in [
        format!("photoboothd_paid_tiyin_total{{kind=\"print\"}} {amount}"),
        format!("photoboothd_refunded_tiyin_total {amount}"),
        "photoboothd_sessions_total{outcome=\"printed\"} 1".into(),
        "photoboothd_sessions_total{outcome=\"abandoned_review\"} 1".into(),
        "photoboothd_payments{state=\"-2\"} 1".into(),
    ] {
        assert!(
            text.contains(&line),
            "after a simulated payment, a refund and a restart, /metrics lacks {line:?}:\n{text}"
        );
    }
}

#[test]
fn the_deploy_files_pass_promtool_and_amtool() {
    let (Some(promtool), Some(amtool)) = (tool("promtool"), tool("amtool")) else {
        return;
    };
    let prometheus = deploy().join("prometheus");
    let path = |p: &Path| p.display().to_string();
    for args in [
        vec!["check", "rules", &path(&prometheus.join("alerts.yml"))],
        vec!["test", "rules", &path(&prometheus.join("alerts_test.yml"))],
        vec!["check", "config", &path(&prometheus.join("prometheus.yml"))],
    ] {
        let args: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
        let (ok, out) = run(&promtool, &args, None);
        assert!(ok, "promtool {args:?}:\n{out}");
    }
    let am = path(&deploy().join("alertmanager").join("alertmanager.yml"));
    let (ok, out) = run(&amtool, &["check-config", &am], None);
    assert!(ok, "amtool check-config:\n{out}");
    let config_flag = format!("--config.file={am}");
    for (labels, receivers) in [
        (
            ["alertname=PhotoboothPrinterDown", "severity=critical"],
            "technicians,owner",
        ),
        (["alertname=PhotoboothMediaLow", "severity=warning"], "owner"),
    ] {
        let verify = format!("--verify.receivers={receivers}");
        let mut args = vec!["config", "routes", "test", config_flag.as_str(), verify.as_str()];
        args.extend(labels);
        let (ok, out) = run(&amtool, &args, None);
        assert!(ok, "amtool {args:?}:\n{out}");
    }
    // The example really routes to Telegram.
    let text = std::fs::read_to_string(&am).unwrap();
    assert!(text.contains("telegram_configs:"), "{text}");
}

/// Every query of the Grafana dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy().join("grafana").join("photoboothd.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            queries.push((panel["title"].as_str().unwrap_or("?").to_string(), expr.to_string()));
        }
    }
    queries
}

#[test]
fn the_dashboard_shows_revenue_funnel_media_printer_and_latency() {
    let queries = dashboard_queries();
    let all: String = queries.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("\n");
    for metric in [
        "photoboothd_paid_tiyin_total",
        "photoboothd_refunded_tiyin_total",
        "photoboothd_sessions_total",
        "photoboothd_media_remaining",
        "photoboothd_printer_up",
        "photoboothd_webhook_seconds_bucket",
    ] {
        assert!(all.contains(metric), "no dashboard panel uses {metric}");
    }
}

/// A Prometheus server of the test's own: temporary configuration and storage, an ephemeral port.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    async fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules = deploy().join("prometheus").join("alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: photoboothd\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        // Prometheus cannot report a port it picked, so take a free one and hand it over.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, addr, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = photoboothd::client::request(addr, "GET", "/-/ready", &[], Vec::new()).await {
                if r.status == 200 {
                    return p;
                }
            }
            assert!(Instant::now() < deadline, "prometheus not ready:\n{}", p.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path`, the `data` member of a successful reply.
    async fn api(&self, path: &str) -> Value {
        let r = photoboothd::client::request(self.addr, "GET", path, &[], Vec::new())
            .await
            .expect("prometheus reachable");
        let v: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    /// An instant query's result vector.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr))).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `expr` until `ok` accepts its result.
    async fn wait_for(&self, expr: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        poll(
            Duration::from_secs(30),
            Duration::from_millis(250),
            || self.query(expr),
            |result| ok(result),
            |result| format!("{expr} never matched: {result:?}\n{}", self.log()),
        )
        .await
    }
}

/// Percent-encoding for a query string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_booth_runs_the_dashboard_and_the_alerts() {
    let Some(binary) = tool("prometheus") else { return };
    // 21 prints on the roll: after 2 copies, 19 left, below the media-low alert's 20.
    let d = booth(21).await;
    let prom = Prometheus::start(&binary, metrics_addr(&d)).await;
    prom.wait_for("up{job=\"photoboothd\"}", |r| {
        r.first().is_some_and(|s| value(s) == 1.0)
    })
    .await;
    // A scrape before the sale (so increase() over the day sees the sale), with the printer up.
    prom.wait_for("photoboothd_printer_up", |r| r.first().is_some_and(|s| value(s) == 1.0))
        .await;

    let (_, amount, _) = d.paid_session(2).await;

    // Revenue and funnel, as the dashboard computes them.
    prom.wait_for("photoboothd_paid_tiyin_total{kind=\"print\"}", |r| {
        r.first().is_some_and(|s| value(s) == amount as f64)
    })
    .await;
    prom.wait_for(
        "sum by (job, instance) (photoboothd_paid_tiyin_total) - sum by (job, instance) (photoboothd_refunded_tiyin_total)",
        |r| r.first().is_some_and(|s| value(s) == amount as f64),
    )
    .await;
    prom.wait_for("photoboothd_sessions_total{outcome=\"printed\"}", |r| {
        r.first().is_some_and(|s| value(s) == 1.0)
    })
    .await;
    let funnel = prom.query("photoboothd_sessions_total").await;
    assert_eq!(funnel.len(), 7, "one series per outcome: {funnel:?}");
    let booth = prom.query("photoboothd_build_info").await;
    assert_eq!(
        booth.first().map(|s| s["metric"]["booth"].clone()),
        Some("Test Booth".into())
    );

    // Every dashboard panel's query returns data (rates need a second scrape after the sale).
    for (panel, expr) in dashboard_queries() {
        let result = prom.wait_for(&expr, |r| !r.is_empty()).await;
        assert!(!result.is_empty(), "dashboard panel {panel:?} has no data: {expr}");
    }

    // The alert rules load and evaluate against the booth's series without errors, and the one
    // that should (media low, with its booth label from build_info) is pending or firing.
    let rules = prom
        .wait_for("ALERTS{alertname=\"PhotoboothMediaLow\"}", |r| !r.is_empty())
        .await;
    assert_eq!(rules[0]["metric"]["booth"], "Test Booth", "{rules:?}");
    let groups = prom.api("/api/v1/rules").await;
    let rules: Vec<&Value> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .collect();
    assert_eq!(rules.len(), 8, "{groups}");
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "rule failed to evaluate: {rule}");
    }
    let firing: Vec<&str> = rules
        .iter()
        .filter(|r| r["state"] != "inactive")
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(firing, ["PhotoboothMediaLow"], "only media is low: {groups}");
}
