//! `Merchant::handle` on arbitrary webhook bodies, with a fuzzed choice of `Authorization` header,
//! against a real SQLite store seeded with orders in every state (open, expired, paid, held by a
//! pending transaction, held past the 12-hour rule, refunded, re-payable after a cancel).
//!
//! Input: byte 0 picks the header (low 3 bits) and whether `[payme.fiscal]` is configured (bit 3);
//! with header choice 7, byte 1 is a length and that many raw bytes are the header. The rest is
//! the body.
//!
//! Checked on every input, besides "never panics":
//! - the reply is a JSON object with `id` and exactly one of `result` / `error`; `id` is the
//!   request's scalar `id` (null when the body is not a JSON object carrying one);
//! - an error has an integer `code` equal to `Reply::error_code`, a non-empty ru/uz/en `message`,
//!   and for account errors (-31050..-31099) a string `data`;
//! - without the right credentials the reply is -32504, with them it never is;
//! - the store keeps its invariants (a performed payment has a paid order and a paid print job,
//!   amounts match the order, every paid or refunded order has its transaction);
//! - an error reply wrote nothing, except the 12-hour expiry (state 1 → -1, reason 4).
//!
//! The clock is fixed and the database is put back to the seeded state after any input that
//! changed it, so every input runs against the same state and a crash reproduces alone.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use photoboothd::config::Fiscal;
use photoboothd::payme::auth::{basic_header, KeyRing};
use photoboothd::payme::Merchant;
use photoboothd::store::orders::{self, StoredStatus};
use photoboothd::store::transactions::{self, NewTx, TxState};
use photoboothd::store::{jobs, Store};
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::mpsc;

/// 2026-01-01T00:00:00Z: the merchant's "now" for every input.
const NOW: i64 = 1_767_225_600_000;
const KEY: &str = "Fuzz:KEY%&?@#!aBcDeFgHiJkLmNoPqRsTu";
const PRICE: i64 = 2_000_000;
const TTL_MS: i64 = 600_000;
const HOUR_MS: i64 = 3_600_000;
/// Known finding (fuzz/regressions/payme_request/float-id-not-echoed-exactly): an `id` beyond
/// u64, e.g. `{"id":9184467440730759515159}`, is parsed by serde_json's default (not correctly
/// rounded) float parser and echoed as `9.184467440730759e+21`, which reads back as a different
/// number (9.18446744073076e+21); the same holds for floats inside an `account` echoed by GetStatement.
/// While `true`, floats in a reply only have to survive the round trip to within 1e-15 relative.
/// Set to `false` once the daemon's serde_json has `float_roundtrip` (or ids are echoed as raw
/// text), so the regression input guards it.
const ALLOW_INEXACT_FLOATS: bool = false;

struct World {
    store: Arc<Store>,
    /// Our own read-write connection with the seeded snapshot attached as `snap`.
    reset: Mutex<Reset>,
    wake_tx: mpsc::Sender<i64>,
    wake_rx: Mutex<mpsc::Receiver<i64>>,
}

struct Reset {
    conn: Connection,
    tables: Vec<String>,
    data_version: i64,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// A fresh folder per process, in RAM when /dev/shm exists (the store fsyncs every commit).
/// libFuzzer exits without running destructors, so folders of processes that are gone are
/// removed here instead.
fn scratch_dir() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    const PREFIX: &str = "photoboothd-fuzz-payme-";
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(PREFIX) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Payme ids of the seeded transactions; the seed corpus uses the same ones.
pub fn seeded_payme_id(n: u32) -> String {
    format!("5305e3bab097f420{n:08x}")
}

fn seed(store: &Store) {
    store
        .write(|tx| {
            // 1, 2: open and payable (1 and 2 copies).
            orders::insert(tx, 1, PRICE, NOW, TTL_MS)?;
            orders::insert(tx, 2, PRICE, NOW, TTL_MS)?;
            // 3: open but its TTL has passed.
            orders::insert(tx, 1, PRICE, NOW - HOUR_MS, TTL_MS)?;
            // 4: paid, its job queued.
            let o4 = orders::insert(tx, 1, PRICE, NOW - 60_000, TTL_MS)?;
            let t4 = new_tx(tx, 4, o4.id, o4.amount_tiyin, NOW - 50_000)?;
            transactions::mark_performed(tx, t4, NOW - 40_000)?;
            orders::mark_paid(tx, o4.id, NOW - 40_000)?;
            jobs::insert_paid(tx, o4.id, o4.copies, NOW - 40_000)?;
            // 5: held by a pending transaction.
            let o5 = orders::insert(tx, 3, PRICE, NOW - 30_000, TTL_MS)?;
            new_tx(tx, 5, o5.id, o5.amount_tiyin, NOW - 20_000)?;
            // 6: a transaction cancelled before perform; the order is payable again.
            let o6 = orders::insert(tx, 1, PRICE, NOW - 30_000, TTL_MS)?;
            let t6 = new_tx(tx, 6, o6.id, o6.amount_tiyin, NOW - 25_000)?;
            transactions::mark_cancelled(tx, t6, TxState::CancelledBeforePerform, 3, NOW - 10_000)?;
            // 7: held by a pending transaction Payme created 13 hours ago (the 12-hour rule).
            let o7 = orders::insert(tx, 1, PRICE, NOW - 13 * HOUR_MS, 24 * HOUR_MS)?;
            new_tx(tx, 7, o7.id, o7.amount_tiyin, NOW - 13 * HOUR_MS)?;
            // 8: paid, then refunded; the job was cancelled.
            let o8 = orders::insert(tx, 2, PRICE, NOW - 90_000, TTL_MS)?;
            let t8 = new_tx(tx, 8, o8.id, o8.amount_tiyin, NOW - 80_000)?;
            transactions::mark_performed(tx, t8, NOW - 70_000)?;
            orders::mark_paid(tx, o8.id, NOW - 70_000)?;
            let job = jobs::insert_paid(tx, o8.id, o8.copies, NOW - 70_000)?;
            transactions::mark_cancelled(tx, t8, TxState::CancelledAfterPerform, 5, NOW - 5_000)?;
            orders::close(tx, o8.id, StoredStatus::Refunded, NOW - 5_000)?;
            tx.execute("UPDATE print_jobs SET status = 'cancelled' WHERE id = ?1", [job])?;
            Ok(())
        })
        .expect("seed the store");
}

fn new_tx(conn: &Connection, n: u32, order_id: i64, amount: i64, time: i64) -> rusqlite::Result<i64> {
    let account = format!(r#"{{"order_id":"{order_id}"}}"#);
    let payme_id = seeded_payme_id(n);
    let new = NewTx {
        payme_id: &payme_id,
        order_id,
        amount,
        account: &account,
        payme_time: time,
        // Seeded as Payme's own: the fuzzed statements and reports must see them.
        simulated: false,
    };
    Ok(transactions::insert(conn, &new, time + 100)?.id)
}

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        let dir = scratch_dir();
        let store = Store::open_in(&dir).expect("open the store");
        seed(&store);
        let db = store.path().to_path_buf();
        let snap = dir.join("snap.sqlite3");
        let conn = Connection::open(&db).expect("reset connection");
        conn.execute("VACUUM INTO ?1", [snap.to_string_lossy()])
            .expect("snapshot");
        conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA synchronous = OFF;")
            .expect("pragmas");
        conn.execute("ATTACH DATABASE ?1 AS snap", [snap.to_string_lossy()])
            .expect("attach the snapshot");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM snap.sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("tables");
        let data_version = data_version(&conn);
        let (wake_tx, wake_rx) = mpsc::channel(64);
        World {
            store: Arc::new(store),
            reset: Mutex::new(Reset {
                conn,
                tables,
                data_version,
            }),
            wake_tx,
            wake_rx: Mutex::new(wake_rx),
        }
    })
}

fn data_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        .expect("data_version")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Rows of `main.<table>` that the snapshot does not have.
fn changed_rows(conn: &Connection, table: &str) -> i64 {
    count(
        conn,
        &format!("SELECT count(*) FROM (SELECT * FROM main.\"{table}\" EXCEPT SELECT * FROM snap.\"{table}\")"),
    ) + count(
        conn,
        &format!("SELECT count(*) FROM (SELECT * FROM snap.\"{table}\" EXCEPT SELECT * FROM main.\"{table}\")"),
    )
}

fn check_store(reset: &Reset, error_reply: Option<i64>, reply: &Value) {
    let c = &reset.conn;
    let invariants = [
        (
            "a state-2 transaction whose order is not paid",
            "SELECT count(*) FROM payme_transactions t JOIN orders o ON o.id = t.order_id
             WHERE t.state = 2 AND o.status != 'paid'",
        ),
        (
            "a performed transaction without a paid print job",
            "SELECT count(*) FROM payme_transactions t WHERE t.perform_time > 0 AND NOT EXISTS
             (SELECT 1 FROM print_jobs j WHERE j.order_id = t.order_id AND j.kind = 'paid')",
        ),
        (
            "a transaction whose amount is not its order's",
            "SELECT count(*) FROM payme_transactions t JOIN orders o ON o.id = t.order_id
             WHERE t.amount != o.amount_tiyin",
        ),
        (
            "a paid order without a state-2 transaction",
            "SELECT count(*) FROM orders o WHERE o.status = 'paid' AND NOT EXISTS
             (SELECT 1 FROM payme_transactions t WHERE t.order_id = o.id AND t.state = 2)",
        ),
        (
            "a refunded order without a state -2 transaction",
            "SELECT count(*) FROM orders o WHERE o.status = 'refunded' AND NOT EXISTS
             (SELECT 1 FROM payme_transactions t WHERE t.order_id = o.id AND t.state = -2)",
        ),
        (
            "more than one live transaction for an order",
            "SELECT count(*) FROM (SELECT order_id FROM payme_transactions WHERE state IN (1, 2)
             GROUP BY order_id HAVING count(*) > 1)",
        ),
    ];
    for (what, sql) in invariants {
        assert_eq!(count(c, sql), 0, "store invariant broken: {what}; reply {reply}");
    }
    if let Some(code) = error_reply {
        // "A failed call changes nothing", except the lazy 12-hour expiry Payme expects.
        for table in &reset.tables {
            if table == "payme_transactions" {
                let bad = count(
                    c,
                    "SELECT count(*) FROM (SELECT * FROM main.payme_transactions
                     EXCEPT SELECT * FROM snap.payme_transactions) m
                     WHERE NOT (m.state = -1 AND m.reason = 4 AND EXISTS
                       (SELECT 1 FROM snap.payme_transactions s WHERE s.id = m.id AND s.state = 1))",
                );
                assert_eq!(bad, 0, "error reply {code} changed payme_transactions: {reply}");
            } else {
                assert_eq!(changed_rows(c, table), 0, "error reply {code} changed {table}: {reply}");
            }
        }
    }
}

fn restore(reset: &mut Reset) {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for table in &reset.tables {
        sql.push_str(&format!(
            "DELETE FROM main.\"{table}\"; INSERT INTO main.\"{table}\" SELECT * FROM snap.\"{table}\";"
        ));
    }
    sql.push_str("COMMIT;");
    reset.conn.execute_batch(&sql).expect("restore the seeded state");
    reset.data_version = data_version(&reset.conn);
}

/// The header to send and whether it carries the right credentials (`None`: not known a priori).
fn header(data: &[u8]) -> (Option<Vec<u8>>, Option<bool>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (None, Some(false), data);
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    match first & 7 {
        0 => (None, Some(false), rest),
        1..=3 => (Some(basic_header(KEY).into_bytes()), Some(true), rest),
        4 => (Some(basic_header("wrong").into_bytes()), Some(false), rest),
        5 => (
            Some(format!("  basic   {}  ", b64(&format!("Paycom:{KEY}"))).into_bytes()),
            Some(true),
            rest,
        ),
        6 => (Some(format!("Basic {}", b64(KEY)).into_bytes()), Some(false), rest),
        _ => {
            let Some((&n, rest)) = rest.split_first() else {
                return (Some(Vec::new()), Some(false), rest);
            };
            let n = usize::from(n).min(rest.len());
            (Some(rest[..n].to_vec()), None, &rest[n..])
        }
    }
}

/// Equal JSON; with `ALLOW_INEXACT_FLOATS`, non-integer numbers may differ in the last bits.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if ALLOW_INEXACT_FLOATS && (x.is_f64() || y.is_f64()) => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || ((x - y).abs() <= 1e-15 * x.abs().max(y.abs())),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn expected_id(body: &[u8]) -> Value {
    // The daemon reads a body after a UTF-8 byte order mark as the body without it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v
            .get("id")
            .filter(|id| !id.is_object() && !id.is_array())
            .cloned()
            .unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let fiscal = data.first().is_some_and(|b| b & 8 != 0).then(|| Fiscal {
        title: "Photo print".into(),
        ikpu: "10499001001000000".into(),
        package_code: "1501586".into(),
        vat_percent: 12,
        digital_ikpu: None,
        digital_title: None,
    });
    let (auth, known_ok, body) = header(data);
    // A fresh merchant per input: ChangePassword must not carry over to the next input.
    let merchant = Merchant::new(
        w.store.clone(),
        KeyRing::new(KEY.into(), KEY),
        "order_id".into(),
        fiscal,
        w.wake_tx.clone(),
    )
    .with_clock(Arc::new(|| NOW));
    let auth_ok = merchant.authorized(auth.as_deref());
    if let Some(known) = known_ok {
        assert_eq!(
            auth_ok,
            known,
            "credentials misjudged: {:?}",
            auth.as_deref().map(String::from_utf8_lossy)
        );
    }

    let reply = merchant.handle(body, auth.as_deref());

    // The webhook sends these bytes as they are: they must be JSON (and UTF-8) on their own.
    let text = std::str::from_utf8(&reply.body)
        .unwrap_or_else(|e| panic!("reply is not UTF-8 ({e}): {:?}", reply.body));
    let parsed = serde_json::from_str::<Value>(text)
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {text}"));
    let v = &parsed;
    let obj = v.as_object().unwrap_or_else(|| panic!("reply is not an object: {v}"));
    assert!(obj.contains_key("id"), "reply without id: {v}");
    assert_eq!(
        obj["id"],
        expected_id(body),
        "reply id does not echo the request's: {v}"
    );
    let (has_result, has_error) = (obj.contains_key("result"), obj.contains_key("error"));
    assert!(has_result != has_error, "reply needs exactly one of result/error: {v}");
    if has_error {
        let e = &obj["error"];
        let code = e["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("error without an integer code: {v}"));
        assert_eq!(
            reply.error_code,
            Some(code),
            "Reply::error_code disagrees with the body: {v}"
        );
        for lang in ["ru", "uz", "en"] {
            assert!(
                e["message"][lang].as_str().is_some_and(|s| !s.is_empty()),
                "error message without {lang}: {v}"
            );
        }
        if (-31099..=-31050).contains(&code) {
            assert!(e["data"].is_string(), "account error without the field in data: {v}");
        }
        if !auth_ok {
            assert_eq!(code, -32504, "unauthenticated request not refused with -32504: {v}");
        } else {
            assert_ne!(code, -32504, "the right key was refused: {v}");
        }
    } else {
        assert!(auth_ok, "an unauthenticated request got a result: {v}");
        assert_eq!(reply.error_code, None, "a result with an error code: {v}");
        assert!(obj["result"].is_object(), "result is not an object: {v}");
    }
    // Printing the parsed reply again must give back the same value (no float or key trouble).
    let received = serde_json::from_str::<Value>(&v.to_string()).expect("a Value prints as JSON");
    assert!(
        same_json(v, &received),
        "the reply does not survive a JSON round trip: {v} became {received}"
    );

    let mut wake = w.wake_rx.lock().unwrap_or_else(|p| p.into_inner());
    while wake.try_recv().is_ok() {}
    drop(wake);

    let mut reset = w.reset.lock().unwrap_or_else(|p| p.into_inner());
    if data_version(&reset.conn) != reset.data_version {
        check_store(&reset, reply.error_code, v);
        restore(&mut reset);
    }
});
