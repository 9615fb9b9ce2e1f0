//! The command line: `run` (the default), `pay`, `check-config`. Each command is one function;
//! errors are plain sentences for a technician on SSH, and set a non-zero exit code.

mod export;
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
    /// List orders, newest first (or every order as CSV with --csv).
    Orders {
        /// Only orders created on or after this local date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only orders created on or before this local date (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Only orders with this status (awaiting_payment, paid, printing, printed, print_failed,
        /// cancelled, expired, refunded).
        #[arg(long)]
        status: Option<String>,
        /// At most this many, newest first (default 50; with --csv, no limit).
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        csv: CsvArgs,
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
        #[command(flatten)]
        csv: CsvArgs,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 of a service-menu PIN for `[service] pin_sha256` (the PIN is read from
    /// standard input when not given, so it stays out of the shell history).
    ServicePin {
        /// 4 to 12 digits.
        pin: Option<String>,
    },
    /// Printer maintenance.
    Printer {
        #[command(subcommand)]
        command: PrinterCommand,
    },
}

/// `--csv` and its separator.
#[derive(clap::Args)]
pub struct CsvArgs {
    /// Write CSV for a spreadsheet (UTF-8 with a BOM, a header row, sums with two decimals and tiyin).
    #[arg(long)]
    csv: bool,
    /// The CSV field separator, e.g. ';' for locales whose spreadsheets expect semicolons.
    #[arg(long, default_value = ",", requires = "csv")]
    csv_sep: String,
}

impl CsvArgs {
    /// `Some(separator)` when CSV was asked for.
    fn separator(&self) -> Result<Option<char>, String> {
        if !self.csv {
            return Ok(None);
        }
        export::separator(&self.csv_sep).map(Some)
    }
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
        Command::CheckConfig { config } => {
            load(config).and_then(|c| crate::preflight::check(&c).and_then(|()| check_config(&c)))
        }
        Command::Status { config } => load(config).and_then(|c| block_on(async move { inspect::status(&c).await })),
        Command::Orders {
            since,
            until,
            status,
            limit,
            csv,
            config,
        } => {
            let filter = inspect::OrderFilter {
                since: since.as_deref(),
                until: until.as_deref(),
                status: status.as_deref(),
                limit,
            };
            csv.separator()
                .and_then(|sep| load(config).and_then(|c| inspect::orders(&c, &filter, sep)))
        }
        Command::Order { order_id, config } => load(config).and_then(|c| inspect::order(&c, order_id)),
        Command::Reprint {
            order_id,
            copies,
            force,
            config,
        } => load(config).and_then(|c| inspect::reprint(&c, order_id, copies, force)),
        Command::Stats { days, csv, config } => csv
            .separator()
            .and_then(|sep| load(config).and_then(|c| inspect::stats(&c, days, sep))),
        Command::ServicePin { pin } => service_pin(pin),
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
/// With no file (the README's first command, a developer trying the booth) the development
/// switches are on; a configuration file turns them on only explicitly. The flag says whether
/// they were turned on here, for the log.
fn config_for_run(path: Option<PathBuf>) -> Result<(Config, bool), String> {
    let mut config = Config::load_or_default(path.as_deref()).map_err(|e| e.to_string())?;
    let dev_by_default = path.is_none();
    if dev_by_default {
        config.dev.enabled = true;
    }
    Ok((config, dev_by_default))
}

fn block_on<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(f)
}

fn run(path: Option<PathBuf>) -> Result<(), String> {
    crate::daemon::tune_allocator();
    crate::logging::init("info");
    let (config, dev_by_default) = config_for_run(path)?;
    if dev_by_default {
        tracing::warn!(
            "no --config: running on the built-in defaults with development switches on (POST /api/dev/button)"
        );
    }
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

/// `service-pin [PIN]`: the hash to put in `[service] pin_sha256`.
fn service_pin(pin: Option<String>) -> Result<(), String> {
    let pin = match pin {
        Some(pin) => pin,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
            line.trim().to_string()
        }
    };
    crate::config::check_pin(&pin)?;
    let hex: String = crate::config::pin_sha256(&pin)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{hex}");
    Ok(())
}

fn check_config(config: &Config) -> Result<(), String> {
    let b = &config.booth;
    // The printer's driver may refuse the media (a CUPS queue's PPD lists what it offers).
    let page = printer::page_line(config)?;
    println!("configuration is valid");
    println!(
        "  booth          {} ({} sum per copy, 1..={} copies, orders expire after {} s)",
        b.name, b.price_per_copy, b.max_copies, b.order_ttl_s
    );
    println!("  data_dir       {}", config.data_dir().display());
    println!("  kiosk          http://{}", config.http.kiosk_listen);
    println!("  webhook        http://{}/payme", config.http.webhook_listen);
    match config.http.metrics_listen {
        Some(addr) => println!("  metrics        http://{addr}/metrics (and on the kiosk listener)"),
        None => println!("  metrics        on the kiosk listener only"),
    }
    println!("  open hours     {}", config.booth.open_hours);
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
    println!(
        "  mode           {:?}{}",
        config.booth.mode,
        match config.event.max_prints {
            0 if config.booth.mode == crate::config::Mode::Event => " (no cap on prints)".to_string(),
            n if config.booth.mode == crate::config::Mode::Event => format!(" (at most {n} prints)"),
            _ => String::new(),
        }
    );
    println!(
        "  service menu   {}",
        if config.service_pin_hash().is_some() {
            "on (PIN set)"
        } else {
            "off (no [service] PIN)"
        }
    );
    println!("  page           {page}");
    if config.is_sandbox() {
        println!("  SANDBOX        Payme's test checkout: no real money (production: https://checkout.paycom.uz)");
    }
    if config.dev.enabled {
        println!("  dev switches   ON (POST /api/dev/button)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_switches_are_on_only_without_a_config_file_or_when_it_says_so() {
        let (config, by_default) = config_for_run(None).unwrap();
        assert!(config.dev.enabled && by_default);
        assert!(
            !Config::built_in().unwrap().dev.enabled,
            "the built-in defaults are production-safe"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("photobooth.toml");
        std::fs::write(&file, crate::config::DEFAULT_TOML).unwrap();
        let (config, by_default) = config_for_run(Some(file.clone())).unwrap();
        assert!(!config.dev.enabled && !by_default);
        std::fs::write(
            &file,
            crate::config::DEFAULT_TOML.replace("enabled = false", "enabled = true"),
        )
        .unwrap();
        assert!(config_for_run(Some(file)).unwrap().0.dev.enabled);
    }
}
