//! The sandbox checklist of `docs/payme.md`, case by case, against the real
//! daemon. Case numbers in the comments are the checklist's.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn assert_account_error(v: &Value) {
    let code = error_code(v);
    assert!((-31099..=-31050).contains(&code), "{v}");
    assert_eq!(v["error"]["data"], "order_id", "{v}");
    for lang in ["ru", "uz", "en"] {
        assert!(
            v["error"]["message"][lang].as_str().is_some_and(|s| !s.is_empty()),
            "{v}"
        );
    }
}

#[tokio::test]
async fn scenario_a_create_and_cancel_an_unconfirmed_transaction() {
    let d = Daemon::start().await;
    let (o1, a) = d.new_order(1).await;
    let t = now_ms();
    let (t1, t2) = (payme_id(1), payme_id(2));

    // 1. Wrong key, then no header at all: -32504 with HTTP 200, for every method.
    for method in [
        "CheckPerformTransaction",
        "CreateTransaction",
        "PerformTransaction",
        "CheckTransaction",
        "GetStatement",
    ] {
        let v = d
            .rpc_with_key("wrong", method, json!({ "amount": a, "account": account(&o1) }))
            .await;
        assert_eq!(error_code(&v), -32504, "{method}: {v}");
    }
    let body =
        json!({ "method": "CheckPerformTransaction", "params": { "amount": a, "account": account(&o1) }, "id": 1 });
    let (status, v) = d.post_payme(&[], body.to_string()).await;
    assert_eq!((status, error_code(&v), v["id"].clone()), (200, -32504, json!(1)));

    // 2. Wrong amount → -31001.
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a + 100, "account": account(&o1) }),
        )
        .await;
    assert_eq!(error_code(&v), -31001);
    // 3. Create with the wrong amount → -31001 and no row.
    let v = d.create_at(&t1, t, a + 100, &o1).await;
    assert_eq!(error_code(&v), -31001);
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    // 4. Unknown order → account error with data "order_id" and three languages.
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a, "account": account("999999") }),
        )
        .await;
    assert_account_error(&v);
    // 5. Create on an unknown order → the same.
    let v = d.create_at(&t1, t, a, "999999").await;
    assert_account_error(&v);
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    // 6. The right order and amount → allow.
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a, "account": account(&o1) }),
        )
        .await;
    assert_eq!(result(&v), &json!({ "allow": true }));
    // 7. Create.
    let create = json!({ "id": t1, "time": t, "amount": a, "account": account(&o1) });
    let v7 = d.rpc("CreateTransaction", create.clone()).await;
    let r7 = result(&v7).clone();
    assert_eq!(r7["state"], 1);
    assert!(r7["transaction"].is_string());
    let c1 = r7["create_time"].as_i64().unwrap();
    assert!(c1 >= t);
    // 8. The repeat returns the identical result, even later.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v8 = d.rpc("CreateTransaction", create.clone()).await;
    assert_eq!(result(&v8), &r7);
    // 9. CheckTransaction.
    let v = d.rpc("CheckTransaction", json!({ "id": t1 })).await;
    assert_eq!(
        result(&v),
        &json!({ "create_time": c1, "perform_time": 0, "cancel_time": 0, "transaction": r7["transaction"], "state": 1, "reason": null })
    );
    assert_eq!(d.order(&o1).await["status"], "awaiting_payment");
    // 10. Another transaction for the held order → -31008.
    let v = d.create_at(&t2, t, a, &o1).await;
    assert_eq!(error_code(&v), -31008);
    // 11. Cancel with reason 3.
    let v11 = d.rpc("CancelTransaction", json!({ "id": t1, "reason": 3 })).await;
    let r11 = result(&v11).clone();
    assert_eq!(
        (r11["transaction"].clone(), r11["state"].clone()),
        (r7["transaction"].clone(), json!(-1))
    );
    let k1 = r11["cancel_time"].as_i64().unwrap();
    // 12. The repeat is identical.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v12 = d.rpc("CancelTransaction", json!({ "id": t1, "reason": 3 })).await;
    assert_eq!(result(&v12), &r11);
    // 13. CheckTransaction after the cancel.
    let v = d.rpc("CheckTransaction", json!({ "id": t1 })).await;
    assert_eq!(
        result(&v),
        &json!({ "create_time": c1, "perform_time": 0, "cancel_time": k1, "transaction": r7["transaction"], "state": -1, "reason": 3 })
    );
    // A cancel before perform leaves the order payable (until its TTL) by a new transaction.
    assert_eq!(d.order(&o1).await["status"], "awaiting_payment");
    let v = d.create_at(&t2, now_ms(), a, &o1).await;
    assert_eq!(result(&v)["state"], 1);
    // Nothing was printed for a cancelled transaction.
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 0);
}

#[tokio::test]
async fn scenario_b_create_perform_then_refund() {
    let d = Daemon::start().await;
    let (o2, a) = d.new_order(2).await;
    assert_eq!(a, 2 * PRICE_TIYIN);
    let t = now_ms();
    let (t3, t4) = (payme_id(3), payme_id(4));

    // 14.
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a, "account": account(&o2) }),
        )
        .await;
    assert_eq!(result(&v)["allow"], true);
    // 15, 16.
    let create = json!({ "id": t3, "time": t, "amount": a, "account": account(&o2) });
    let v15 = d.rpc("CreateTransaction", create.clone()).await;
    let r15 = result(&v15).clone();
    assert_eq!(r15["state"], 1);
    let v16 = d.rpc("CreateTransaction", create).await;
    assert_eq!(result(&v16), &r15);
    // 17.
    let v = d.rpc("CheckTransaction", json!({ "id": t3 })).await;
    assert_eq!(result(&v)["state"], 1);
    // 18. A second transaction for the same order → -31008.
    let v = d.create_at(&t4, t, a, &o2).await;
    assert_eq!(error_code(&v), -31008);
    // 19. Perform: state 2, the order is paid, one print job.
    let v19 = d.rpc("PerformTransaction", json!({ "id": t3 })).await;
    let r19 = result(&v19).clone();
    assert_eq!(
        (r19["state"].clone(), r19["transaction"].clone()),
        (json!(2), r15["transaction"].clone())
    );
    let p3 = r19["perform_time"].as_i64().unwrap();
    // 20. The repeat keeps the stored perform_time.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v20 = d.rpc("PerformTransaction", json!({ "id": t3 })).await;
    assert_eq!(result(&v20), &r19);
    // The print loop prints both copies.
    let printed = d.wait_for_status(&o2, "printed").await;
    assert_eq!(printed["paid_at"], p3);
    assert_eq!(d.prints().len(), 2);
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 1);
    // 21.
    let v = d.rpc("CheckTransaction", json!({ "id": t3 })).await;
    let c3 = r15["create_time"].clone();
    assert_eq!(
        result(&v),
        &json!({ "create_time": c3, "perform_time": p3, "cancel_time": 0, "transaction": r15["transaction"], "state": 2, "reason": null })
    );
    // The paid order cannot be paid again.
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a, "account": account(&o2) }),
        )
        .await;
    assert_eq!(error_code(&v), -31008);
    // 22, 23. Refund succeeds with state -2, and repeats identically.
    let v22 = d.rpc("CancelTransaction", json!({ "id": t3, "reason": 5 })).await;
    let r22 = result(&v22).clone();
    assert_eq!(r22["state"], -2);
    let k3 = r22["cancel_time"].as_i64().unwrap();
    let v23 = d.rpc("CancelTransaction", json!({ "id": t3, "reason": 5 })).await;
    assert_eq!(result(&v23), &r22);
    // 24.
    let v = d.rpc("CheckTransaction", json!({ "id": t3 })).await;
    assert_eq!(
        result(&v),
        &json!({ "create_time": c3, "perform_time": p3, "cancel_time": k3, "transaction": r15["transaction"], "state": -2, "reason": 5 })
    );
    assert_eq!(d.order(&o2).await["status"], "refunded");
    // A refunded order is not payable again.
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a, "account": account(&o2) }),
        )
        .await;
    assert_account_error(&v);
}

#[tokio::test]
async fn a_refund_before_printing_stops_the_job() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;
    // Perform and refund inside one burst: whichever wins, the job never prints after the refund.
    let id = d.pay(&order, a).await;
    result(&d.rpc("CancelTransaction", json!({ "id": id, "reason": 5 })).await);
    let status: String = d
        .db()
        .query_row(
            "SELECT status FROM print_jobs WHERE order_id = ?1",
            [order.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        status == "cancelled" || status == "printed" || status == "printing",
        "{status}"
    );
    assert_eq!(d.order(&order).await["status"], "refunded");
}

#[tokio::test]
async fn case_25_26_unknown_ids_and_cancelled_transactions() {
    let d = Daemon::start().await;
    let unknown = payme_id(404);
    for (method, params) in [
        ("PerformTransaction", json!({ "id": unknown })),
        ("CancelTransaction", json!({ "id": unknown, "reason": 1 })),
        ("CheckTransaction", json!({ "id": unknown })),
    ] {
        assert_eq!(error_code(&d.rpc(method, params).await), -31003, "{method}");
    }
    // 26. Perform on a cancelled transaction → -31008, and nothing changes.
    let (order, a) = d.new_order(1).await;
    let t1 = payme_id(1);
    d.create_tx(&t1, &order, a).await;
    result(&d.rpc("CancelTransaction", json!({ "id": t1, "reason": 2 })).await);
    let before = d.snapshot();
    assert_eq!(
        error_code(&d.rpc("PerformTransaction", json!({ "id": t1 })).await),
        -31008
    );
    // A repeated Create of a cancelled transaction → -31008 too.
    let v = d.create_at(&t1, now_ms(), a, &order).await;
    assert_eq!(error_code(&v), -31008);
    assert_eq!(d.snapshot(), before);
}

#[tokio::test]
async fn case_27_get_statement_is_inclusive_ascending_and_skips_failed_creates() {
    let d = Daemon::start().await;
    let (o1, a1) = d.new_order(1).await;
    let (o2, a2) = d.new_order(2).await;
    let base = now_ms() - 10_000;
    let (t1, t3, bad) = (payme_id(1), payme_id(3), payme_id(5));
    // Created out of order: the statement sorts by Payme's time, not ours.
    result(&d.create_at(&t3, base + 200, a2, &o2).await);
    result(&d.create_at(&t1, base + 100, a1, &o1).await);
    // A failed create leaves no trace in the statement.
    let v = d.create_at(&bad, base + 150, 1, &o1).await;
    assert_eq!(error_code(&v), -31001);
    result(&d.rpc("CancelTransaction", json!({ "id": t1, "reason": 3 })).await);
    d.perform_tx(&t3).await;
    result(&d.rpc("CancelTransaction", json!({ "id": t3, "reason": 5 })).await);

    let v = d
        .rpc("GetStatement", json!({ "from": base + 100, "to": base + 200 }))
        .await;
    let txs = result(&v)["transactions"].as_array().unwrap().clone();
    assert_eq!(txs.len(), 2, "{v}");
    assert_eq!(
        (txs[0]["id"].clone(), txs[0]["state"].clone(), txs[0]["reason"].clone()),
        (json!(t1), json!(-1), json!(3))
    );
    assert_eq!(
        (txs[1]["id"].clone(), txs[1]["state"].clone(), txs[1]["reason"].clone()),
        (json!(t3), json!(-2), json!(5))
    );
    assert_eq!(txs[0]["time"], base + 100);
    assert_eq!(txs[0]["account"], account(&o1));
    assert_eq!(txs[1]["amount"], a2);
    for tx in &txs {
        // A statement item is what CheckTransaction says and the transaction's own details.
        for field in ["id", "time", "amount", "account", "receivers"]
            .into_iter()
            .chain(CHECK_FIELDS)
        {
            assert!(tx.get(field).is_some(), "{field} missing in {tx}");
        }
        // The statement agrees with CheckTransaction.
        let check = d.rpc("CheckTransaction", json!({ "id": tx["id"] })).await;
        for field in CHECK_FIELDS {
            assert_eq!(check["result"][field], tx[field], "{field}");
        }
    }
    // Inclusive bounds: a window of exactly one timestamp finds that transaction.
    let v = d
        .rpc("GetStatement", json!({ "from": base + 200, "to": base + 200 }))
        .await;
    assert_eq!(result(&v)["transactions"].as_array().unwrap().len(), 1);
    // An empty window.
    let v = d
        .rpc("GetStatement", json!({ "from": base - 1000, "to": base - 1 }))
        .await;
    assert_eq!(result(&v), &json!({ "transactions": [] }));
}

#[tokio::test]
async fn case_28_29_unknown_method_bad_json_and_non_post() {
    let d = Daemon::start().await;
    let v = d.rpc("Foo", json!({})).await;
    assert_eq!((error_code(&v), v["error"]["data"].clone()), (-32601, json!("Foo")));

    let auth = photoboothd::payme::auth::basic_header(KEY);
    let (status, v) = d
        .post_payme(&[("authorization", &auth)], "{\"method\": \"CheckTransaction\", ")
        .await;
    assert_eq!((status, error_code(&v), v["id"].clone()), (200, -32700, Value::Null));

    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = photoboothd::client::request(d.webhook, method, "/payme", &[("authorization", &auth)], Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(error_code(&r.json().unwrap()), -32300, "{method}");
    }
    // Any other path on the webhook listener does not exist.
    let r = photoboothd::client::request(d.webhook, "POST", "/api/generate-qr", &[], "{}")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn case_30_the_twelve_hour_rule() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;
    const TWELVE_H: i64 = 43_200_000;

    // A Create whose Payme time is already over 12 hours old is refused and writes nothing.
    let before = d.snapshot();
    let v = d.create_at(&payme_id(1), now_ms() - TWELVE_H - 1_000, a, &order).await;
    assert_eq!(error_code(&v), -31008);
    assert_eq!(d.snapshot(), before);

    // A transaction created 1.5 s before its 12 hours run out expires while we wait.
    let id = payme_id(2);
    let create = json!({ "id": id, "time": now_ms() - TWELVE_H + 1_500, "amount": a, "account": account(&order) });
    result(&d.rpc("CreateTransaction", create.clone()).await);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(
        error_code(&d.rpc("PerformTransaction", json!({ "id": id })).await),
        -31008
    );
    let v = d.rpc("CheckTransaction", json!({ "id": id })).await;
    assert_eq!(
        (result(&v)["state"].clone(), result(&v)["reason"].clone()),
        (json!(-1), json!(4))
    );
    assert!(result(&v)["cancel_time"].as_i64().unwrap() > 0);
    // The repeated Create of the expired transaction → -31008.
    assert_eq!(error_code(&d.rpc("CreateTransaction", create).await), -31008);
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 0);

    // The same lazy expiry applies when the repeat is a Create.
    let (order2, a2) = d.new_order(1).await;
    let id2 = payme_id(3);
    let create2 = json!({ "id": id2, "time": now_ms() - TWELVE_H + 1_500, "amount": a2, "account": account(&order2) });
    result(&d.rpc("CreateTransaction", create2.clone()).await);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(error_code(&d.rpc("CreateTransaction", create2).await), -31008);
    let v = d.rpc("CheckTransaction", json!({ "id": id2 })).await;
    assert_eq!(result(&v)["reason"], 4);
}

/// The old key is refused (-32504, `why`) and `new_key` is let in (a transaction it does not know:
/// -31003).
async fn only_the_new_key_works(d: &Daemon, new_key: &str, why: &str) {
    let v = d.rpc("CheckTransaction", json!({ "id": payme_id(1) })).await;
    assert_eq!(error_code(&v), -32504, "{why}");
    let v = d
        .rpc_with_key(new_key, "CheckTransaction", json!({ "id": payme_id(1) }))
        .await;
    assert_eq!(error_code(&v), -31003);
}

#[tokio::test]
async fn case_32_change_password_takes_effect_at_once_and_survives_a_restart() {
    let mut d = Daemon::start().await;
    let new_key = "NewKey&%!#@?:zzzzzzzzzzzzzzzzzzzzzzzz";
    let v = d.rpc("ChangePassword", json!({ "password": new_key })).await;
    assert_eq!(result(&v), &json!({ "success": true }));
    only_the_new_key_works(&d, new_key, "the old key must stop working at once").await;

    d.restart().await;
    only_the_new_key_works(&d, new_key, "the old key must stay dead after a restart").await;
    assert!(
        !d.log().contains(new_key) && !d.log().contains(KEY),
        "a key reached the log"
    );

    // An empty password is refused and changes nothing.
    let v = d
        .rpc_with_key(new_key, "ChangePassword", json!({ "password": "" }))
        .await;
    assert_eq!(
        (error_code(&v), v["error"]["data"].clone()),
        (-32600, json!("password"))
    );
}

#[tokio::test]
async fn case_33_set_fiscal_data_is_stored_per_transaction_and_type() {
    let d = Daemon::start().await;
    let (order, a) = d.new_order(1).await;
    let id = d.pay(&order, a).await;
    let fiscal = json!({ "receipt_id": 42, "status_code": 0, "message": "accepted", "terminal_id": "EP000000000025",
                         "fiscal_sign": "123456789012", "qr_code_url": "https://ofd.soliq.uz/check?t=EP", "date": "20261127182301" });
    for kind in ["PERFORM", "CANCEL", "PERFORM"] {
        let v = d
            .rpc(
                "SetFiscalData",
                json!({ "id": id, "type": kind, "fiscal_data": fiscal }),
            )
            .await;
        assert_eq!(result(&v), &json!({ "success": true }));
    }
    assert_eq!(d.count("SELECT count(*) FROM fiscal_receipts"), 2);
    let v = d
        .rpc(
            "SetFiscalData",
            json!({ "id": id, "type": "REFUND", "fiscal_data": fiscal }),
        )
        .await;
    assert_eq!((error_code(&v), v["error"]["data"].clone()), (-32600, json!("type")));
    let v = d
        .rpc(
            "SetFiscalData",
            json!({ "id": payme_id(2), "type": "PERFORM", "fiscal_data": fiscal }),
        )
        .await;
    assert_eq!(error_code(&v), -31003);
}

#[tokio::test]
async fn check_perform_sends_the_fiscal_detail_when_configured() {
    let d = Daemon::start_with(
        "[payme.fiscal]\ntitle = \"Photo print\"\nikpu = \"10305008002000000\"\npackage_code = \"1545643\"\nvat_percent = 12\n",
    )
    .await;
    let (order, a) = d.new_order(3).await;
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": a, "account": account(&order) }),
        )
        .await;
    let detail = &result(&v)["detail"];
    assert_eq!(detail["receipt_type"], 0);
    let item = &detail["items"][0];
    assert_eq!(item["price"], PRICE_TIYIN);
    assert_eq!(item["count"], 3);
    assert_eq!(item["code"], "10305008002000000");
    assert_eq!(item["package_code"], "1545643");
    assert_eq!(item["vat_percent"], 12);
    assert_eq!(item["price"].as_i64().unwrap() * item["count"].as_i64().unwrap(), a);
}
