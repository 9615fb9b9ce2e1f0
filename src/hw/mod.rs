//! Hardware backends, each behind a trait so the booth logic never knows which one it drives.
//! Only the printer exists so far; camera and GPIO join it with the hardware work.

pub mod printer;
