//! The command line: `run` (the default), `pay`, `check-config`. Each command is one function;
//! errors are plain sentences for a technician on SSH, and set a non-zero exit code.

mod inspect;
mod pay;
mod printer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "photoboothd",
    version,
    about = "Paid photo booth daemon: camera, printer, Payme"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the booth (the default when no command is given, on built-in defaults).
    Run {
        /// Configuration file; without it the built-in defaults are used.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Development tool: pay an order the way Payme would (Check, Create, Perform) against the
    /// running daemon, with a simulated transaction that no report counts. Sandbox only.
    Pay {
        /// The order number shown by the kiosk.
        order_id: i64,
        /// Run even though payme.checkout_base is not the sandbox (the daemon still refuses
        /// simulated payments unless its checkout is the sandbox).
        #[arg(long)]
        force: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and print what the booth would run with.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Daemon, printer, camera, media, print queue and the last payments.
    Status {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List orders, newest first.
    Orders {
        /// Only orders created on or after this local date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only orders with this status (awaiting_payment, paid, printing, printed, print_failed,
        /// cancelled, expired, refunded).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// One order's full timeline: session, Payme transactions, print jobs.
    Order {
        order_id: i64,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print a paid order again.
    Reprint {
        order_id: i64,
        /// Copies to print (default: as many as were paid for).
        #[arg(long)]
        copies: Option<u32>,
        /// Print a refunded order all the same (logged). An order never paid is refused anyway.
        #[arg(long)]
        force: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Per day: sessions, paid orders, revenue, prints, failures.
    Stats {
        #[arg(long, default_value_t = 14)]
        days: u32,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Printer maintenance.
    Printer {
        #[command(subcommand)]
        command: PrinterCommand,
    },
}

#[derive(Subcommand)]
pub enum PrinterCommand {
    /// Print the configured layout filled with sample shots and show what the printer reports.
    Test {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Resume a stopped printer queue and requeue failed print jobs (after fixing the printer).
    Resume {
        /// A new roll or pack was loaded: reset the media counter to printer.capacity.
        #[arg(long)]
        refill: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Runs the parsed command and returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let command = cli.command.unwrap_or(Command::Run { config: None });
    let result = match command {
        Command::Run { config } => run(config),
        Command::Pay {
            order_id,
            force,
            config,
        } => load(config).and_then(|c| block_on(pay::pay(c, order_id, force))),
        Command::CheckConfig { config } => load(config).map(|c| check_config(&c)),
        Command::Status { config } => load(config).and_then(|c| block_on(async move { inspect::status(&c).await })),
        Command::Orders {
            since,
            status,
            limit,
            config,
        } => load(config).and_then(|c| inspect::orders(&c, since.as_deref(), status.as_deref(), limit)),
        Command::Order { order_id, config } => load(config).and_then(|c| inspect::order(&c, order_id)),
        Command::Reprint {
            order_id,
            copies,
            force,
            config,
        } => load(config).and_then(|c| inspect::reprint(&c, order_id, copies, force)),
        Command::Stats { days, config } => load(config).and_then(|c| inspect::stats(&c, days)),
        Command::Printer {
            command: PrinterCommand::Test { config },
        } => load(config).and_then(|c| printer::test(&c)),
        Command::Printer {
            command: PrinterCommand::Resume { refill, config },
        } => load(config).and_then(|c| printer::resume(&c, refill)),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("photoboothd: {message}");
            1
        }
    }
}

/// The installed configuration, which the technician's commands use when `--config` is not given.
const INSTALLED_CONFIG: &str = "/etc/photobooth/photobooth.toml";

/// `--config`, else the installed file if there is one, else the built-in defaults.
fn load(path: Option<PathBuf>) -> Result<Config, String> {
    let path = path.or_else(|| Some(PathBuf::from(INSTALLED_CONFIG)).filter(|p| p.is_file()));
    Config::load_or_default(path.as_deref()).map_err(|e| e.to_string())
}

/// `run`: the booth itself keeps `photoboothd` = built-in defaults; systemd passes `--config`.
fn load_for_run(path: Option<PathBuf>) -> Result<Config, String> {
    Config::load_or_default(path.as_deref()).map_err(|e| e.to_string())
}

fn block_on<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(f)
}

fn run(path: Option<PathBuf>) -> Result<(), String> {
    crate::logging::init("info");
    let config = load_for_run(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Two cores on most Pis; more threads only add memory. The SQLite work runs on the
        // blocking pool, which grows and shrinks by itself.
        .worker_threads(2)
        // Each webhook call borrows a blocking thread for SQLite; capping them bounds malloc arenas.
        .max_blocking_threads(16)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(crate::daemon::run(config)).map_err(|e| e.to_string())
}

fn check_config(config: &Config) {
    let b = &config.booth;
    println!("configuration is valid");
    println!(
        "  booth          {} ({} sum per copy, 1..={} copies, orders expire after {} s)",
        b.name, b.price_per_copy, b.max_copies, b.order_ttl_s
    );
    println!("  data_dir       {}", config.data_dir().display());
    println!("  kiosk          http://{}", config.http.kiosk_listen);
    println!("  webhook        http://{}/payme", config.http.webhook_listen);
    println!(
        "  payme checkout {} (merchant {:?}, account field {:?})",
        config.payme.checkout_base, config.payme.merchant_id, config.payme.account_field
    );
    println!(
        "  fiscal detail  {}",
        if config.payme.fiscal.is_some() {
            "sent"
        } else {
            "not sent"
        }
    );
    println!("  printer        {:?}", config.printer.backend);
}
