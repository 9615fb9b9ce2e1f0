use photoboothd::payme::{
    auth::{basic_header, KeyRing},
    Merchant, Prepared,
};
use photoboothd::store::{orders, Store};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_in(dir.path()).unwrap());
    let now = photoboothd::clock::now_ms();
    let o = store.write(|c| orders::insert(c, 1, 2_000_000, now, 600_000)).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let key = "Bench:KEY%&?@#!aBcDeFgHiJkLmNoPqRsT".to_string();
    let m = Merchant::new(store, KeyRing::new(key.clone(), &key), "order_id".into(), None, tx);
    let body = format!("{{\"method\":\"CheckPerformTransaction\",\"params\":{{\"amount\":{},\"account\":{{\"order_id\":\"{}\"}}}},\"id\":1}}", o.amount_tiyin, o.id);
    let auth = basic_header(&key);
    let n = 300_000;
    for round in 0..3 {
        let t = Instant::now();
        let mut len = 0;
        for _ in 0..n {
            assert!(m.authorized(Some(auth.as_bytes())));
            let call = match m.prepare_authorized(body.as_bytes()) {
                Prepared::Call(c) => c,
                Prepared::Done(_) => panic!(),
            };
            let r = m.call_in_place(&call).unwrap();
            len += serde_json::to_vec(&r.body).unwrap().len();
        }
        println!(
            "round {round}: {:.0} ns per request ({len})",
            t.elapsed().as_nanos() as f64 / n as f64
        );
    }
}
