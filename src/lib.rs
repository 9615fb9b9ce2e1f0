//! photoboothd: a paid photo booth daemon. See ARCHITECTURE.md for the map.

pub mod booth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod date;
pub mod http;
pub mod hw;
pub mod layout;
pub mod logging;
pub mod metrics;
pub mod payme;
pub mod store;
