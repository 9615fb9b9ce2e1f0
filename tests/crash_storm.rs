//! A crash storm: many paid flows, several at a time, while the daemon is SIGKILLed at random
//! points (after random delays, right after a reply went out, while a job is printing, and while
//! it is still starting up) and started again. The "Payme side" behaves like Payme: it repeats
//! CreateTransaction and PerformTransaction with the same id and time until it gets a reply
//! (connection errors and -32400 are retried, any other reply is final), and remembers which
//! transactions it was told are performed. Afterwards, with the daemon left running, every one of
//! them must be performed in CheckTransaction and in SQLite, and printed exactly once in distinct
//! files; no order may be paid twice and the database must be sound.
//! See `docs/payme.md` (methods, repeats), and ARCHITECTURE.md "Invariants".
//!
//! Short by default. Long mode: `CRASH_STORM_ROUNDS=20 CRASH_STORM_ORDERS=200 cargo test --test
//! crash_storm -- --nocapture`; `CRASH_STORM_WORKERS` sets the concurrency and `CRASH_STORM_SEED`
//! replays a seed's choices (the timing of a real process can never be replayed exactly).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use photoboothd::client;
use photoboothd::daemon::RuntimeInfo;
use photoboothd::payme::auth::basic_header;
use serde_json::{json, Value};

/// The JSON-RPC id the Payme side uses; the same as `Daemon::rpc`, so replies compare whole.
const RPC_ID: i64 = 4242;
/// Prints the media counter starts with; the storm checks each printed job is counted once.
const CAPACITY: i64 = 100_000;

/// xorshift64*: small, seedable, good enough to pick delays and kill points.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so nearby seeds give unrelated streams and 0 is fine.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn ms(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.upto(max))
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

/// Prints the seed when the test fails, wherever it fails.
struct SeedReport(u64);

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\ncrash storm FAILED with seed {0}: rerun with CRASH_STORM_SEED={0} (the choices repeat; \
                 the timing of a real process does not)\n",
                self.0
            );
        }
    }
}

/// What the workers share with the killer.
struct Shared {
    /// The running daemon's (kiosk, webhook) addresses; stale while it restarts.
    addrs: Mutex<(SocketAddr, SocketAddr)>,
    /// Woken whenever any reply arrives, so the killer can strike right after one.
    replies: tokio::sync::Notify,
    next_order: AtomicUsize,
    orders: usize,
    finished_workers: AtomicUsize,
    seed: u64,
    round: usize,
    give_up_at: Instant,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    connection_errors: AtomicUsize,
    system_errors: AtomicUsize,
    orphan_orders: AtomicUsize,
    duplicate_performs: AtomicUsize,
    concurrent_duplicates: AtomicUsize,
}

impl Shared {
    fn kiosk(&self) -> SocketAddr {
        self.addrs.lock().unwrap().0
    }

    fn webhook(&self) -> SocketAddr {
        self.addrs.lock().unwrap().1
    }
}

/// A payment Payme was told is performed: its PerformTransaction got a successful reply.
#[derive(Debug, Clone)]
struct Paid {
    payme_id: String,
    order_id: i64,
    copies: u32,
    amount: i64,
    create: Value,
    perform_reply: Value,
}

/// The kiosk asks for an order until the daemon answers. A reply lost to a kill leaves an orphan
/// open order behind, exactly as a real kiosk would after a crash; it is never paid.
async fn kiosk_order(s: &Shared, rng: &mut Rng, copies: u32) -> Result<(i64, i64), String> {
    let body = json!({ "copies": copies }).to_string();
    let mut attempts = 0;
    loop {
        if Instant::now() > s.give_up_at {
            return Err("the kiosk never got an order".into());
        }
        let r = client::request(
            s.kiosk(),
            "POST",
            "/api/generate-qr",
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
        match r {
            Ok(r) if r.status == 200 => {
                s.replies.notify_waiters();
                let v = r
                    .json()
                    .map_err(|e| format!("generate-qr: not JSON ({e}): {:?}", r.body))?;
                if attempts > 0 {
                    s.stats.orphan_orders.fetch_add(1, Ordering::Relaxed);
                }
                return Ok((
                    v["order_id"].as_i64().ok_or(format!("generate-qr: {v}"))?,
                    v["amount_tiyin"].as_i64().ok_or(format!("generate-qr: {v}"))?,
                ));
            }
            Ok(r) => {
                return Err(format!(
                    "generate-qr answered HTTP {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ))
            }
            Err(_) => {
                attempts += 1;
                s.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(rng.ms(20) + Duration::from_millis(2)).await;
            }
        }
    }
}

/// One Merchant API call as Payme makes it: the same body again and again until a reply arrives.
/// A broken connection and -32400 are retried; any other reply is final. Anything but HTTP 200
/// with a JSON-RPC object echoing the id is a daemon fault.
async fn payme(s: &Shared, rng: &mut Rng, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({ "method": method, "params": params, "id": RPC_ID }).to_string();
    let auth = basic_header(KEY);
    loop {
        if Instant::now() > s.give_up_at {
            return Err(format!("{method} {params} never got a final reply"));
        }
        let r = client::request(
            s.webhook(),
            "POST",
            "/payme",
            &[("authorization", &auth), ("content-type", "text/json; charset=UTF-8")],
            body.clone(),
        )
        .await;
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                s.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(rng.ms(20) + Duration::from_millis(2)).await;
                continue;
            }
        };
        s.replies.notify_waiters();
        let v: Value = r
            .json()
            .map_err(|e| format!("{method}: reply is not JSON ({e}): {:?}", r.body))?;
        if r.status != 200 || v["id"] != RPC_ID {
            return Err(format!("{method}: HTTP {} (must be 200 echoing the id): {v}", r.status));
        }
        if v["error"]["code"] == -32400 {
            s.stats.system_errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(rng.ms(20) + Duration::from_millis(2)).await;
            continue;
        }
        return Ok(v);
    }
}

/// Usually one call; sometimes Payme's duplicate arrives while the first is still running (it
/// timed out on Payme's side): both must end with the identical reply.
async fn payme_maybe_twice(s: &Shared, rng: &mut Rng, method: &str, params: Value) -> Result<Value, String> {
    if !rng.percent(15) {
        return payme(s, rng, method, params).await;
    }
    let mut other = Rng::new(rng.next());
    let (a, b) = tokio::join!(
        payme(s, rng, method, params.clone()),
        payme(s, &mut other, method, params.clone())
    );
    let (a, b) = (a?, b?);
    if a != b {
        return Err(format!(
            "{method} {params}: concurrent duplicates were answered {a} and {b}"
        ));
    }
    s.stats.concurrent_duplicates.fetch_add(1, Ordering::Relaxed);
    Ok(a)
}

/// Takes orders off the shared counter and pays each one as Payme would.
async fn worker(s: Arc<Shared>, mut rng: Rng) -> Result<Vec<Paid>, String> {
    let mut paid = Vec::new();
    loop {
        let n = s.next_order.fetch_add(1, Ordering::Relaxed);
        if n >= s.orders {
            return Ok(paid);
        }
        let copies = 1 + rng.upto(2) as u32;
        let (order_id, amount) = kiosk_order(&s, &mut rng, copies).await?;
        if amount != PRICE_TIYIN * i64::from(copies) {
            return Err(format!("order {order_id}: {copies} copies cost {amount}"));
        }
        let acc = json!({ "order_id": order_id.to_string() });
        tokio::time::sleep(rng.ms(15)).await;

        let v = payme(
            &s,
            &mut rng,
            "CheckPerformTransaction",
            json!({ "amount": amount, "account": acc }),
        )
        .await?;
        if v["result"] != json!({ "allow": true }) {
            return Err(format!("order {order_id}: CheckPerformTransaction: {v}"));
        }

        // Unique per seed, round and order: 24 hex digits like Payme's ids.
        let payme_id = format!("{:08x}{:016x}", (s.round << 20) + n, s.seed);
        let time = now_ms();
        let create = json!({ "id": payme_id, "time": time, "amount": amount, "account": acc });
        let v = payme_maybe_twice(&s, &mut rng, "CreateTransaction", create.clone()).await?;
        if v["result"]["state"] != 1 {
            return Err(format!(
                "order {order_id}: CreateTransaction {create} got the final reply {v}"
            ));
        }
        let created = v["result"].clone();
        tokio::time::sleep(rng.ms(15)).await;

        let v = payme_maybe_twice(&s, &mut rng, "PerformTransaction", json!({ "id": payme_id })).await?;
        if v["result"]["state"] != 2 || v["result"]["transaction"] != created["transaction"] {
            return Err(format!(
                "order {order_id}: PerformTransaction {payme_id} got the final reply {v} (created {created})"
            ));
        }
        // From here on Payme considers the money moved and the merchant bound to print.
        paid.push(Paid {
            payme_id: payme_id.clone(),
            order_id,
            copies,
            amount,
            create: created,
            perform_reply: v.clone(),
        });

        // Payme (and its sandbox) repeats Perform: a repeat, maybe on a restarted daemon, must be
        // answered byte for byte as before.
        if rng.percent(20) {
            tokio::time::sleep(rng.ms(30)).await;
            let again = payme(&s, &mut rng, "PerformTransaction", json!({ "id": payme_id })).await?;
            if again != v {
                return Err(format!(
                    "order {order_id}: repeated PerformTransaction gave {again}, first {v}"
                ));
            }
            s.stats.duplicate_performs.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default, Debug)]
struct Kills {
    total: usize,
    random_delay: usize,
    right_after_reply: usize,
    while_printing: usize,
    during_start_up: usize,
    right_at_ready: usize,
}

/// Whether some job is between its claim and its result (the print loop is printing it).
fn job_printing(d: &Daemon) -> bool {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        d.data_dir().join(photoboothd::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return false;
    };
    db.query_row("SELECT count(*) FROM print_jobs WHERE status = 'printing'", [], |r| {
        r.get::<_, i64>(0)
    })
    .is_ok_and(|n| n > 0)
}

fn ready_pid(d: &Daemon) -> Option<u32> {
    RuntimeInfo::read(&d.data_dir()).map(|i| i.pid)
}

/// Kills the daemon at random points until every worker is done; leaves it running.
async fn storm(d: &mut Daemon, s: &Shared, workers: usize, rng: &mut Rng, start_ms: u64, kills: &mut Kills) {
    while s.finished_workers.load(Ordering::Acquire) < workers {
        match rng.upto(3) {
            0 => {
                tokio::time::sleep(rng.ms(300)).await;
                kills.random_delay += 1;
            }
            1 => {
                if tokio::time::timeout(Duration::from_millis(300), s.replies.notified())
                    .await
                    .is_ok()
                {
                    kills.right_after_reply += 1;
                }
            }
            2 => {
                let until = Instant::now() + Duration::from_millis(300);
                while Instant::now() < until && !job_printing(d) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if job_printing(d) {
                    kills.while_printing += 1;
                }
            }
            _ => {
                // A short life: killed soon after it became ready, before or while the print
                // loop rescans the queue.
                tokio::time::sleep(rng.ms(start_ms.max(5))).await;
                kills.random_delay += 1;
            }
        }
        d.kill();
        kills.total += 1;
        // Sometimes the next start is cut short too, at any point of the start-up (the first time
        // always, at once).
        let mut first_cut = kills.during_start_up == 0;
        while first_cut || rng.percent(30) {
            let before = ready_pid(d);
            let cut = if first_cut {
                Duration::ZERO
            } else {
                rng.ms(start_ms * 3 / 2 + 1)
            };
            first_cut = false;
            let completed = tokio::time::timeout(cut, d.restart()).await.is_ok();
            let got_ready = completed || ready_pid(d) != before;
            d.kill();
            kills.total += 1;
            if got_ready {
                kills.right_at_ready += 1;
            } else {
                kills.during_start_up += 1;
            }
        }
        d.restart().await;
        *s.addrs.lock().unwrap() = (d.kiosk, d.webhook);
    }
}

/// Waits until no paid job is left to print.
async fn wait_for_prints(d: &Daemon, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let printed = d.count("SELECT count(*) FROM print_jobs WHERE kind = 'paid' AND status = 'printed'");
        let total = d.count("SELECT count(*) FROM print_jobs");
        if printed as usize == expected && total as usize == expected {
            return;
        }
        if Instant::now() >= deadline {
            let db = d.db();
            let rows = |sql: &str| -> Vec<String> {
                let mut stmt = db.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join(" "))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            };
            panic!(
                "only {printed} of {expected} paid jobs printed ({total} jobs)\nunprinted jobs (id order status \
                 attempts error): {:?}\npaid orders without a job: {:?}\n{}",
                rows("SELECT id, order_id, status, attempts, last_error FROM print_jobs WHERE status <> 'printed'"),
                rows(
                    "SELECT id FROM orders o WHERE status = 'paid'
                     AND NOT EXISTS (SELECT 1 FROM print_jobs j WHERE j.order_id = o.id)"
                ),
                tail(&d.log(), 60)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `order-<id>-job-<job>-copy-<n>.png` → (order, job, copy).
fn parse_print(name: &str) -> Option<(i64, i64, u32)> {
    let rest = name.strip_prefix("order-")?.strip_suffix(".png")?;
    let (order, rest) = rest.split_once("-job-")?;
    let (job, copy) = rest.split_once("-copy-")?;
    Some((order.parse().ok()?, job.parse().ok()?, copy.parse().ok()?))
}

/// SQLite agrees with what Payme was told; returns each paid order's job id.
fn check_database(d: &Daemon, paid: &[Paid], by_order: &BTreeMap<i64, &Paid>) -> BTreeMap<i64, i64> {
    let db = d.db();
    // SQLite agrees: the performed transactions are exactly the told ones, nothing is half done.
    let mut performed = BTreeMap::new();
    let mut stmt = db
        .prepare("SELECT payme_id, order_id, amount, perform_time FROM payme_transactions WHERE state = 2")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?),
            ))
        })
        .unwrap();
    for row in rows {
        let (id, rest) = row.unwrap();
        performed.insert(id, rest);
    }
    let told: BTreeMap<String, (i64, i64, i64)> = paid
        .iter()
        .map(|p| {
            let t = p.perform_reply["result"]["perform_time"].as_i64().unwrap();
            (p.payme_id.clone(), (p.order_id, p.amount, t))
        })
        .collect();
    assert_eq!(performed, told, "state-2 transactions in SQLite vs what Payme was told");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM payme_transactions WHERE state <> 2"),
        0,
        "every created transaction was performed"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT order_id FROM payme_transactions WHERE state = 2
                                   GROUP BY order_id HAVING count(*) > 1)"
        ),
        0,
        "an order with two performed transactions"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM payme_transactions t WHERE state = 2 AND
               (SELECT count(*) FROM print_jobs j WHERE j.order_id = t.order_id AND j.kind = 'paid') <> 1"
        ),
        0,
        "a performed transaction without exactly one paid job"
    );
    // Paid orders are exactly the told ones, each with its one job of the order's copies.
    let mut stmt = db
        .prepare(
            "SELECT o.id, o.copies, o.paid_at, j.id, j.copies, j.status FROM orders o
             LEFT JOIN print_jobs j ON j.order_id = o.id WHERE o.status = 'paid' OR j.id IS NOT NULL",
        )
        .unwrap();
    let mut jobs_of = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<u32>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (order, copies, paid_at, job, job_copies, status) = row.unwrap();
        let p = by_order
            .get(&order)
            .unwrap_or_else(|| panic!("order {order} is paid or has a job, but Payme never paid it"));
        assert_eq!(copies, p.copies, "order {order}");
        assert_eq!(
            paid_at,
            p.perform_reply["result"]["perform_time"].as_i64(),
            "order {order}"
        );
        assert_eq!(
            (job_copies, status.as_deref()),
            (Some(copies), Some("printed")),
            "order {order}"
        );
        assert!(
            jobs_of.insert(order, job.unwrap()).is_none(),
            "order {order} has two jobs"
        );
    }
    assert_eq!(jobs_of.len(), paid.len());
    let unpaid_touched = count(
        "SELECT count(*) FROM orders WHERE status <> 'paid' AND (status <> 'open' OR paid_at IS NOT NULL
           OR id IN (SELECT order_id FROM payme_transactions))",
    );
    assert_eq!(unpaid_touched, 0, "an order Payme never paid changed");
    // Each printed job was counted once off the media counter, however often it was printed.
    let copies: i64 = paid.iter().map(|p| i64::from(p.copies)).sum();
    assert_eq!(count("SELECT remaining FROM media"), CAPACITY - copies, "media counter");
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    jobs_of
}

/// Everything the storm promised, checked against the running daemon, its database and its
/// print folder.
async fn verify(d: &Daemon, paid: &[Paid]) {
    // No order paid twice from the Payme side either: one told transaction per order.
    let mut by_order: BTreeMap<i64, &Paid> = BTreeMap::new();
    for p in paid {
        assert!(
            by_order.insert(p.order_id, p).is_none(),
            "order {} was paid twice: {paid:#?}",
            p.order_id
        );
    }
    wait_for_prints(d, paid.len()).await;

    // Every transaction Payme was told is performed is performed, with the times it was told, and
    // a repeat is still the identical reply.
    for p in paid {
        let v = d.rpc("CheckTransaction", json!({ "id": p.payme_id })).await;
        let told = &p.perform_reply["result"];
        assert_eq!(
            v["result"],
            json!({ "create_time": p.create["create_time"], "perform_time": told["perform_time"],
                    "cancel_time": 0, "transaction": p.create["transaction"], "state": 2, "reason": null }),
            "{p:?}"
        );
        let again = d.rpc("PerformTransaction", json!({ "id": p.payme_id })).await;
        assert_eq!(again, p.perform_reply, "{p:?}");
        let order = d.order(&p.order_id.to_string()).await;
        assert_eq!(order["status"], "printed", "{p:?}: {order}");
        assert_eq!(order["paid_at"], told["perform_time"], "{p:?}: {order}");
    }

    let jobs_of = check_database(d, paid, &by_order);

    // The print folder: each paid order has exactly `copies` distinct files, all of its one job
    // (a job caught mid-print prints again under the same names), and nothing else is there.
    let mut files: BTreeMap<i64, BTreeSet<(i64, u32)>> = BTreeMap::new();
    for name in d.prints() {
        let (order, job, copy) = parse_print(&name).unwrap_or_else(|| panic!("unexpected print file {name}"));
        files.entry(order).or_default().insert((job, copy));
    }
    for p in paid {
        let job = jobs_of[&p.order_id];
        let want: BTreeSet<(i64, u32)> = (1..=p.copies).map(|c| (job, c)).collect();
        assert_eq!(files.remove(&p.order_id), Some(want), "prints of order {}", p.order_id);
    }
    assert!(files.is_empty(), "prints of orders nobody paid: {files:?}");
    let leftovers: Vec<String> = std::fs::read_dir(d.data_dir().join("prints"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.ends_with(".png"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "half-written print files left behind: {leftovers:?}"
    );

    let log = d.log();
    assert!(!log.contains("panicked"), "{}", tail(&log, 80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_storm_every_told_payment_is_performed_and_printed_exactly_once() {
    let seed = std::env::var("CRASH_STORM_SEED")
        .ok()
        .map(|v| v.trim().parse::<u64>().expect("CRASH_STORM_SEED must be a u64"))
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
        });
    let _report = SeedReport(seed);
    let rounds = env_number("CRASH_STORM_ROUNDS", 2) as usize;
    let orders = env_number("CRASH_STORM_ORDERS", 40) as usize;
    let workers = env_number("CRASH_STORM_WORKERS", 4).max(1) as usize;
    eprintln!("crash storm: seed {seed}, {rounds} round(s) of {orders} orders, {workers} at a time");
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    let mut d = Daemon::start().await;
    d.printer_extra = format!("capacity = {CAPACITY}");
    let t = Instant::now();
    d.restart().await;
    // How long a start takes here, to aim kills inside it.
    let start_ms = (t.elapsed().as_millis() as u64).clamp(5, 2_000);

    let mut kills = Kills::default();
    let mut all_paid: Vec<Paid> = Vec::new();
    for round in 0..rounds {
        let shared = Arc::new(Shared {
            addrs: Mutex::new((d.kiosk, d.webhook)),
            replies: tokio::sync::Notify::new(),
            next_order: AtomicUsize::new(0),
            orders,
            finished_workers: AtomicUsize::new(0),
            seed,
            round,
            give_up_at: Instant::now() + Duration::from_secs(120 + orders as u64),
            stats: Stats::default(),
        });
        let mut tasks = Vec::new();
        for w in 0..workers {
            let s = shared.clone();
            let rng = Rng::new(seed ^ ((round as u64) << 40) ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9));
            tasks.push(tokio::spawn(async move {
                let result = worker(s.clone(), rng).await;
                s.finished_workers.fetch_add(1, Ordering::Release);
                result
            }));
        }
        storm(&mut d, &shared, workers, &mut rng, start_ms, &mut kills).await;
        for task in tasks {
            match task.await {
                Ok(Ok(paid)) => all_paid.extend(paid),
                Ok(Err(e)) => panic!("round {round}: {e}\n{}", tail(&d.log(), 80)),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        // The daemon is running again: everything told must be true and printed.
        verify(&d, &all_paid).await;
        let st = &shared.stats;
        eprintln!(
            "round {round}: {} paid so far; connection errors {}, -32400 {}, orphan orders {}, repeated performs {}, \
             concurrent duplicates {}",
            all_paid.len(),
            st.connection_errors.load(Ordering::Relaxed),
            st.system_errors.load(Ordering::Relaxed),
            st.orphan_orders.load(Ordering::Relaxed),
            st.duplicate_performs.load(Ordering::Relaxed),
            st.concurrent_duplicates.load(Ordering::Relaxed),
        );
    }
    assert_eq!(all_paid.len(), rounds * orders);
    let reprinted = d.count("SELECT count(*) FROM print_jobs WHERE may_have_printed = 1");
    eprintln!(
        "crash storm done in {:?}: {kills:?}; start-up ~{start_ms} ms; {reprinted} job(s) caught mid-print and \
         printed again",
        started.elapsed()
    );
    assert!(kills.total >= rounds, "the storm never killed the daemon: {kills:?}");
}
