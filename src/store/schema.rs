//! Versioned schema migrations. `PRAGMA user_version` records how many have been applied; each runs
//! once, in order, inside one transaction, so a crash mid-migration leaves the previous version.

use rusqlite::{Connection, OptionalExtension};

/// Each entry moves the schema from version `i` to `i + 1`. Append only: never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: orders, Payme transactions, fiscal receipts, print jobs, settings.
    r#"
    CREATE TABLE orders (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        copies               INTEGER NOT NULL CHECK (copies > 0),
        price_per_copy_tiyin INTEGER NOT NULL CHECK (price_per_copy_tiyin > 0),
        amount_tiyin         INTEGER NOT NULL CHECK (amount_tiyin > 0),
        -- open: payable or held by a live transaction; the rest are final.
        status               TEXT NOT NULL DEFAULT 'open'
                             CHECK (status IN ('open', 'paid', 'refunded', 'cancelled')),
        created_at           INTEGER NOT NULL,
        expires_at           INTEGER NOT NULL,
        paid_at              INTEGER,
        closed_at            INTEGER
    );

    -- `id` is the merchant-side `transaction` string given back to Payme.
    CREATE TABLE payme_transactions (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        payme_id     TEXT NOT NULL UNIQUE,
        order_id     INTEGER NOT NULL REFERENCES orders (id),
        amount       INTEGER NOT NULL,
        account      TEXT NOT NULL,          -- the account object exactly as Payme sent it
        payme_time   INTEGER NOT NULL,       -- Payme's creation time: GetStatement and the 12 h rule
        create_time  INTEGER NOT NULL,
        perform_time INTEGER NOT NULL DEFAULT 0,
        cancel_time  INTEGER NOT NULL DEFAULT 0,
        state        INTEGER NOT NULL CHECK (state IN (1, 2, -1, -2)),
        reason       INTEGER
    );
    -- The invariant "one live transaction per order", enforced by the database itself.
    CREATE UNIQUE INDEX payme_transactions_one_live_per_order
        ON payme_transactions (order_id) WHERE state IN (1, 2);
    CREATE INDEX payme_transactions_by_payme_time ON payme_transactions (payme_time);
    CREATE INDEX payme_transactions_by_order ON payme_transactions (order_id);

    CREATE TABLE fiscal_receipts (
        payme_id    TEXT NOT NULL,
        type        TEXT NOT NULL CHECK (type IN ('PERFORM', 'CANCEL')),
        fiscal_data TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (payme_id, type)
    );

    CREATE TABLE print_jobs (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id   INTEGER NOT NULL REFERENCES orders (id),
        kind       TEXT NOT NULL DEFAULT 'paid' CHECK (kind IN ('paid', 'reprint', 'test')),
        copies     INTEGER NOT NULL CHECK (copies > 0),
        status     TEXT NOT NULL
                   CHECK (status IN ('queued', 'printing', 'printed', 'failed', 'cancelled')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    -- "A performed payment has exactly one print job": reprints are separate kinds.
    CREATE UNIQUE INDEX print_jobs_one_paid_per_order ON print_jobs (order_id) WHERE kind = 'paid';
    CREATE INDEX print_jobs_by_status ON print_jobs (status, id);

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: print retries with backoff, "may have printed", and the media counter.
    r#"
    ALTER TABLE print_jobs ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
    -- Set once a failure hit mid-job: paper may have come out, so a retry may duplicate a print.
    ALTER TABLE print_jobs ADD COLUMN may_have_printed INTEGER NOT NULL DEFAULT 0;
    DROP INDEX print_jobs_by_status;
    CREATE INDEX print_jobs_by_status ON print_jobs (status, next_attempt_at, id);

    -- One row: prints left on the roll or pack the owner last loaded.
    CREATE TABLE media (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        capacity   INTEGER NOT NULL,
        remaining  INTEGER NOT NULL,
        loaded_at  INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    "#,
    // 3: kiosk sessions; an order may belong to one.
    r#"
    CREATE TABLE sessions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        stage         TEXT NOT NULL,
        shots_total   INTEGER NOT NULL,
        shots_taken   INTEGER NOT NULL DEFAULT 0,
        retakes_used  INTEGER NOT NULL DEFAULT 0,
        order_id      INTEGER REFERENCES orders (id),
        error_code    TEXT,
        error_message TEXT,
        started_at    INTEGER NOT NULL,
        stage_since   INTEGER NOT NULL,
        ended_at      INTEGER,
        end_reason    TEXT
    );
    CREATE INDEX sessions_open ON sessions (ended_at);
    CREATE UNIQUE INDEX sessions_by_order ON sessions (order_id) WHERE order_id IS NOT NULL;
    "#,
    // 4: money edges. A reprint forced past a refund (`reprint --force`); payments simulated by
    // `photoboothd pay`, which no statement, report or metric counts; the customer's language,
    // which the checkout link carries.
    r#"
    ALTER TABLE print_jobs ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payme_transactions ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE orders ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE orders ADD COLUMN language TEXT;
    "#,
    // 5: prepaid events. An event order is free (amount 0), has status 'event' and its event's
    // id. SQLite cannot change a CHECK in place, so `orders` is rebuilt (the documented
    // create-copy-drop-rename; `migrate` turns foreign keys off around it and checks them after).
    r#"
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        title      TEXT NOT NULL DEFAULT '',
        date       TEXT NOT NULL DEFAULT '',
        -- Sheets the printer may output for the event; 0 = no cap.
        max_prints INTEGER NOT NULL CHECK (max_prints >= 0),
        keep_days  INTEGER NOT NULL CHECK (keep_days > 0),
        -- The event gallery's secret link (/d/<token>).
        token      TEXT NOT NULL UNIQUE,
        -- config: [booth] mode = "event"; service: started from the service menu.
        source     TEXT NOT NULL CHECK (source IN ('config', 'service')),
        started_at INTEGER NOT NULL,
        ended_at   INTEGER
    );
    -- At most one event runs at a time.
    CREATE UNIQUE INDEX events_one_open ON events ((ended_at IS NULL)) WHERE ended_at IS NULL;

    CREATE TABLE orders_v5 (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        copies               INTEGER NOT NULL CHECK (copies > 0),
        price_per_copy_tiyin INTEGER NOT NULL CHECK (price_per_copy_tiyin >= 0),
        amount_tiyin         INTEGER NOT NULL CHECK (amount_tiyin >= 0),
        -- open: payable or held by a live transaction; event: a free print of a prepaid event;
        -- the rest are final.
        status               TEXT NOT NULL DEFAULT 'open'
                             CHECK (status IN ('open', 'paid', 'refunded', 'cancelled', 'event')),
        created_at           INTEGER NOT NULL,
        expires_at           INTEGER NOT NULL,
        paid_at              INTEGER,
        closed_at            INTEGER,
        simulated            INTEGER NOT NULL DEFAULT 0,
        language             TEXT,
        event_id             INTEGER REFERENCES events (id),
        -- Only an event's orders are free, and every event order names its event.
        CHECK ((status = 'event') = (event_id IS NOT NULL)),
        CHECK (status = 'event' OR (amount_tiyin > 0 AND price_per_copy_tiyin > 0))
    );
    INSERT INTO orders_v5 (id, copies, price_per_copy_tiyin, amount_tiyin, status, created_at,
                           expires_at, paid_at, closed_at, simulated, language)
        SELECT id, copies, price_per_copy_tiyin, amount_tiyin, status, created_at, expires_at,
               paid_at, closed_at, simulated, language FROM orders;
    DROP TABLE orders;
    ALTER TABLE orders_v5 RENAME TO orders;
    CREATE INDEX orders_by_event ON orders (event_id) WHERE event_id IS NOT NULL;
    "#,
    // 6: digital copies. An order delivers prints or a download link; a paid session order gets
    // its link (a random token) in the commit that performs the payment.
    r#"
    ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'print' CHECK (kind IN ('print', 'digital'));

    -- The token is the primary key: checking one is a single index lookup, whether it exists or not.
    CREATE TABLE download_links (
        token      TEXT PRIMARY KEY,
        order_id   INTEGER NOT NULL UNIQUE REFERENCES orders (id),
        session_id INTEGER NOT NULL REFERENCES sessions (id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        -- Set once the expired link's photos were deleted.
        purged_at  INTEGER
    );
    CREATE INDEX download_links_to_purge ON download_links (expires_at) WHERE purged_at IS NULL;
    "#,
    // 7: counters that only go up (Prometheus `_total`s no other table can answer for ever).
    r#"
    -- Prometheus counters that no other table can answer for ever (sessions_total by outcome):
    -- bumped in the same commit as the event they count, never reset, never decremented.
    CREATE TABLE counters (
        name  TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        value INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, label)
    );
    "#,
];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    // A table rebuild (drop and rename) must not cascade or fail on foreign keys half way; the
    // pragma is a no-op inside a transaction, so it is switched around it, and
    // `foreign_key_check` proves before the commit that nothing dangles.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = migrate_in_transaction(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

fn migrate_in_transaction(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        // A newer daemon wrote this file; running old code on it could corrupt its meaning.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the database schema is version {current}, newer than this photoboothd knows ({VERSION})"
            )),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    // Only after a migration ran: the check reads every referencing row.
    let dangling: Option<String> = if current < VERSION {
        tx.prepare("PRAGMA foreign_key_check")?
            .query_row([], |r| r.get(0))
            .optional()?
    } else {
        None
    };
    if let Some(table) = dangling {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some(format!("the migrated database has a dangling reference in {table}")),
        ));
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_rebuild_keeps_rows_references_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        // A version-4 database with a paid order, its job and its session.
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            "INSERT INTO orders (copies, price_per_copy_tiyin, amount_tiyin, status, created_at, expires_at, paid_at)
                 VALUES (2, 100, 200, 'paid', 1, 2, 3);
             INSERT INTO print_jobs (order_id, copies, status, created_at, updated_at) VALUES (1, 2, 'printed', 3, 4);
             INSERT INTO sessions (stage, shots_total, order_id, started_at, stage_since) VALUES ('done', 3, 1, 1, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (status, amount, event): (String, i64, Option<i64>) = conn
            .query_row(
                "SELECT status, amount_tiyin, event_id FROM orders WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((status.as_str(), amount, event), ("paid", 200, None));
        let joined: i64 = conn
            .query_row(
                "SELECT count(*) FROM print_jobs j JOIN orders o ON o.id = j.order_id JOIN sessions s ON s.order_id = o.id",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(joined, 1);
        // Foreign keys are back on and still hold; new ids continue after the old ones.
        assert!(conn
            .execute("INSERT INTO print_jobs (order_id, copies, status, created_at, updated_at) VALUES (99, 1, 'queued', 1, 1)", [])
            .is_err());
        conn.execute(
            "INSERT INTO orders (copies, price_per_copy_tiyin, amount_tiyin, created_at, expires_at) VALUES (1, 100, 100, 5, 6)",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 2);
    }
}
