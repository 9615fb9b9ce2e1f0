//! Layouts: turning an order (and, with the kiosk, its photos) into the page a printer prints.
//! Pages are composed at the printer's native resolution so no printer driver ever rescales them;
//! for a CUPS driver that is the driver's printable area (`fit`), not the template's nominal size.

pub mod compose;
pub mod fit;
pub mod qr;
pub mod receipt;
pub mod template;
pub mod text;
pub mod thumbnail;
