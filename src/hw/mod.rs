//! Hardware backends, each behind a trait so the booth logic never knows which one it drives.
//! Off a Pi every backend has a simulated twin chosen by configuration, never by crashing.

pub mod camera;
pub mod gpio;
pub mod printer;
pub mod process;
