//! Event mode: a prepaid party where guests print for free. Decides which event runs (the config's
//! `[booth] mode = "event"`, or one the owner started from the service menu, which outlives
//! restarts and takes precedence), how many prints it has left, and makes its free orders: no
//! Payme order, status `event`, amount 0, the print job queued in the same commit.

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::digital::{attach_link, Links};
use crate::store::events::{self, Event, NewEvent};
use crate::store::{jobs, orders, Order, Store, StoreError};

/// The running event as the kiosk, the service menu and `Health` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventInfo {
    pub id: i64,
    pub title: String,
    pub date: String,
    /// 0 = no cap.
    pub max_prints: u32,
    /// Copies ordered so far (printed or still queued): what counts against the cap.
    pub prints_used: i64,
    /// `None` without a cap.
    pub prints_left: Option<u32>,
    pub source: String,
    pub started_at: i64,
    pub keep_days: u32,
}

impl EventInfo {
    fn new(event: &Event, prints_used: i64) -> EventInfo {
        let prints_left = (event.max_prints > 0).then(|| {
            let left = i64::from(event.max_prints) - prints_used;
            u32::try_from(left.max(0)).unwrap_or(0)
        });
        EventInfo {
            id: event.id,
            title: event.title.clone(),
            date: event.date.clone(),
            max_prints: event.max_prints,
            prints_used,
            prints_left,
            source: event.source.clone(),
            started_at: event.started_at,
            keep_days: event.keep_days,
        }
    }

    /// The cap is reached: the booth shows "event over".
    pub fn over(&self) -> bool {
        self.prints_left == Some(0)
    }
}

/// What the service menu starts an event with.
#[derive(Debug, Clone)]
pub struct StartEvent {
    pub title: String,
    pub date: String,
    pub max_prints: u32,
}

/// Why an event order was not made.
#[derive(Debug)]
pub enum EventOrderError {
    /// No event runs.
    NoEvent,
    /// More copies asked for than the event has left.
    NotEnoughLeft {
        left: u32,
    },
    Store(StoreError),
}

impl From<StoreError> for EventOrderError {
    fn from(e: StoreError) -> Self {
        EventOrderError::Store(e)
    }
}

impl From<rusqlite::Error> for EventOrderError {
    fn from(e: rusqlite::Error) -> Self {
        EventOrderError::Store(StoreError::Sqlite(e))
    }
}

/// A new event's gallery token: a download token (`/d/<token>`), like an order's link.
fn gallery_token() -> Result<String, StoreError> {
    crate::digital::new_token().map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))
}

/// The running event with its counts, read from `conn`.
pub fn load(conn: &rusqlite::Connection) -> rusqlite::Result<Option<EventInfo>> {
    let Some(event) = events::current(conn)? else {
        return Ok(None);
    };
    let used = events::prints_ordered(conn, event.id)?;
    Ok(Some(EventInfo::new(&event, used)))
}

/// At start-up: `mode = "event"` runs the config's event (kept, with its counts, across restarts,
/// and following edits of `[event]`); `mode = "paid"` ends an event the config had started. An
/// event started from the service menu runs until it is stopped there, whatever the mode.
pub fn sync_with_config(store: &Store, config: &Config, now: i64) -> Result<Option<EventInfo>, StoreError> {
    let token = gallery_token()?;
    let e = &config.event;
    store.write(|tx| {
        let current = events::current(tx)?;
        match (config.booth.mode, current) {
            (_, Some(ev)) if ev.source == "service" => {}
            (Mode::Event, Some(ev)) => events::update(tx, ev.id, &e.title, &e.date, e.max_prints, e.keep_days)?,
            (Mode::Event, None) => {
                let new = NewEvent {
                    title: &e.title,
                    date: &e.date,
                    max_prints: e.max_prints,
                    keep_days: e.keep_days,
                    source: "config",
                    token: &token,
                };
                let ev = events::start(tx, &new, now)?;
                tracing::info!(
                    event_id = ev.id,
                    max_prints = ev.max_prints,
                    "event mode: event started from the config"
                );
            }
            (Mode::Paid, Some(ev)) => {
                events::end_current(tx, now)?;
                tracing::info!(event_id = ev.id, "event ended: the config is back in paid mode");
            }
            (Mode::Paid, None) => {}
        }
        load(tx)
    })
}

/// Starts an event from the service menu (ending any other). Blocking.
pub fn start(store: &Store, config: &Config, req: &StartEvent, now: i64) -> Result<EventInfo, StoreError> {
    let token = gallery_token()?;
    let info = store.write(|tx| {
        let new = NewEvent {
            title: &req.title,
            date: &req.date,
            max_prints: req.max_prints,
            keep_days: config.event.keep_days,
            source: "service",
            token: &token,
        };
        let ev = events::start(tx, &new, now)?;
        Ok(EventInfo::new(&ev, 0))
    })?;
    Ok(info)
}

/// Ends the running event; the booth is back in paid mode. Blocking.
pub fn stop(store: &Store, now: i64) -> Result<Option<i64>, StoreError> {
    store.write(|tx| events::end_current(tx, now))
}

/// A free order of the running event for `copies`, with its print job, in one commit; linked to
/// the kiosk session when there is one, and then given its download link by the same
/// `digital::attach_link` a paid order gets at PerformTransaction (`links`: `[digital]`). The cap
/// is checked inside the same write, so two orders can never both take the last print.
pub fn create_order(
    store: &Store,
    copies: u32,
    session_id: Option<i64>,
    links: Option<Links>,
    now: i64,
) -> Result<(Order, i64, EventInfo), EventOrderError> {
    store
        .write(|tx| {
            let Some(info) = load(tx)? else {
                return Ok(Err(EventOrderError::NoEvent));
            };
            if let Some(left) = info.prints_left {
                if copies > left {
                    return Ok(Err(EventOrderError::NotEnoughLeft { left }));
                }
            }
            let order = orders::insert_event(tx, copies, info.id, now)?;
            if let Some(id) = session_id {
                tx.execute(
                    "UPDATE sessions SET order_id = ?2 WHERE id = ?1",
                    rusqlite::params![id, order.id],
                )?;
            }
            attach_link(tx, &order, links, now)?;
            let job = jobs::insert_paid(tx, order.id, copies, now)?;
            let after = load(tx)?.unwrap_or(info);
            Ok(Ok((order, job, after)))
        })
        .map_err(EventOrderError::Store)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: &str, max_prints: u32) -> Config {
        let text = crate::config::DEFAULT_TOML
            .replace("mode = \"paid\"", &format!("mode = \"{mode}\""))
            .replace("max_prints = 0", &format!("max_prints = {max_prints}"));
        Config::parse(&text, "x.toml").unwrap()
    }

    #[test]
    fn the_cap_counts_ordered_copies_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let info = sync_with_config(&store, &config("event", 3), 1).unwrap().unwrap();
        assert_eq!(info.prints_left, Some(3));
        let (order, _, after) = create_order(&store, 2, None, None, 2).unwrap();
        assert_eq!((order.amount_tiyin, order.event_id), (0, Some(info.id)));
        assert_eq!(after.prints_left, Some(1));
        assert!(matches!(
            create_order(&store, 2, None, None, 3),
            Err(EventOrderError::NotEnoughLeft { left: 1 })
        ));
        let (_, _, after) = create_order(&store, 1, None, None, 4).unwrap();
        assert!(after.over());
        // A restart keeps the event and its count.
        let again = sync_with_config(&store, &config("event", 3), 5).unwrap().unwrap();
        assert_eq!((again.id, again.prints_left), (info.id, Some(0)));
        // Back to paid: the config's event ends.
        assert_eq!(sync_with_config(&store, &config("paid", 3), 6).unwrap(), None);
        assert!(matches!(
            create_order(&store, 1, None, None, 7),
            Err(EventOrderError::NoEvent)
        ));
    }

    #[test]
    fn an_event_from_the_service_menu_outlives_a_paid_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let c = config("paid", 0);
        let req = StartEvent {
            title: "A & B".into(),
            date: "01.01.2027".into(),
            max_prints: 10,
        };
        let started = start(&store, &c, &req, 1).unwrap();
        let after_restart = sync_with_config(&store, &c, 2).unwrap().unwrap();
        assert_eq!((after_restart.id, after_restart.title.as_str()), (started.id, "A & B"));
        assert_eq!(stop(&store, 3).unwrap(), Some(started.id));
        assert_eq!(sync_with_config(&store, &c, 4).unwrap(), None);
    }
}
