//! photoboothd: a paid photo booth daemon. See ARCHITECTURE.md for the map.

/// An error that is one sentence for the operator: the newtype, `Display` and `Error`.
macro_rules! message_error {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for $name {}
    };
}

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
