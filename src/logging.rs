//! Log output: human-readable lines on stderr, filtered by `RUST_LOG` (default `info`).
//! Events carry `order_id`, `payme_id`, `job_id` fields so one order's story can be grepped out.
//! Nothing logged anywhere may contain the Payme key or the Authorization header.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
