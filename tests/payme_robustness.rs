//! Robustness of the real daemon: concurrent Payme duplicates, a SIGKILL right after a perform,
//! malformed and hostile webhook input, the kiosk API's input checks, and keys staying out of the
//! log. See `docs/payme.md` (transport, authentication, methods, error codes).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use common::*;
use photoboothd::client;
use photoboothd::payme::auth::basic_header;
use serde_json::{json, Value};

const TEXT_JSON: &str = "text/json; charset=UTF-8";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn rpc_body(method: &str, params: Value, id: Value) -> String {
    json!({ "method": method, "params": params, "id": id }).to_string()
}

/// POSTs raw bytes with the right key and `text/json`; asserts HTTP 200 and a JSON reply.
async fn post(d: &Daemon, body: impl Into<Vec<u8>>) -> Value {
    let auth = basic_header(KEY);
    post_with(d, &[("authorization", &auth), ("content-type", TEXT_JSON)], body).await
}

async fn post_with(d: &Daemon, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Value {
    let (status, v) = d.post_payme(headers, body).await;
    assert_eq!(status, 200, "every /payme reply is HTTP 200: {v}");
    v
}

/// Asserts a JSON-RPC error: the code, `data` when given, the echoed `id`, the three languages and
/// no `result`.
fn assert_error(v: &Value, code: i64, data: Option<Value>, id: &Value, what: &str) {
    assert_eq!(error_code(v), code, "{what}: {v}");
    if let Some(data) = data {
        assert_eq!(v["error"]["data"], data, "{what}: {v}");
    }
    assert_eq!(&v["id"], id, "{what}: the id must be echoed: {v}");
    assert!(v.get("result").is_none(), "{what}: {v}");
    for lang in ["ru", "uz", "en"] {
        assert!(
            v["error"]["message"][lang].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: message.{lang} missing: {v}"
        );
    }
}

/// Sends `body` (with the right key) and asserts the error reply and that nothing was written.
async fn refused(d: &Daemon, body: impl Into<Vec<u8>>, code: i64, data: Option<Value>, id: Value, what: &str) {
    let auth = basic_header(KEY);
    refused_with(
        d,
        &[("authorization", &auth), ("content-type", TEXT_JSON)],
        body,
        code,
        data,
        id,
        what,
    )
    .await;
}

/// Sends `body` and asserts -32600 naming the `member` at fault (`error.data`), `id` echoed, and
/// that nothing was written.
async fn refused_member(d: &Daemon, body: impl Into<Vec<u8>>, member: &str, id: i64, what: &str) {
    refused(d, body, -32600, Some(json!(member)), json!(id), what).await;
}

async fn refused_with(
    d: &Daemon,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
    code: i64,
    data: Option<Value>,
    id: Value,
    what: &str,
) {
    let before = d.snapshot();
    let v = post_with(d, headers, body).await;
    assert_error(&v, code, data, &id, what);
    assert_eq!(d.snapshot(), before, "{what}: a refused request wrote to the database");
}

/// The daemon still answers a normal CheckPerformTransaction, and nothing panicked.
async fn assert_still_sane(d: &Daemon, order: &str, amount: i64) {
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": amount, "account": account(order) }),
        )
        .await;
    assert_eq!(result(&v), &json!({ "allow": true }), "{v}");
    let log = d.log();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

/// Fires every body at /payme at once (one task and one connection each, released together by a
/// barrier) and returns each reply's HTTP status and raw bytes, in the order of `bodies`.
async fn burst(addr: SocketAddr, bodies: Vec<String>) -> Vec<(u16, Vec<u8>)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let auth = basic_header(KEY);
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let barrier = barrier.clone();
            let auth = auth.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let r = client::request(
                    addr,
                    "POST",
                    "/payme",
                    &[("authorization", &auth), ("content-type", TEXT_JSON)],
                    body,
                )
                .await
                .expect("webhook reachable");
                (r.status, r.body.to_vec())
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(handles.len());
    for h in handles {
        replies.push(h.await.expect("request task"));
    }
    replies
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Sends `body` (a `method` call) fifty times at once; asserts every reply is HTTP 200 and
/// byte-identical to the first, and returns that reply.
async fn fifty_identical_replies(d: &Daemon, method: &str, body: String) -> Value {
    let replies = burst(d.webhook, vec![body; 50]).await;
    assert!(replies.iter().all(|(status, _)| *status == 200));
    let first = &replies[0].1;
    for (i, (_, body)) in replies.iter().enumerate() {
        assert_eq!(
            body,
            first,
            "{method} reply {i} differs:\n{}\n{}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(first)
        );
    }
    parse(first)
}

fn prints_of(d: &Daemon, order: &str) -> Vec<String> {
    let prefix = format!("order-{order}-");
    d.prints().into_iter().filter(|n| n.starts_with(&prefix)).collect()
}

// ---------------------------------------------------------------------------------------------
// 1, 2. Concurrent duplicates.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_creates_then_performs_give_one_row_one_job_identical_replies() {
    let d = Daemon::start().await;
    let copies = 2;
    let (order, a) = d.new_order(copies).await;
    let id = payme_id(1);
    let create = rpc_body(
        "CreateTransaction",
        json!({ "id": id, "time": now_ms(), "amount": a, "account": account(&order) }),
        json!(77),
    );

    let created = fifty_identical_replies(&d, "CreateTransaction", create).await;
    assert_eq!(created["id"], 77);
    let r = result(&created).clone();
    assert_eq!(r["state"], 1, "{created}");
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 1);
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 0);

    let perform = rpc_body("PerformTransaction", json!({ "id": id }), json!(78));
    let performed = fifty_identical_replies(&d, "PerformTransaction", perform).await;
    let p = result(&performed).clone();
    assert_eq!(
        (p["state"].clone(), p["transaction"].clone()),
        (json!(2), r["transaction"].clone())
    );
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 1);
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 1);

    let printed = d.wait_for_status(&order, "printed").await;
    assert_eq!(printed["paid_at"], p["perform_time"]);
    assert_eq!(prints_of(&d, &order).len(), copies as usize, "{:?}", d.prints());
    assert_eq!(d.prints().len(), copies as usize);
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 1);
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(
        result(&v),
        &json!({ "create_time": r["create_time"], "perform_time": p["perform_time"], "cancel_time": 0,
                 "transaction": r["transaction"], "state": 2, "reason": null })
    );
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_with_different_ids_for_one_order_let_exactly_one_win() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;
    let time = now_ms();
    let ids: Vec<String> = (0..50).map(payme_id).collect();
    let bodies = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            rpc_body(
                "CreateTransaction",
                json!({ "id": id, "time": time, "amount": a, "account": account(&order) }),
                json!(i),
            )
        })
        .collect();

    let replies = burst(d.webhook, bodies).await;
    let mut winners = Vec::new();
    for (i, (status, body)) in replies.iter().enumerate() {
        assert_eq!(*status, 200);
        let v = parse(body);
        assert_eq!(v["id"], i, "{v}");
        if v.get("error").is_some() {
            assert_error(&v, -31008, None, &json!(i), "a losing CreateTransaction");
        } else {
            assert_eq!(v["result"]["state"], 1, "{v}");
            winners.push(i);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one CreateTransaction may hold the order: {winners:?}"
    );
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 1);
    let stored: String = d
        .db()
        .query_row("SELECT payme_id FROM payme_transactions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, ids[winners[0]]);
    assert_eq!(d.order(&order).await["status"], "awaiting_payment");
    // The winner can still be performed.
    let v = d.rpc("PerformTransaction", json!({ "id": ids[winners[0]] })).await;
    assert_eq!(result(&v)["state"], 2);
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL right after a perform.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_right_after_perform_still_prints_once_and_keeps_the_database_sound() {
    let mut d = Daemon::start().await;
    for round in 1..=3u64 {
        let copies = 3;
        let (order, a) = d.new_order(copies).await;
        let id = payme_id(round);
        let created = d
            .rpc(
                "CreateTransaction",
                json!({ "id": id, "time": now_ms(), "amount": a, "account": account(&order) }),
            )
            .await;
        let c = result(&created).clone();
        let performed = d.rpc("PerformTransaction", json!({ "id": id })).await;
        let p = result(&performed).clone();
        // SIGKILL the instant the reply arrives, then start again on the same files.
        d.restart().await;

        let printed = d.wait_for_status(&order, "printed").await;
        assert_eq!(printed["paid_at"], p["perform_time"], "round {round}");
        assert_eq!(
            prints_of(&d, &order).len(),
            copies as usize,
            "round {round}: {:?}",
            d.prints()
        );
        let jobs = d.count(&format!("SELECT count(*) FROM print_jobs WHERE order_id = {order}"));
        assert_eq!(jobs, 1, "round {round}");
        // What the reply promised survived the kill.
        let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
        assert_eq!(
            result(&v),
            &json!({ "create_time": c["create_time"], "perform_time": p["perform_time"], "cancel_time": 0,
                     "transaction": c["transaction"], "state": 2, "reason": null }),
            "round {round}"
        );
        // The repeat after the restart is still the identical reply.
        assert_eq!(&d.rpc("PerformTransaction", json!({ "id": id })).await, &performed);
    }
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 3);
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 3);
    let integrity: String = d.db().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

// ---------------------------------------------------------------------------------------------
// 4, 5. Bad input on /payme.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn content_type_is_ignored_valid_bodies_work_and_form_bodies_write_nothing() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;
    let auth = basic_header(KEY);
    let check = rpc_body(
        "CheckPerformTransaction",
        json!({ "amount": a, "account": account(&order) }),
        json!(5),
    );
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("application/octet-stream"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json"),
        Some("text/json"),
        Some(""),
        None,
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let before = d.snapshot();
        let v = post_with(&d, &headers, check.clone()).await;
        assert_eq!(
            result(&v),
            &json!({ "allow": true }),
            "content-type {content_type:?}: {v}"
        );
        assert_eq!(v["id"], 5);
        assert_eq!(d.snapshot(), before);
    }
    // The reply itself is JSON by its header too.
    let r = client::request(
        d.webhook,
        "POST",
        "/payme",
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        check.clone(),
    )
    .await
    .unwrap();
    let ct = r.content_type.unwrap_or_default();
    assert!(
        ct.starts_with("application/json") || ct.starts_with("text/json"),
        "{ct}"
    );

    // A form-encoded body is not JSON: -32700 with id null, whatever the header says, and no write.
    let form = format!("method=CreateTransaction&params%5Bid%5D={}&params%5Btime%5D={}&params%5Bamount%5D={a}&params%5Baccount%5D%5Border_id%5D={order}&id=1", payme_id(1), now_ms());
    for content_type in [Some("application/x-www-form-urlencoded"), None] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        refused_with(
            &d,
            &headers,
            form.clone(),
            -32700,
            None,
            Value::Null,
            &format!("form body, content-type {content_type:?}"),
        )
        .await;
    }

    // A valid Create under a form content type works too, and writes exactly its row.
    let id = payme_id(2);
    let v = post_with(
        &d,
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        rpc_body(
            "CreateTransaction",
            json!({ "id": id, "time": now_ms(), "amount": a, "account": account(&order) }),
            json!(6),
        ),
    )
    .await;
    assert_eq!(result(&v)["state"], 1, "{v}");
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 1);
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(result(&v)["state"], 1);
}

#[tokio::test]
async fn oversized_truncated_deep_and_non_utf8_bodies_are_refused_and_the_daemon_keeps_answering() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;

    // A 1 MB body: -32600 with the key, -32504 without; nothing read further, nothing written.
    let mut big = rpc_body(
        "CheckPerformTransaction",
        json!({ "amount": a, "account": account(&order), "pad": "" }),
        json!(1),
    )
    .into_bytes();
    let pad = big.len() - 3;
    big.splice(pad..pad, vec![b'x'; 1 << 20]);
    assert!(big.len() > 1 << 20);
    refused(&d, big.clone(), -32600, None, Value::Null, "1 MB body with the key").await;
    refused_with(
        &d,
        &[("content-type", TEXT_JSON)],
        big.clone(),
        -32504,
        None,
        Value::Null,
        "1 MB body without a key",
    )
    .await;
    refused_with(
        &d,
        &[("authorization", "Basic d3Jvbmc6d3Jvbmc="), ("content-type", TEXT_JSON)],
        big,
        -32504,
        None,
        Value::Null,
        "1 MB body with a wrong key",
    )
    .await;

    // Every strict prefix of a valid Create (including the empty body) is a parse error, id null.
    let create = rpc_body(
        "CreateTransaction",
        json!({ "id": payme_id(1), "time": now_ms(), "amount": a, "account": account(&order) }),
        json!(9),
    );
    let before = d.snapshot();
    for len in 0..create.len() {
        let v = post(&d, create.as_bytes()[..len].to_vec()).await;
        assert_error(&v, -32700, None, &Value::Null, &format!("prefix of {len} bytes"));
    }
    assert_eq!(d.snapshot(), before);

    // Deep nesting under the body limit: serde's recursion limit turns it into -32700.
    refused(&d, "[".repeat(60_000), -32700, None, Value::Null, "60 000 '['").await;
    refused(
        &d,
        "{\"a\":".repeat(12_000),
        -32700,
        None,
        Value::Null,
        "12 000 '{\"a\":'",
    )
    .await;
    let deep_valid = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    refused(
        &d,
        deep_valid,
        -32700,
        None,
        Value::Null,
        "well-formed 30 000-deep array",
    )
    .await;
    let deep_account = format!(
        r#"{{"method":"CheckPerformTransaction","params":{{"amount":{a},"account":{{"order_id":{}1{}}}}},"id":3}}"#,
        "[".repeat(1_000),
        "]".repeat(1_000)
    );
    refused(
        &d,
        deep_account,
        -32700,
        None,
        Value::Null,
        "deep value inside a valid envelope",
    )
    .await;
    // 100 000 '[' is over the 64 KiB body limit, so it is refused as too large before parsing.
    refused(&d, "[".repeat(100_000), -32600, None, Value::Null, "100 000 '['").await;

    // Invalid UTF-8, inside a string and outside one.
    let mut bad = rpc_body(
        "CheckPerformTransaction",
        json!({ "amount": a, "account": account(&order) }),
        json!(4),
    )
    .into_bytes();
    let at = bad.len() - 20;
    let mut in_string = bad.clone();
    let q = in_string.windows(8).position(|w| w == b"Transact").unwrap();
    in_string.splice(q..q, [0xff, 0xfe]);
    refused(&d, in_string, -32700, None, Value::Null, "invalid UTF-8 in a string").await;
    bad.splice(at..at, [0xc3, 0x28, 0xa0, 0xa1]);
    refused(&d, bad, -32700, None, Value::Null, "invalid UTF-8 bytes").await;
    refused(
        &d,
        vec![0xff, 0xfe, 0x00, 0x7b],
        -32700,
        None,
        Value::Null,
        "binary junk",
    )
    .await;

    assert_still_sane(&d, &order, a).await;
}

#[tokio::test]
async fn envelope_errors_get_32600_and_extra_fields_and_string_ids_are_fine() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;

    for body in ["[]", "[1,2]", "\"x\"", "42", "null", "true", "{}"] {
        let expected_code = -32600;
        refused(&d, body, expected_code, None, Value::Null, &format!("body {body}")).await;
    }
    let params = json!({ "amount": a, "account": account(&order) });
    for bad in [json!(null), json!([]), json!("x"), json!(42), json!([params.clone()])] {
        let body = json!({ "method": "CheckPerformTransaction", "params": bad, "id": 11 }).to_string();
        refused_member(&d, body, "params", 11, &format!("params {bad}")).await;
    }
    let body = json!({ "method": "CreateTransaction", "id": 12 }).to_string();
    refused_member(&d, body, "params", 12, "params missing").await;
    for bad in [
        json!(42),
        json!(null),
        json!(["CheckPerformTransaction"]),
        json!({ "name": "x" }),
    ] {
        let body = json!({ "method": bad, "params": params, "id": 13 }).to_string();
        refused_member(&d, body, "method", 13, &format!("method {bad}")).await;
    }
    let body = json!({ "params": params, "id": 14 }).to_string();
    refused_member(&d, body, "method", 14, "method missing").await;
    let body = json!({ "method": "checkPerformTransaction", "params": params, "id": 15 }).to_string();
    refused(
        &d,
        body,
        -32601,
        Some(json!("checkPerformTransaction")),
        json!(15),
        "method case",
    )
    .await;

    // A string id is echoed as is, on success and on error; so are integer ids at the edges.
    for id in [
        json!("abc-1"),
        json!(""),
        json!("4242"),
        json!("\u{444}\"\\"),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
    ] {
        let v = post(&d, rpc_body("CheckPerformTransaction", params.clone(), id.clone())).await;
        assert_eq!(result(&v), &json!({ "allow": true }));
        assert_eq!(v["id"], id, "{v}");
        let v = post(
            &d,
            rpc_body("CheckTransaction", json!({ "id": payme_id(3) }), id.clone()),
        )
        .await;
        assert_error(&v, -31003, None, &id, "string id on an error");
    }

    // Unknown members at the top level, in params and in account are tolerated.
    let body = json!({
        "jsonrpc": "2.0", "foo": 1, "error": null, "result": null,
        "method": "CheckPerformTransaction",
        "params": { "amount": a, "account": { "order_id": order, "phone": "998901234567" }, "foo": 1, "extra": { "x": [1] } },
        "id": 16,
    });
    let v = post(&d, body.to_string()).await;
    assert_eq!((result(&v), &v["id"]), (&json!({ "allow": true }), &json!(16)));
    let id = payme_id(4);
    let body = json!({
        "jsonrpc": "2.0", "foo": 1,
        "method": "CreateTransaction",
        "params": { "id": id, "time": now_ms(), "amount": a, "account": account(&order), "foo": 1 },
        "id": 17,
    });
    let v = post(&d, body.to_string()).await;
    assert_eq!(result(&v)["state"], 1, "{v}");
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 1);
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(result(&v)["state"], 1);

    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn mistyped_params_get_the_documented_codes_and_write_nothing() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(2).await;
    let time = now_ms();
    let id = payme_id(1);
    let acc = account(&order);
    let call = |method: &str, params: Value| rpc_body(method, params, json!(21));

    // Amounts: strings, negatives, zero, fractions, null, huge, missing → -31001, in Check and Create.
    for bad in [
        json!(a.to_string()),
        json!(-a),
        json!(-1),
        json!(0),
        json!(a as f64 + 0.5),
        json!(0.5),
        json!(null),
        json!(1e30),
        json!([a]),
        json!({ "value": a }),
    ] {
        let what = format!("amount {bad}");
        let body = call("CheckPerformTransaction", json!({ "amount": bad, "account": acc }));
        refused(&d, body, -31001, None, json!(21), &what).await;
        let body = call(
            "CreateTransaction",
            json!({ "id": id, "time": time, "amount": bad, "account": acc }),
        );
        refused(&d, body, -31001, None, json!(21), &what).await;
    }
    let body = call("CheckPerformTransaction", json!({ "account": acc }));
    refused(&d, body, -31001, None, json!(21), "amount missing").await;

    // time must be a positive integer.
    for bad in [
        json!(time.to_string()),
        json!("123"),
        json!(null),
        json!(0),
        json!(-5),
        json!(1.5),
    ] {
        let body = call(
            "CreateTransaction",
            json!({ "id": id, "time": bad, "amount": a, "account": acc }),
        );
        refused_member(&d, body, "time", 21, &format!("time {bad}")).await;
    }
    let body = call("CreateTransaction", json!({ "id": id, "amount": a, "account": acc }));
    refused_member(&d, body, "time", 21, "time missing").await;

    // The Payme id must be a string.
    for method in [
        "CheckTransaction",
        "PerformTransaction",
        "CancelTransaction",
        "CreateTransaction",
    ] {
        for bad in [json!(12345), json!(null), json!([id]), json!("")] {
            let body = call(
                method,
                json!({ "id": bad, "time": time, "amount": a, "account": acc, "reason": 1 }),
            );
            refused_member(&d, body, "id", 21, &format!("{method} id {bad}")).await;
        }
    }

    // account missing or not an object → -32600 "account".
    for method in ["CheckPerformTransaction", "CreateTransaction"] {
        for bad in [
            None,
            Some(json!(null)),
            Some(json!(order)),
            Some(json!([acc])),
            Some(json!(42)),
        ] {
            let mut params = json!({ "id": id, "time": time, "amount": a });
            if let Some(bad) = &bad {
                params["account"] = bad.clone();
            }
            let what = format!("{method} account {bad:?}");
            refused_member(&d, call(method, params), "account", 21, &what).await;
        }
        // An account without our field → an account error naming the field.
        for bad in [
            json!({ "phone": "998901234567" }),
            json!({}),
            json!({ "Order_id": order }),
            json!({ "order_id": "" }),
            json!({ "order_id": null }),
            json!({ "order_id": "999999" }),
            json!({ "order_id": format!(" {order}") }),
            json!({ "order_id": 1.5 }),
        ] {
            let body = call(method, json!({ "id": id, "time": time, "amount": a, "account": bad }));
            let before = d.snapshot();
            let v = post(&d, body).await;
            assert_error(
                &v,
                -31050,
                Some(json!("order_id")),
                &json!(21),
                &format!("{method} account {bad}"),
            );
            assert_eq!(d.snapshot(), before);
        }
    }

    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    assert_still_sane(&d, &order, a).await;
}

// ---------------------------------------------------------------------------------------------
// 4, 7. Authorization variants; keys never reach the log.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn authorization_variants_and_no_secret_in_the_log() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;
    let good = b64(&format!("Paycom:{KEY}"));
    assert_eq!(basic_header(KEY), format!("Basic {good}"));

    // The scheme is case-insensitive (RFC 7235 §2.1).
    let check = rpc_body(
        "CheckPerformTransaction",
        json!({ "amount": a, "account": account(&order) }),
        json!(31),
    );
    for header in [
        format!("basic {good}"),
        format!("BASIC {good}"),
        format!("Basic {good}"),
    ] {
        let v = post_with(
            &d,
            &[("authorization", &header), ("content-type", TEXT_JSON)],
            check.clone(),
        )
        .await;
        assert_eq!(result(&v), &json!({ "allow": true }), "{header}: {v}");
    }

    // Everything else is -32504 with HTTP 200, the id echoed, and no write (a Create would write).
    let create = rpc_body(
        "CreateTransaction",
        json!({ "id": payme_id(1), "time": now_ms(), "amount": a, "account": account(&order) }),
        json!(32),
    );
    let bad_headers = [
        format!("Basic {}", b64(&format!("Admin:{KEY}"))),
        format!("Basic {}", b64(&format!("Paycom:{KEY}\n"))),
        format!("Basic {}", b64(&format!("Paycom:{KEY}\r\n"))),
        format!("Basic {}", b64(&format!("Paycom:{KEY} "))),
        format!("Basic {}", b64(&format!("Paycom:{}", &KEY[..KEY.len() - 1]))),
        format!("Basic {}", b64(&format!("Paycom:{KEY}x"))),
        format!("Basic {}", b64(KEY)),
        format!("Basic {}", b64(&format!(":{KEY}"))),
        format!("Basic {}", b64("Paycom:")),
        format!("Basic {}", b64(&format!("Paycom:{}", KEY.replace('%', "%25")))),
        format!("Bearer {good}"),
        format!("Basic{good}"),
        format!("Basic {KEY}"),
        format!("Basic Paycom:{KEY}"),
        "Basic".to_string(),
        "Basic ".to_string(),
        "Basic !!!not-base64".to_string(),
        String::new(),
    ];
    for header in &bad_headers {
        refused_with(
            &d,
            &[("authorization", header), ("content-type", TEXT_JSON)],
            create.clone(),
            -32504,
            None,
            json!(32),
            &format!("authorization {header:?}"),
        )
        .await;
    }
    refused_with(
        &d,
        &[("content-type", TEXT_JSON)],
        create.clone(),
        -32504,
        None,
        json!(32),
        "no header",
    )
    .await;
    // Auth comes before parsing: garbage without a key is -32504 too.
    refused_with(&d, &[], "{\"method\":", -32504, None, Value::Null, "bad JSON, no key").await;
    assert_still_sane(&d, &order, a).await;
    let v = post(&d, create).await;
    assert_eq!(result(&v)["state"], 1, "the right key still works: {v}");

    let log = d.log();
    assert!(log.contains("-32504"), "auth failures are logged:\n{log}");
    for secret in [
        KEY.to_string(),
        good.clone(),
        b64(&format!("Admin:{KEY}")),
        b64(&format!("Paycom:{KEY}\n")),
    ] {
        assert!(!log.contains(&secret), "the log contains {secret:?}:\n{log}");
    }
    // Not even a long piece of the key.
    assert!(!log.contains(&KEY[5..25]), "{log}");
}

// ---------------------------------------------------------------------------------------------
// 6. The kiosk API.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kiosk_api_validates_copies_and_serves_orders_and_qr_pngs() {
    let d = Daemon::start().await;

    for body in [
        r#"{"copies": 0}"#,
        r#"{"copies": 11}"#,
        r#"{"copies": -1}"#,
        r#"{"copies": "2"}"#,
        r#"{"copies": 2.5}"#,
        r#"{"copies": null}"#,
        r#"{"copies": [2]}"#,
        r#"{"copies": 4294967297}"#,
        r#"{"copies": 18446744073709551617}"#,
        r#"{}"#,
        r#"{"Copies": 2}"#,
        r#"{"copies": 2"#,
        r#"[2]"#,
        r#"2"#,
        "",
        "copies=2",
    ] {
        let (status, v) = d.kiosk("POST", "/api/generate-qr", body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{body}: {v}");
        assert_eq!(d.count("SELECT count(*) FROM orders"), 0, "{body}");
    }

    for path in [
        "/api/orders/999999",
        "/api/orders/abc",
        "/api/orders/0",
        "/api/orders/-1",
        "/api/orders/1.0",
        "/api/orders/999999/qr.png",
        "/api/orders/abc/qr.png",
        "/api/nope",
    ] {
        let (status, v) = d.kiosk("GET", path, "").await;
        assert_eq!(status, 404, "{path}: {v}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }

    for copies in [1u32, 3, 10] {
        let (status, v) = d
            .kiosk("POST", "/api/generate-qr", &json!({ "copies": copies }).to_string())
            .await;
        assert_eq!(status, 200, "{v}");
        let id = v["order_id"].as_i64().unwrap();
        assert!(id > 0);
        assert_eq!(v["copies"], copies);
        let amount = v["amount"].as_i64().unwrap();
        assert_eq!(amount, 20_000 * i64::from(copies));
        let tiyin = v["amount_tiyin"].as_i64().unwrap();
        assert_eq!(tiyin, amount * 100);
        assert_eq!(tiyin, PRICE_TIYIN * i64::from(copies));
        assert_eq!(v["status"], "awaiting_payment");
        let url = v["checkout_url"].as_str().unwrap();
        let tail = url
            .strip_prefix("https://test.paycom.uz/")
            .unwrap_or_else(|| panic!("{url}"));
        let decoded = base64::engine::general_purpose::STANDARD.decode(tail).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            format!("m=587f72c72cac0d162c722ae2;ac.order_id={id};a={tiyin};l=uz")
        );
        assert_eq!(v["qr_png"], format!("/api/orders/{id}/qr.png"));
        let created = v["created_at"].as_i64().unwrap();
        assert_eq!(v["expires_at"].as_i64().unwrap(), created + 600_000);
        assert!((created - now_ms()).abs() < 60_000, "{v}");

        // GET returns the same order.
        let got = d.order(&id.to_string()).await;
        for field in [
            "order_id",
            "copies",
            "amount",
            "amount_tiyin",
            "checkout_url",
            "qr_png",
            "created_at",
            "expires_at",
        ] {
            assert_eq!(got[field], v[field], "{field}");
        }

        let r = client::request(d.kiosk, "GET", v["qr_png"].as_str().unwrap(), &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type.as_deref(), Some("image/png"));
        let img = image::load_from_memory_with_format(&r.body, image::ImageFormat::Png).expect("a PNG");
        assert_eq!(img.width(), img.height(), "the QR is square");
        assert!(img.width() >= 100, "{}", img.width());
    }
    assert_eq!(d.count("SELECT count(*) FROM orders"), 3);
    assert!(!d.log().contains("panicked"), "{}", d.log());
}
