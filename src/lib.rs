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

/// Declares an enum whose variants each have a stable code (for the UI, logs, metric labels and
/// the database), each written once: gives `ALL` (every variant, in order) and `as_str`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $code:literal,)*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($name::$variant),*].len()] = [$($name::$variant),*];

            /// The variant's code.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }
        }
    };
}

pub mod booth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod date;
pub mod digital;
pub mod http;
pub mod hw;
pub mod layout;
pub mod logging;
pub mod metrics;
pub mod payme;
pub mod preflight;
pub mod store;
