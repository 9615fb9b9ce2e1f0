//! `regex` as rpi-pal uses it (`Regex::new`, `captures`, named groups), from `regex-lite`: no
//! Unicode tables or DFAs in the Pi's binary for one pattern over /proc/version. See Cargo.toml.

pub use regex_lite::*;
