//! Load bench for the release `photoboothd` binary, run as a separate process on loopback.
//!
//! 1. Start-up: spawns the daemon `--starts` times on a fresh data directory (then as many times on
//!    one reused directory) and measures, from the spawn: the port accepting TCP connections, the
//!    runtime file appearing, the first HTTP reply, the daemon's own `ready_ms`, and the SIGTERM stop.
//! 2. Payment flows: one daemon on a fresh data directory; its idle RSS one second after start,
//!    then `--workers` concurrent workers each looping for `--duration` seconds over
//!    kiosk `POST /api/generate-qr` → `CreateTransaction` → `PerformTransaction`, every request on a
//!    new connection through `photoboothd::client`. Reports flows/s, per-flow and per-step latency
//!    percentiles, errors, VmRSS sampled during the run, and the print queue afterwards.
//!
//! ```text
//! cargo build --release
//! cargo bench --bench payme_load                        # 20 s, 16 workers, 20 starts
//! cargo bench --bench payme_load -- --duration 60 --workers 16 --starts 20
//! BENCH_DURATION_S=5 cargo bench --bench payme_load     # the same options as environment variables
//! ```
//!
//! `PHOTOBOOTHD_BIN` overrides the daemon binary (default: the release build Cargo made for this bench,
//! `target/release/photoboothd`). The daemon runs at its default log level (`RUST_LOG` removed), with
//! stderr to a log file in its temporary directory. Nothing here asserts on timings; the process exits
//! with status 1 only if a flow failed.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use photoboothd::payme::auth::basic_header;
use serde_json::{json, Value};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{
    bench_binary, kiosk_request, knob, ms, payme_call, pct, random_payme_id, run_local, status_field, store_report,
    Process, TestConfig, KEY, START_LIMIT, STOP_LIMIT,
};

/// How often the start-up bench looks whether the daemon is up.
const POLL: Duration = Duration::from_micros(200);

struct Options {
    duration: Duration,
    workers: usize,
    starts: usize,
}

fn options() -> Options {
    Options {
        duration: Duration::from_secs(knob("--duration", "BENCH_DURATION_S", 20).max(1)),
        workers: knob("--workers", "BENCH_WORKERS", 16).max(1) as usize,
        starts: knob("--starts", "BENCH_STARTS", 20) as usize,
    }
}

/// One daemon process with its configuration and log in `dir`.
struct Daemon {
    process: Process,
    data_dir: PathBuf,
}

impl Daemon {
    fn spawn(bin: &Path, dir: &Path, kiosk: SocketAddr, webhook: SocketAddr) -> Daemon {
        let data_dir = dir.join("data");
        let config = dir.join("photobooth.toml");
        let text = TestConfig {
            name: "Bench Booth".into(),
            kiosk_listen: kiosk.to_string(),
            webhook_listen: webhook.to_string(),
            ..TestConfig::new(&data_dir)
        }
        .text();
        std::fs::write(&config, text).expect("write the config");
        // A fresh log per start: `ready_ms` reads the first "ready" line.
        let log = dir.join("daemon.log");
        let _ = std::fs::remove_file(&log);
        Daemon {
            process: Process::spawn(bin, &config, &data_dir, &log, None, &[]),
            data_dir,
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// The `ready_ms` the daemon logged with "photoboothd ready".
    fn ready_ms(&self) -> Option<u64> {
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains("photoboothd ready"))?;
        let rest = &line[line.find("ready_ms=")? + "ready_ms=".len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    }

    fn vm_rss_kib(&self) -> Option<u64> {
        vm_rss_kib(self.pid())
    }

    fn stop(&mut self) -> Duration {
        self.process.stop(STOP_LIMIT)
    }
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

/// Where the resident memory is: anonymous/file/shared totals and the largest mappings by Rss,
/// grouped by name (unnamed anonymous mappings are the malloc arenas and thread stacks).
fn memory_breakdown(pid: u32) {
    let field = |f: &str| status_field(pid, f).unwrap_or(0);
    println!(
        "  RssAnon {} KiB, RssFile {} KiB, RssShmem {} KiB, threads {}",
        field("RssAnon:"),
        field("RssFile:"),
        field("RssShmem:"),
        field("Threads:")
    );
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return;
    };
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if !first.ends_with(':') {
            let name = words.nth(4).unwrap_or("[anon]");
            current = name.rsplit('/').next().unwrap_or(name).to_string();
        } else if first == "Rss:" {
            let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match groups.iter_mut().find(|g| g.0 == current) {
                Some(g) => {
                    g.1 += kib;
                    g.2 += u64::from(kib > 0);
                }
                None => groups.push((current.clone(), kib, u64::from(kib > 0))),
            }
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    let top: Vec<String> = groups
        .iter()
        .take(5)
        .map(|(name, kib, n)| format!("{name} {kib} KiB in {n} mappings"))
        .collect();
    println!("  largest by Rss: {}", top.join("; "));
}

/// System and process counters, read before and after a run to say where the CPU and the disk went.
struct Counters {
    /// Jiffies of all CPUs from `/proc/stat`: busy (not idle or iowait), iowait, and the total.
    busy: u64,
    iowait: u64,
    total: u64,
    /// utime + stime of the daemon and of this bench process (all threads).
    daemon: u64,
    client: u64,
    /// `/proc/diskstats` of the disk under the data directory: flushes and the ms spent in them.
    flushes: u64,
    flush_ms: u64,
    /// Bytes the daemon caused to be written to storage (`/proc/<pid>/io`).
    daemon_write_bytes: u64,
}

fn proc_cpu(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Some(after_comm) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<u64> = after_comm.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // Fields 14 and 15 of proc(5): utime, stime; `after_comm` starts at field 3.
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// The block device holding `path`, by its device number, as `/proc/diskstats` names it.
fn disk_name(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) as u32,
        ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32,
    );
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    let line = stats.lines().find(|l| {
        let mut w = l.split_whitespace();
        w.next().and_then(|v| v.parse::<u32>().ok()) == Some(major)
            && w.next().and_then(|v| v.parse::<u32>().ok()) == Some(minor)
    })?;
    line.split_whitespace().nth(2).map(str::to_string)
}

fn counters(pid: u32, disk: Option<&str>) -> Counters {
    let cpu = common::machine_cpu_ticks();
    let get = |i: usize| cpu.get(i).copied().unwrap_or(0);
    let (mut flushes, mut flush_ms) = (0, 0);
    if let Some(disk) = disk {
        let stats = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
        if let Some(line) = stats.lines().find(|l| l.split_whitespace().nth(2) == Some(disk)) {
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(3)
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            // Fields 16 and 17 after the name (kernel 5.5+): flush requests completed, ms flushing.
            flushes = f.get(15).copied().unwrap_or(0);
            flush_ms = f.get(16).copied().unwrap_or(0);
        }
    }
    let daemon_write_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            let line = io.lines().find(|l| l.starts_with("write_bytes:"))?.to_string();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    Counters {
        busy: get(0) + get(1) + get(2) + get(5) + get(6) + get(7),
        iowait: get(4),
        total: (0..8).map(get).sum(),
        daemon: proc_cpu(&format!("/proc/{pid}/stat")),
        client: proc_cpu("/proc/self/stat"),
        flushes,
        flush_ms,
        daemon_write_bytes,
    }
}

fn report_counters(before: &Counters, after: &Counters, flows: usize, disk: Option<&str>) {
    let total = after.total.saturating_sub(before.total).max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let share = |d: u64| 100.0 * cores * d as f64 / total;
    let daemon = after.daemon.saturating_sub(before.daemon);
    let client = after.client.saturating_sub(before.client);
    let others = after.busy.saturating_sub(before.busy).saturating_sub(daemon + client);
    println!(
        "  CPU during the run (100% = one core, {cores} cores): daemon {:.0}%, this bench {:.0}%, \
         other processes {:.0}%, iowait {:.0}%",
        share(daemon),
        share(client),
        share(others),
        share(after.iowait.saturating_sub(before.iowait))
    );
    let flows = flows.max(1) as f64;
    let flushes = after.flushes.saturating_sub(before.flushes);
    println!(
        "  disk {}: {flushes} flushes ({:.2} per flow, {:.3} ms each on average, whole system); \
         daemon wrote {:.1} KiB per flow",
        disk.unwrap_or("?"),
        flushes as f64 / flows,
        after.flush_ms.saturating_sub(before.flush_ms) as f64 / (flushes.max(1) as f64),
        after.daemon_write_bytes.saturating_sub(before.daemon_write_bytes) as f64 / 1024.0 / flows
    );
}

/// A loopback port nobody listens on right now, so the start-up bench can poll it from the spawn.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr")
}

/// One blocking HTTP/1.1 request with `Connection: close`; returns the status code.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

fn summary_ms(name: &str, values: &mut [f64]) {
    if values.is_empty() {
        println!("  {name:<28} no samples");
        return;
    }
    values.sort_by(f64::total_cmp);
    println!(
        "  {name:<28} min {:>8.2}  p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2}  max {:>8.2}  (ms, n={})",
        values[0],
        pct(values, 50.0),
        pct(values, 90.0),
        pct(values, 99.0),
        values[values.len() - 1],
        values.len()
    );
}

#[derive(Default)]
struct StartSamples {
    accepting: Vec<f64>,
    runtime_file: Vec<f64>,
    first_reply: Vec<f64>,
    ready_ms: Vec<f64>,
    stop: Vec<f64>,
}

/// Spawn → webhook port accepting → runtime file → first kiosk HTTP reply, then SIGTERM.
fn start_once(bin: &Path, dir: &Path, samples: &mut StartSamples) {
    let (kiosk, webhook) = (free_port(), free_port());
    let started = Instant::now();
    let mut daemon = Daemon::spawn(bin, dir, kiosk, webhook);
    let deadline = started + START_LIMIT;
    let (mut accepting, mut file) = (None, None);
    while accepting.is_none() || file.is_none() {
        if accepting.is_none() && TcpStream::connect(webhook).is_ok() {
            accepting = Some(started.elapsed());
        }
        if file.is_none() && daemon.process.poll_ready().is_some() {
            file = Some(started.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "photoboothd not ready:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(POLL);
    }
    let status = http_status(kiosk, "/api/orders/999999");
    let first_reply = started.elapsed();
    assert_eq!(status, Some(404), "unexpected kiosk reply:\n{}", daemon.log_text());
    samples.accepting.push(ms(accepting.unwrap_or_default()));
    samples.runtime_file.push(ms(file.unwrap_or_default()));
    samples.first_reply.push(ms(first_reply));
    if let Some(ready) = daemon.ready_ms() {
        samples.ready_ms.push(ready as f64);
    }
    samples.stop.push(ms(daemon.stop()));
}

fn startup_bench(bin: &Path, starts: usize) {
    if starts == 0 {
        return;
    }
    println!("== start-up: {starts} starts on a fresh data directory each ==");
    let mut fresh = StartSamples::default();
    for _ in 0..starts {
        let dir = tempfile::tempdir().expect("temp dir");
        start_once(bin, dir.path(), &mut fresh);
    }
    print_starts(&mut fresh);
    println!("== start-up: {starts} starts reusing one data directory (database already created) ==");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut warm = StartSamples::default();
    start_once(bin, dir.path(), &mut StartSamples::default());
    for _ in 0..starts {
        start_once(bin, dir.path(), &mut warm);
    }
    print_starts(&mut warm);
}

fn print_starts(s: &mut StartSamples) {
    summary_ms("spawn → port accepting", &mut s.accepting);
    summary_ms("spawn → runtime file", &mut s.runtime_file);
    summary_ms("spawn → first HTTP reply", &mut s.first_reply);
    summary_ms("ready_ms (daemon's log)", &mut s.ready_ms);
    summary_ms("SIGTERM → exit", &mut s.stop);
}

#[derive(Default)]
struct WorkerResult {
    flows: Vec<f64>,
    order: Vec<f64>,
    create: Vec<f64>,
    perform: Vec<f64>,
    errors: u64,
    first_errors: Vec<String>,
}

struct Target {
    kiosk: SocketAddr,
    webhook: SocketAddr,
    auth: String,
}

async fn rpc(target: &Target, method: &str, params: Value) -> Result<Value, String> {
    let v = payme_call(target.webhook, &target.auth, method, params).await?;
    match v.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(format!("{method}: {v}")),
    }
}

/// One payment: returns the time of each of its three requests.
async fn flow(target: &Target) -> Result<[Duration; 3], String> {
    let t = Instant::now();
    let (status, order) = kiosk_request(target.kiosk, "POST", "/api/generate-qr", r#"{"copies":1}"#).await?;
    let (Some(order_id), Some(amount)) = (order["order_id"].as_i64(), order["amount_tiyin"].as_i64()) else {
        return Err(format!("generate-qr: HTTP {status} {order}"));
    };
    let t_order = t.elapsed();

    let t = Instant::now();
    let id = random_payme_id();
    let account = json!({ "order_id": order_id.to_string() });
    let created = rpc(
        target,
        "CreateTransaction",
        json!({ "id": id, "time": photoboothd::clock::now_ms(), "amount": amount, "account": account }),
    )
    .await?;
    if created["state"] != 1 {
        return Err(format!("CreateTransaction: state is not 1: {created}"));
    }
    let t_create = t.elapsed();

    let t = Instant::now();
    let performed = rpc(target, "PerformTransaction", json!({ "id": id })).await?;
    if performed["state"] != 2 {
        return Err(format!("PerformTransaction: state is not 2: {performed}"));
    }
    Ok([t_order, t_create, t.elapsed()])
}

async fn worker(target: Rc<Target>, deadline: Instant) -> WorkerResult {
    let mut r = WorkerResult::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        match flow(&target).await {
            Ok([order, create, perform]) => {
                r.flows.push(ms(started.elapsed()));
                r.order.push(ms(order));
                r.create.push(ms(create));
                r.perform.push(ms(perform));
            }
            Err(e) => {
                r.errors += 1;
                if r.first_errors.len() < 3 {
                    r.first_errors.push(e);
                }
            }
        }
    }
    r
}

fn queue_report(data_dir: &Path, label: &str) {
    println!(
        "  {label}: {}",
        store_report(&data_dir.join(photoboothd::store::DB_FILE))
    );
}

/// Returns the number of failed flows.
async fn flow_bench(bin: &Path, opts: &Options) -> u64 {
    println!(
        "== payment flows: {} workers for {:?} (generate-qr → CreateTransaction → PerformTransaction) ==",
        opts.workers, opts.duration
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut daemon = Daemon::spawn(bin, dir.path(), any, any);
    let info = daemon.process.wait_ready_blocking(START_LIMIT);
    let pid = daemon.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "  idle, 1 s after start, before any request: VmRSS {} KiB, threads {}",
        daemon.vm_rss_kib().unwrap_or(0),
        threads(pid).unwrap_or(0)
    );
    memory_breakdown(pid);

    let target = Rc::new(Target {
        kiosk: info.kiosk,
        webhook: info.webhook,
        auth: basic_header(KEY),
    });
    let started = Instant::now();
    let deadline = started + opts.duration;
    let disk = disk_name(&daemon.data_dir);
    let before = counters(pid, disk.as_deref());
    let done = Rc::new(Cell::new(false));
    let sampling = done.clone();
    let sampler = tokio::task::spawn_local(async move {
        let mut rss = Vec::new();
        let mut max_threads = 0;
        // Bounded by the run plus the slowest possible last flow (3 requests × the client's 30 s).
        let stop = deadline + Duration::from_secs(100);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while !sampling.get() && Instant::now() < stop {
            tick.tick().await;
            match vm_rss_kib(pid) {
                Some(kib) => rss.push(kib),
                None => break,
            }
            max_threads = max_threads.max(threads(pid).unwrap_or(0));
        }
        (rss, max_threads)
    });
    let handles: Vec<_> = (0..opts.workers)
        .map(|_| tokio::task::spawn_local(worker(target.clone(), deadline)))
        .collect();
    let mut total = WorkerResult::default();
    for h in handles {
        let r = h.await.expect("worker");
        total.flows.extend(r.flows);
        total.order.extend(r.order);
        total.create.extend(r.create);
        total.perform.extend(r.perform);
        total.errors += r.errors;
        total.first_errors.extend(r.first_errors);
    }
    let elapsed = started.elapsed();
    let after = counters(pid, disk.as_deref());
    done.set(true);
    let (rss, max_threads) = sampler.await.unwrap_or_default();
    let rss_after = daemon.vm_rss_kib().unwrap_or(0);

    let ok = total.flows.len();
    println!(
        "  flows ok {ok}, errors {}, in {:.2} s: {:.1} flows/s ({:.1} requests/s)",
        total.errors,
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        3.0 * ok as f64 / elapsed.as_secs_f64()
    );
    for e in &total.first_errors {
        println!("  error: {e}");
    }
    summary_ms("flow (3 requests)", &mut total.flows);
    summary_ms("  POST /api/generate-qr", &mut total.order);
    summary_ms("  CreateTransaction", &mut total.create);
    summary_ms("  PerformTransaction", &mut total.perform);
    let mut sorted = rss.clone();
    sorted.sort_unstable();
    if !sorted.is_empty() {
        println!(
            "  VmRSS during the run: min {} / p50 {} / max {} KiB over {} samples (every 250 ms); max threads {max_threads}",
            sorted[0],
            sorted[(sorted.len() - 1) / 2],
            sorted[sorted.len() - 1],
            sorted.len()
        );
        let step = (rss.len() / 10).max(1);
        let trace: Vec<String> = rss.iter().step_by(step).map(u64::to_string).collect();
        println!("  VmRSS trace (KiB): {}", trace.join(" "));
    }
    println!("  VmRSS right after the run: {rss_after} KiB");
    memory_breakdown(pid);
    report_counters(&before, &after, ok, disk.as_deref());
    queue_report(&daemon.data_dir, "right after the run");
    let stopped = daemon.stop();
    println!("  SIGTERM → exit {:.1} ms", ms(stopped));
    queue_report(&daemon.data_dir, "after the stop");
    let log = daemon.log_text();
    let warn = log.lines().filter(|l| l.contains(" WARN ")).count();
    let error = log.lines().filter(|l| l.contains(" ERROR ")).count();
    println!(
        "  daemon log: {} lines, {warn} WARN, {error} ERROR (config warnings at start are expected)",
        log.lines().count()
    );
    for line in log.lines().filter(|l| l.contains(" ERROR ")).take(3) {
        println!("    {line}");
    }
    total.errors
}

fn main() {
    let opts = options();
    let bin = bench_binary();
    startup_bench(&bin, opts.starts);
    run_local(flow_bench(&bin, &opts), "flows failed");
}
