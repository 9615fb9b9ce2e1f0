//! `photoboothd pay ORDER_ID`: a development tool that plays Payme's side of a payment against the
//! running daemon's webhook, with the key the daemon itself uses, and prints every reply. It goes
//! through exactly the code path a real payment takes, but its transaction id carries
//! `SIMULATED_PREFIX`: the daemon accepts it only while the checkout is Payme's sandbox and stores
//! it as simulated, outside GetStatement, reports and metrics.

use serde_json::{json, Value};

use crate::client;
use crate::clock;
use crate::config::Config;
use crate::daemon::RuntimeInfo;
use crate::payme::methods::SIMULATED_PREFIX;
use crate::payme::{auth, checkout};
use crate::store::{orders, Store, DB_FILE};

pub async fn pay(config: Config, order_id: i64, force: bool) -> Result<(), String> {
    if !checkout::is_sandbox(&config.payme.checkout_base) {
        if !force {
            return Err(format!(
                "payme.checkout_base is {}, not Payme's sandbox (https://{}): `pay` only simulates payments for development and tests. Use --force to try anyway",
                config.payme.checkout_base,
                checkout::SANDBOX_HOST
            ));
        }
        println!("warning: checkout is not the sandbox; the daemon refuses simulated payments unless its own checkout is the sandbox");
    }
    let data_dir = config.data_dir();
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        return Err(format!(
            "no database at {}: is the daemon running with this configuration?",
            db.display()
        ));
    }
    let store = Store::open(&db).map_err(|e| e.to_string())?;
    let configured = auth::configured_key_with(&config, &data_dir, false).map_err(|e| e.to_string())?;
    let (key, _) = store
        .read(|c| auth::effective_key(c, &configured.key))
        .map_err(|e| e.to_string())?;
    let order = store
        .read(|c| orders::get(c, order_id))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("order {order_id} does not exist in {}", db.display()))?;
    drop(store);

    let mut webhook = RuntimeInfo::read(&data_dir)
        .map(|r| r.webhook)
        .unwrap_or(config.http.webhook_listen);
    if webhook.ip().is_unspecified() {
        webhook.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let field = &config.payme.account_field;
    let payme_id = random_payme_id()?;
    let account = json!({ field.as_str(): order_id.to_string() });
    let header = auth::basic_header(&key);
    let steps = [
        (
            "CheckPerformTransaction",
            json!({ "amount": order.amount_tiyin, "account": account }),
        ),
        (
            "CreateTransaction",
            json!({ "id": payme_id, "time": clock::now_ms(), "amount": order.amount_tiyin, "account": account }),
        ),
        ("PerformTransaction", json!({ "id": payme_id })),
    ];
    println!(
        "paying order {order_id}: {} tiyin, Payme transaction {payme_id}, webhook http://{webhook}/payme",
        order.amount_tiyin
    );
    for (i, (method, params)) in steps.into_iter().enumerate() {
        let body = json!({ "jsonrpc": "2.0", "id": i + 1, "method": method, "params": params }).to_string();
        let response = client::request(
            webhook,
            "POST",
            "/payme",
            &[
                ("authorization", header.as_str()),
                ("content-type", "text/json; charset=UTF-8"),
            ],
            body,
        )
        .await
        .map_err(|e| format!("cannot reach the daemon's webhook at {webhook}: {e} (is photoboothd running?)"))?;
        let reply: Value = response
            .json()
            .map_err(|e| format!("{method}: the reply is not JSON: {e}"))?;
        println!("{method}: {reply}");
        if let Some(error) = reply.get("error") {
            return Err(format!("{method} failed with code {}", error["code"]));
        }
    }
    println!("order {order_id} is paid (simulated: no report or metric counts it); the print loop has its job");
    Ok(())
}

/// The simulated prefix and 24 lowercase hex characters (the shape of Payme's own ids).
fn random_payme_id() -> Result<String, String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{SIMULATED_PREFIX}{hex}"))
}
