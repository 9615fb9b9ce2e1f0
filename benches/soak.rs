//! Soak bench: the release `photoboothd` under a realistic Payme mix for a long time, watching for
//! errors, latency drift and memory growth.
//!
//! One daemon on a fresh data directory (file printer, ports picked by the OS), then `SOAK_WORKERS`
//! simulated customers in a closed loop for `SOAK_SECONDS`. Each customer flow:
//!
//! 1. kiosk `POST /api/generate-qr` (1-3 copies);
//! 2. `CheckPerformTransaction` → `allow: true`;
//! 3. `CreateTransaction` → state 1; 20 % repeat it (identical reply expected); 10 % also see a
//!    second Create for the same order with another Payme id (→ -31008, expected);
//! 4. 5 % are abandoned: `CancelTransaction` reason 3 → state -1, `CheckTransaction`, done;
//! 5. `PerformTransaction` → state 2; 20 % repeat it (identical);
//! 6. `CheckTransaction` → state 2 with the same perform time;
//! 7. 5 % are refunded: `CancelTransaction` reason 5 → state -2 (half of them repeated, identical);
//! 8. 5 % end with `GetStatement` over the two seconds around the flow's Create, which must list it.
//!
//! An error is an HTTP status other than 200, a transport error, a JSON-RPC error the flow did not
//! expect, or a reply that contradicts the flow (wrong state, a repeat that differs). Every request
//! uses a new connection (`photoboothd::client`, as Payme's tunnel may). Every `SOAK_SAMPLE_S`
//! seconds the bench prints the daemon's VmRSS, open file descriptors and threads, and the
//! throughput, p99 latency and errors of that interval; the printed PNGs are deleted as it goes so
//! the disk does not fill. At the end: totals, per-method latency, the RSS series with its slope,
//! the print queue, and the daemon's log levels. Exits with status 1 if any error occurred.
//!
//! ```text
//! cargo bench --bench soak                    # 600 s, 8 workers
//! SOAK_SECONDS=30 cargo bench --bench soak    # CI / short mode
//! SOAK_SECONDS=3600 SOAK_WORKERS=4 SOAK_SAMPLE_S=30 cargo bench --bench soak
//! PHOTOBOOTHD_BIN=/path/to/photoboothd cargo bench --bench soak
//! ```
//!
//! Traffic goes only to the daemon on 127.0.0.1; every loop ends at the deadline (each request is
//! bounded by the client's 30 s timeout).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use photoboothd::daemon::RuntimeInfo;
use photoboothd::payme::auth::basic_header;
use serde_json::{json, Value};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{
    bench_binary, kiosk_request, knob, ms, payme_call, pct, random_payme_id, run_local, status_field, store_report,
    Process, TestConfig, KEY, START_LIMIT, STOP_LIMIT,
};

/// How long, how many workers, how often to sample: `--seconds`, `--workers`, `--sample` (or
/// `SOAK_SECONDS`, `SOAK_WORKERS`, `SOAK_SAMPLE_S`).
struct Options {
    duration: Duration,
    workers: usize,
    sample: Duration,
}

impl Options {
    fn read() -> Options {
        let seconds = knob("--seconds", "SOAK_SECONDS", 600);
        let sample_s = knob("--sample", "SOAK_SAMPLE_S", 10);
        let workers = knob("--workers", "SOAK_WORKERS", 8);
        Options {
            workers: workers.clamp(1, 256) as usize,
            duration: Duration::from_secs(seconds.max(1)),
            sample: Duration::from_secs(sample_s.max(1)),
        }
    }
}

struct Daemon {
    process: Process,
}

impl Daemon {
    fn spawn(bin: &Path, dir: &Path) -> Daemon {
        let config = dir.join("photobooth.toml");
        let data_dir = dir.join("data");
        let text = TestConfig {
            name: "Soak Booth".into(),
            printer: format!("dir = \"{}\"\n", dir.join("prints").display()),
            ..TestConfig::new(&data_dir)
        }
        .text();
        std::fs::write(&config, text).expect("write the config");
        Daemon {
            process: Process::spawn(bin, &config, &data_dir, &dir.join("daemon.log"), None, &[]),
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn wait_ready(&mut self) -> RuntimeInfo {
        self.process.wait_ready_blocking(START_LIMIT)
    }

    fn log(&self) -> String {
        self.process.log_text()
    }

    /// SIGTERM and wait (SIGKILL after `STOP_LIMIT`); returns how long the stop took.
    fn stop(&mut self) -> Duration {
        self.process.stop(STOP_LIMIT)
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len() / 1024).unwrap_or(0)
}

/// Removes printed PNGs; returns how many.
fn sweep_prints(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// xorshift64*: a tiny deterministic generator per worker, for the mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Default)]
struct Stats {
    /// Latency in ms per request kind.
    latency: BTreeMap<&'static str, Vec<f64>>,
    requests: u64,
    flows: u64,
    errors: u64,
    expected_errors: u64,
    first_errors: Vec<String>,
    /// (seconds since start, latency ms) of every request, for the per-interval p99.
    interval: Vec<f64>,
}

struct Ctx {
    kiosk: SocketAddr,
    webhook: SocketAddr,
    auth: String,
    stats: RefCell<Stats>,
}

impl Ctx {
    fn record(&self, kind: &'static str, took: Duration) {
        let mut s = self.stats.borrow_mut();
        s.requests += 1;
        s.latency.entry(kind).or_default().push(ms(took));
        s.interval.push(ms(took));
    }

    fn error(&self, e: String) {
        let mut s = self.stats.borrow_mut();
        s.errors += 1;
        if s.first_errors.len() < 10 {
            s.first_errors.push(e);
        }
    }

    /// One JSON-RPC call; `Ok(reply)` for HTTP 200 with a JSON object (result or error).
    async fn call(&self, kind: &'static str, method: &str, params: Value) -> Result<Value, String> {
        let started = Instant::now();
        let reply = payme_call(self.webhook, &self.auth, method, params)
            .await
            .map_err(|e| format!("{kind}: {e}"));
        self.record(kind, started.elapsed());
        reply
    }

    /// A call that must succeed; returns its `result`.
    async fn ok(&self, kind: &'static str, method: &str, params: Value) -> Result<Value, String> {
        let v = self.call(kind, method, params).await?;
        match v.get("result") {
            Some(r) if v.get("error").is_none() => Ok(r.clone()),
            _ => Err(format!("{kind}: unexpected reply {v}")),
        }
    }

    /// `CancelTransaction` of `id` for `reason` (3: before perform, 5: a refund), recorded as `kind`.
    async fn cancel(&self, kind: &'static str, id: &str, reason: i64) -> Result<Value, String> {
        self.ok(kind, "CancelTransaction", json!({ "id": id, "reason": reason }))
            .await
    }

    async fn check(&self, id: &str) -> Result<Value, String> {
        self.ok("CheckTransaction", "CheckTransaction", json!({ "id": id }))
            .await
    }

    /// A call that must fail with `code`.
    async fn expect_error(&self, kind: &'static str, method: &str, params: Value, code: i64) -> Result<(), String> {
        let v = self.call(kind, method, params).await?;
        if v["error"]["code"].as_i64() == Some(code) {
            self.stats.borrow_mut().expected_errors += 1;
            Ok(())
        } else {
            Err(format!("{kind}: expected error {code}, got {v}"))
        }
    }
}

fn expect(what: &str, cond: bool, v: &Value) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}: {v}"))
    }
}

async fn flow(ctx: &Ctx, rng: &mut Rng) -> Result<(), String> {
    let copies = 1 + rng.next() % 3;
    let started = Instant::now();
    let body = json!({ "copies": copies }).to_string();
    let (status, order) = kiosk_request(ctx.kiosk, "POST", "/api/generate-qr", &body).await?;
    ctx.record("kiosk generate-qr", started.elapsed());
    let (Some(order_id), Some(amount)) = (order["order_id"].as_i64(), order["amount_tiyin"].as_i64()) else {
        return Err(format!("generate-qr: HTTP {status} {order}"));
    };
    let account = json!({ "order_id": order_id.to_string() });

    let r = ctx
        .ok(
            "CheckPerformTransaction",
            "CheckPerformTransaction",
            json!({ "amount": amount, "account": account }),
        )
        .await?;
    expect("CheckPerformTransaction", r["allow"] == true, &r)?;

    let id = random_payme_id();
    let time = photoboothd::clock::now_ms();
    let create = json!({ "id": id, "time": time, "amount": amount, "account": account });
    let created = ctx.ok("CreateTransaction", "CreateTransaction", create.clone()).await?;
    expect("CreateTransaction state", created["state"] == 1, &created)?;
    if rng.chance(20) {
        let again = ctx
            .ok("CreateTransaction (repeat)", "CreateTransaction", create.clone())
            .await?;
        expect("CreateTransaction repeat differs", again == created, &again)?;
    }
    if rng.chance(10) {
        let other = json!({ "id": random_payme_id(), "time": time, "amount": amount, "account": account });
        ctx.expect_error("CreateTransaction (2nd id, -31008)", "CreateTransaction", other, -31008)
            .await?;
    }
    if rng.chance(5) {
        let cancelled = ctx.cancel("CancelTransaction (before perform)", &id, 3).await?;
        expect("CancelTransaction state", cancelled["state"] == -1, &cancelled)?;
        let checked = ctx.check(&id).await?;
        expect(
            "CheckTransaction after cancel",
            checked["state"] == -1 && checked["reason"] == 3,
            &checked,
        )?;
        return Ok(());
    }

    let performed = ctx
        .ok("PerformTransaction", "PerformTransaction", json!({ "id": id }))
        .await?;
    expect("PerformTransaction state", performed["state"] == 2, &performed)?;
    if rng.chance(20) {
        let again = ctx
            .ok("PerformTransaction (repeat)", "PerformTransaction", json!({ "id": id }))
            .await?;
        expect("PerformTransaction repeat differs", again == performed, &again)?;
    }
    let checked = ctx.check(&id).await?;
    expect(
        "CheckTransaction after perform",
        checked["state"] == 2 && checked["perform_time"] == performed["perform_time"],
        &checked,
    )?;

    if rng.chance(5) {
        let refunded = ctx.cancel("CancelTransaction (refund)", &id, 5).await?;
        expect("refund state", refunded["state"] == -2, &refunded)?;
        if rng.chance(50) {
            let again = ctx.cancel("CancelTransaction (repeat)", &id, 5).await?;
            expect("CancelTransaction repeat differs", again == refunded, &again)?;
        }
    }
    if rng.chance(5) {
        let statement = ctx
            .ok(
                "GetStatement",
                "GetStatement",
                json!({ "from": time - 1000, "to": time + 1000 }),
            )
            .await?;
        let listed = statement["transactions"]
            .as_array()
            .is_some_and(|txs| txs.iter().any(|t| t["id"] == id.as_str()));
        expect("GetStatement does not list the flow's transaction", listed, &json!(id))?;
    }
    Ok(())
}

async fn worker(ctx: Rc<Ctx>, seed: u64, deadline: Instant) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    while Instant::now() < deadline {
        match flow(&ctx, &mut rng).await {
            Ok(()) => ctx.stats.borrow_mut().flows += 1,
            Err(e) => ctx.error(e),
        }
    }
}

struct Sample {
    t: f64,
    rss: u64,
    fds: usize,
    threads: u64,
}

/// Least-squares slope of `ys` over `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

async fn soak(bin: &Path, opts: &Options) -> u64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut daemon = Daemon::spawn(bin, dir.path());
    let info = daemon.wait_ready();
    let pid = daemon.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle, 1 s after start: VmRSS {} KiB, {} fds, {} threads",
        status_field(pid, "VmRSS:").unwrap_or(0),
        open_fds(pid),
        status_field(pid, "Threads:").unwrap_or(0)
    );
    println!(
        "{} workers for {:?}, sampling every {:?}",
        opts.workers, opts.duration, opts.sample
    );
    println!(
        "{:>6} {:>9} {:>5} {:>7} {:>8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>8}",
        "t (s)", "RSS KiB", "fds", "threads", "req/s", "flows/s", "p99 ms", "errors", "prints", "db KiB", "wal KiB"
    );
    let ctx = Rc::new(Ctx {
        kiosk: info.kiosk,
        webhook: info.webhook,
        auth: basic_header(KEY),
        stats: RefCell::new(Stats::default()),
    });
    let started = Instant::now();
    let deadline = started + opts.duration;
    let workers: Vec<_> = (0..opts.workers)
        .map(|i| tokio::task::spawn_local(worker(ctx.clone(), i as u64 + 1, deadline)))
        .collect();

    let prints = dir.path().join("prints");
    let db = dir.path().join("data").join(photoboothd::store::DB_FILE);
    let wal = dir
        .path()
        .join("data")
        .join(format!("{}-wal", photoboothd::store::DB_FILE));
    let mut samples: Vec<Sample> = Vec::new();
    let mut swept = 0;
    let (mut last_requests, mut last_flows, mut last_t) = (0u64, 0u64, 0f64);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + opts.sample, opts.sample);
    // Bounded: one sample per interval until the deadline, then the workers' last flows.
    while Instant::now() < deadline {
        tick.tick().await;
        let t = started.elapsed().as_secs_f64();
        swept += sweep_prints(&prints);
        let (requests, flows, errors, mut lat) = {
            let mut s = ctx.stats.borrow_mut();
            (s.requests, s.flows, s.errors, std::mem::take(&mut s.interval))
        };
        lat.sort_by(f64::total_cmp);
        let Some(rss) = status_field(pid, "VmRSS:") else {
            println!("the daemon is gone:\n{}", daemon.log());
            break;
        };
        let sample = Sample {
            t,
            rss,
            fds: open_fds(pid),
            threads: status_field(pid, "Threads:").unwrap_or(0),
        };
        let dt = (t - last_t).max(1e-9);
        println!(
            "{:>6.0} {:>9} {:>5} {:>7} {:>8.1} {:>8.1} {:>9.2} {:>7} {:>7} {:>8} {:>8}",
            t,
            sample.rss,
            sample.fds,
            sample.threads,
            (requests - last_requests) as f64 / dt,
            (flows - last_flows) as f64 / dt,
            pct(&lat, 99.0),
            errors,
            swept,
            file_kib(&db),
            file_kib(&wal),
        );
        (last_requests, last_flows, last_t) = (requests, flows, t);
        samples.push(sample);
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed();
    swept += sweep_prints(&prints);

    let stats = ctx.stats.borrow();
    println!();
    println!(
        "== totals over {:.1} s: {} flows ({:.2} flows/s), {} requests ({:.1} req/s), {} errors, {} expected JSON-RPC errors ==",
        elapsed.as_secs_f64(),
        stats.flows,
        stats.flows as f64 / elapsed.as_secs_f64(),
        stats.requests,
        stats.requests as f64 / elapsed.as_secs_f64(),
        stats.errors,
        stats.expected_errors,
    );
    for e in &stats.first_errors {
        println!("  error: {e}");
    }
    println!(
        "{:<36} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "request", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (kind, values) in &stats.latency {
        let mut v = values.clone();
        v.sort_by(f64::total_cmp);
        println!(
            "{:<36} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            kind,
            v.len(),
            pct(&v, 50.0),
            pct(&v, 90.0),
            pct(&v, 99.0),
            v[v.len() - 1]
        );
    }
    if !samples.is_empty() {
        let rss: Vec<u64> = samples.iter().map(|s| s.rss).collect();
        let xs: Vec<f64> = samples.iter().map(|s| s.t / 60.0).collect();
        let ys: Vec<f64> = rss.iter().map(|&r| r as f64).collect();
        let half = samples.len() / 2;
        println!(
            "VmRSS KiB: first {} / last {} / min {} / max {}; slope {:.1} KiB/min over the run, {:.1} KiB/min over its second half",
            rss[0],
            rss[rss.len() - 1],
            rss.iter().min().unwrap_or(&0),
            rss.iter().max().unwrap_or(&0),
            slope(&xs, &ys),
            slope(&xs[half..], &ys[half..]),
        );
        println!(
            "VmRSS series (KiB, every {:?}): {}",
            opts.sample,
            rss.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
        );
        let fds: Vec<String> = samples.iter().map(|s| s.fds.to_string()).collect();
        println!("open fds series: {}", fds.join(" "));
        let threads: Vec<String> = samples.iter().map(|s| s.threads.to_string()).collect();
        println!("threads series: {}", threads.join(" "));
    }
    println!(
        "daemon right after the run: VmRSS {} KiB, VmHWM {} KiB, {} fds, {} threads",
        status_field(pid, "VmRSS:").unwrap_or(0),
        status_field(pid, "VmHWM:").unwrap_or(0),
        open_fds(pid),
        status_field(pid, "Threads:").unwrap_or(0)
    );
    println!("store: {}; {swept} PNGs written", store_report(&db));
    println!("database {} KiB, WAL {} KiB", file_kib(&db), file_kib(&wal));
    let stop = daemon.stop();
    println!("SIGTERM → exit {:.1} ms", ms(stop));
    let log = daemon.log();
    let level = |l: &str| log.lines().filter(|line| line.contains(l)).count();
    println!(
        "daemon log: {} lines, {} WARN, {} ERROR, {} panics",
        log.lines().count(),
        level(" WARN "),
        level(" ERROR "),
        level("panicked")
    );
    for line in log
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains("panicked"))
        .take(5)
    {
        println!("  {line}");
    }
    stats.errors + level("panicked") as u64
}

fn main() {
    let opts = Options::read();
    run_local(soak(&bench_binary(), &opts), "errors");
}
