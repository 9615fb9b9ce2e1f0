//! The last CheckPerformTransaction answers, so that the same question asked again while nothing
//! has been written is answered without a store read and without a second journal line.
//!
//! Why this is safe to keep beside the record: only an *allowed* order is remembered, and only
//! until the store's generation moves (any write of this process) or `FRESH_FOR` passes (a write
//! by another process, which the generation does not see). Check writes nothing and promises
//! nothing: Create re-checks the order in the database inside its own write, so a reuse that
//! another process made stale for under a second costs Payme at most an error on Create, never a
//! payment the booth cannot honour. Every refusal comes from the store, with its log line.
//!
//! Why it is worth having: the store read and the journal line were each as costly as the whole
//! HTTP request (BENCHMARKS.md, issue 17), and Payme repeats a Check while the customer looks at
//! the app. The clock-dependent rules (the order's expiry, the delivery gate) are asked again on
//! every reuse.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::Order;

/// How long an answer may be reused even if this process wrote nothing: bounds how long a write by
/// another process (`photoboothd pay`) can go unseen, and gives a storm of Checks one journal line
/// a second.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Payme asks about one order at a time per customer; a few cover every screen of a booth.
const MAX_ORDERS: usize = 8;

#[derive(Default)]
pub struct RecentChecks(Mutex<Recent>);

/// An order the store allowed, with the result Check answered for it, serialised: sent again as
/// it is (the result depends only on the order and the merchant's fiscal settings).
pub struct Allowed {
    pub order: Order,
    pub result_json: Vec<u8>,
}

#[derive(Default)]
struct Recent {
    /// The store generation every entry was read at.
    generation: u64,
    orders: Vec<(Arc<Allowed>, Instant)>,
}

impl RecentChecks {
    /// The answer last allowed for `order_id` and `amount`, if the store has not been written since
    /// (`generation` is the store's now) and the answer is fresh.
    pub fn get(&self, order_id: i64, amount: i64, generation: u64) -> Option<Arc<Allowed>> {
        let recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if recent.generation != generation {
            return None;
        }
        recent
            .orders
            .iter()
            .find(|(a, at)| a.order.id == order_id && a.order.amount_tiyin == amount && at.elapsed() < FRESH_FOR)
            .map(|(a, _)| a.clone())
    }

    /// Remembers that `allowed.order` was allowed by a read that began at store generation
    /// `generation`.
    pub fn put(&self, allowed: Allowed, generation: u64) {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if generation < recent.generation {
            // Read before a write that another reuse has already seen: already stale.
            return;
        }
        if generation > recent.generation {
            recent.generation = generation;
            recent.orders.clear();
        }
        recent
            .orders
            .retain(|(a, at)| a.order.id != allowed.order.id && at.elapsed() < FRESH_FOR);
        if recent.orders.len() >= MAX_ORDERS {
            recent.orders.remove(0);
        }
        recent.orders.push((Arc::new(allowed), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::orders::{self, StoredStatus};

    fn allowed(id: i64) -> Allowed {
        Allowed {
            order: orders::sample(id, StoredStatus::Open),
            result_json: br#"{"allow":true}"#.to_vec(),
        }
    }

    #[test]
    fn an_answer_is_reused_only_for_the_same_order_amount_and_generation() {
        let recent = RecentChecks::default();
        recent.put(allowed(7), 3);
        assert_eq!(recent.get(7, 200, 3).map(|a| a.order.id), Some(7));
        assert!(recent.get(7, 201, 3).is_none(), "another amount");
        assert!(recent.get(8, 200, 3).is_none(), "another order");
        assert!(recent.get(7, 200, 4).is_none(), "a write since");
    }

    #[test]
    fn a_read_older_than_the_remembered_ones_is_not_kept_and_a_newer_one_drops_them() {
        let recent = RecentChecks::default();
        recent.put(allowed(7), 5);
        recent.put(allowed(8), 4);
        assert!(recent.get(8, 200, 4).is_none());
        assert!(recent.get(8, 200, 5).is_none());
        recent.put(allowed(9), 6);
        assert!(recent.get(7, 200, 6).is_none());
        assert!(recent.get(9, 200, 6).is_some());
    }

    #[test]
    fn an_answer_goes_stale_after_a_second_even_without_a_write() {
        let recent = RecentChecks::default();
        recent.put(allowed(7), 1);
        let long_ago = Instant::now().checked_sub(FRESH_FOR).unwrap();
        recent.0.lock().unwrap().orders[0].1 = long_ago;
        assert!(recent.get(7, 200, 1).is_none());
    }

    #[test]
    fn at_most_a_few_orders_are_remembered() {
        let recent = RecentChecks::default();
        for id in 1..=MAX_ORDERS as i64 + 1 {
            recent.put(allowed(id), 1);
        }
        assert!(recent.get(1, 200, 1).is_none(), "the oldest went");
        assert!(recent.get(MAX_ORDERS as i64 + 1, 200, 1).is_some());
        assert_eq!(recent.0.lock().unwrap().orders.len(), MAX_ORDERS);
    }
}
