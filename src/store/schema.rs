//! Versioned schema migrations. `PRAGMA user_version` records how many have been applied; each runs
//! once, in order, inside one transaction, so a crash mid-migration leaves the previous version.

use rusqlite::Connection;

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
];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
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
    tx.commit()
}
