//! The `escpos` printer: a thermal receipt printer spoken to in ESC/POS over TCP (raw port 9100), the
//! kernel's `usblp` node (`/dev/usb/lpN`) or a serial device (`/dev/ttyUSB0`, `/dev/ttyS0`,
//! `/dev/rfcomm0`). The page is dithered to 1 bit in `raster.rs` and sent as `GS v 0` bands.
//!
//! A job is `ESC @`, then per copy the raster bands, white raster rows as tear margin and `GS V`.
//! The margin is raster rows rather than line feeds: a feed's length depends on the printer's line
//! spacing and motion units, a dot row is a dot row on every printer.
//!
//! Serial devices are opened as files: their speed and framing are whatever the OS has set. Set them
//! where the device appears, e.g. a udev rule or a systemd `ExecStartPre=` running
//! `stty -F /dev/ttyUSB0 115200 raw -echo clocal` (`clocal` so nothing waits for a modem carrier).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use escpos::utils::{DLE, EOT, ESC_HARDWARE_INIT, GS_PAPER_CUT_FULL};

use super::raster::{self, BitImage};
use super::{PrintError, PrintRequest, Printer, PrinterState, PrinterStatus};
use crate::config;

/// Printers listen on a LAN; one that has not answered in 3 s is off or unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A printer that has taken no byte for this long is stuck (paper out, cover open, jam), not slow:
/// even a 9600-baud serial line keeps moving. Without a bound, `usblp` would hold the print thread
/// until someone refills the paper, and the booth would keep selling sessions meanwhile.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a non-blocking device is retried while its buffer is full.
const POLL: Duration = Duration::from_millis(5);
/// How long one `DLE EOT` question waits for its byte. Many cheap printers never answer.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// After the last byte, how long to wait for the printer to close its side. The close (or a reset)
/// is the only sign that the printer, not just our kernel's send buffer, took the job; a printer
/// that keeps the socket open costs this much per job and is assumed to have it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// `DLE EOT 1` (printer status) and `DLE EOT 4` (roll paper sensor). Written out rather than with the
/// crate's `real_time_status`, which appends a fourth byte (`10 04 01 00`) that only the `n = 7, 8,
/// 18` forms have; a printer would take the extra NUL as data.
const ASK_PRINTER: [u8; 3] = [DLE, EOT, 1];
const ASK_PAPER: [u8; 3] = [DLE, EOT, 4];

// Flags for opening device nodes, from Linux's generic ABI (x86, Arm, RISC-V; libc is not a direct
// dependency). O_NONBLOCK lets a stuck printer time out instead of blocking forever, and status
// reads return at once when it has nothing to say. O_NOCTTY stops a serial port from becoming
// the daemon's controlling terminal, whose hang-up on unplugging would send us SIGHUP.
const DEVICE_FLAGS: Option<i32> = if cfg!(all(
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
)) {
    Some(0o4000 | 0o400)
} else {
    None
};

/// Linux errno values that need their own message (std has no stable `ErrorKind` for them at our MSRV).
const EBUSY: i32 = 16;
const ENOSPC: i32 = 28;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `host:port`, resolved at each connection so a printer's DHCP lease or DNS may change.
    Tcp(String),
    Device(PathBuf),
}

pub struct EscposPrinter {
    target: Target,
    width_dots: u32,
    /// One conversation with the printer at a time: `usblp` refuses a second open and many network
    /// printers serve one connection, so a status poll must not race a job.
    turn: Mutex<()>,
}

impl EscposPrinter {
    /// White rows after each copy: 12 mm at 8 dots/mm, enough to clear the tear bar on printers
    /// without a cutter; with a cutter `GS V` feeds to the blade on top of it.
    pub const TEAR_MARGIN_ROWS: u32 = 96;

    /// `device` is `tcp://host[:port]` (port 9100 by default) or a device path; `width_dots` is the
    /// head width (384 for 58 mm, 576 for 80 mm paper).
    pub fn new(device: &str, width_dots: u32) -> Result<EscposPrinter, String> {
        if width_dots == 0 || width_dots > 4096 {
            return Err(format!(
                "printer.width_dots {width_dots} is not a thermal head width (384 or 576)"
            ));
        }
        Ok(EscposPrinter {
            target: parse_device(device)?,
            width_dots,
            turn: Mutex::new(()),
        })
    }

    pub fn from_config(printer: &config::Printer) -> Result<EscposPrinter, String> {
        let device = printer
            .device
            .as_deref()
            .ok_or("printer.device is required for the escpos backend")?;
        EscposPrinter::new(device, printer.width_dots)
    }

    pub fn width_dots(&self) -> u32 {
        self.width_dots
    }

    fn name(&self) -> String {
        match &self.target {
            Target::Tcp(addr) => format!("tcp://{addr}"),
            Target::Device(path) => path.display().to_string(),
        }
    }

    fn take_turn(&self) -> MutexGuard<'_, ()> {
        // The guard protects no data, so a panic while it was held leaves nothing inconsistent.
        self.turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_for_print(&self) -> Result<Link, PrintError> {
        match &self.target {
            Target::Tcp(addr) => {
                let stream = connect(addr).map_err(|e| PrintError::transient(format!("escpos tcp://{addr}: {e}")))?;
                // Without NODELAY the tail of each band waits for the printer's delayed ACK.
                let ready = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_write_timeout(Some(STALL_TIMEOUT)));
                ready.map_err(|e| PrintError::transient(format!("escpos tcp://{addr}: {e}")))?;
                Ok(Link::Tcp(stream))
            }
            Target::Device(path) => {
                // Never `create`: with the printer unplugged, /dev/usb/lp0 would become a regular
                // file that silently swallows every later job.
                let mut options = OpenOptions::new();
                options.append(true);
                open_device(&mut options, path).map(Link::Device).map_err(|e| {
                    let message = format!("escpos {}: {}", path.display(), describe_open_error(&e));
                    if e.kind() == io::ErrorKind::PermissionDenied {
                        PrintError::permanent(message)
                    } else {
                        PrintError::transient(message)
                    }
                })
            }
        }
    }

    fn device_status(&self, path: &std::path::Path) -> PrinterStatus {
        // A regular file is a capture of the byte stream (tests, dry runs); nothing there can answer,
        // and writing questions into it would corrupt the capture.
        if std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return PrinterStatus::new(PrinterState::Unknown);
        }
        if DEVICE_FLAGS.is_none() {
            // A blocking read on a printer that never answers would never return.
            return PrinterStatus::new(PrinterState::Unknown);
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        match open_device(&mut options, path) {
            Ok(mut file) => ask_status(&mut file, true),
            Err(e) if e.raw_os_error() == Some(EBUSY) => PrinterStatus {
                state: PrinterState::Busy,
                reasons: vec![format!("{}: {}", path.display(), describe_open_error(&e))],
            },
            Err(e) => offline(format!("{}: {}", path.display(), describe_open_error(&e))),
        }
    }
}

impl Printer for EscposPrinter {
    fn backend(&self) -> &'static str {
        "escpos"
    }

    fn print(&self, r: &PrintRequest<'_>) -> Result<(), PrintError> {
        if r.copies == 0 {
            return Ok(());
        }
        let bits = raster::dither(&raster::prepare(r.page, self.width_dots, true));
        if bits.height() == 0 {
            return Err(PrintError::permanent(format!(
                "escpos {}: the page is empty ({}×{})",
                self.name(),
                r.page.width(),
                r.page.height()
            )));
        }
        let bands = raster::gs_v0_bands(&bits, raster::BAND_ROWS);
        let margin = raster::gs_v0_bands(
            &BitImage::new(self.width_dots, Self::TEAR_MARGIN_ROWS),
            raster::BAND_ROWS,
        );

        let _turn = self.take_turn();
        let mut link = self.open_for_print()?;
        let total = bands.len() * r.copies as usize;
        let mut sent = 0;
        let failed = |sent: usize, what: &str, e: io::Error| {
            let copy = (sent / bands.len() + 1).min(r.copies as usize);
            let hint = if e.raw_os_error() == Some(ENOSPC) {
                " (the printer reports no paper)"
            } else {
                ""
            };
            PrintError {
                message: format!(
                    "escpos {}: {what} failed after {sent} of {total} raster bands (copy {copy} of {}): {e}{hint}",
                    self.name(),
                    r.copies
                ),
                // The job can simply be sent again once the printer is back; the flag below tells
                // the owner a partial print may be lying in the tray.
                transient: true,
                may_have_printed: sent > 0,
            }
        };
        link.send(ESC_HARDWARE_INIT).map_err(|e| failed(sent, "write", e))?;
        for _ in 0..r.copies {
            for band in &bands {
                link.send(band).map_err(|e| failed(sent, "write", e))?;
                sent += 1;
            }
            for band in &margin {
                link.send(band).map_err(|e| failed(sent, "write", e))?;
            }
            link.send(GS_PAPER_CUT_FULL).map_err(|e| failed(sent, "write", e))?;
        }
        link.finish().map_err(|e| failed(sent, "delivery", e))
    }

    fn status(&self) -> PrinterStatus {
        let _turn = match self.turn.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // A job is being sent right now; asking would interleave with its bytes.
            Err(TryLockError::WouldBlock) => return PrinterStatus::new(PrinterState::Busy),
        };
        match &self.target {
            Target::Tcp(addr) => match connect(addr) {
                Ok(mut stream) => {
                    let limits = stream
                        .set_read_timeout(Some(STATUS_TIMEOUT))
                        .and_then(|()| stream.set_write_timeout(Some(STATUS_TIMEOUT)));
                    match limits {
                        Ok(()) => ask_status(&mut stream, false),
                        // Without a read timeout the question could wait forever.
                        Err(_) => PrinterStatus::new(PrinterState::Unknown),
                    }
                }
                Err(e) => offline(format!("tcp://{addr}: {e}")),
            },
            Target::Device(path) => self.device_status(path),
        }
    }
}

fn parse_device(device: &str) -> Result<Target, String> {
    let device = device.trim();
    if let Some(rest) = device.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        let has_port = match rest.rfind(']') {
            Some(bracket) => rest[bracket..].contains(':'),
            None => rest.contains(':'),
        };
        if rest.is_empty() || rest.starts_with(':') {
            return Err(format!("printer.device {device:?} has no host (tcp://host:port)"));
        }
        if !has_port {
            return Ok(Target::Tcp(format!("{rest}:9100")));
        }
        let port = rest.rsplit_once(':').map_or("", |(_, port)| port);
        return match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(Target::Tcp(rest.to_string())),
            _ => Err(format!("printer.device {device:?} has no valid port (tcp://host:port)")),
        };
    }
    if device.starts_with('/') {
        return Ok(Target::Device(PathBuf::from(device)));
    }
    Err(format!(
        "printer.device {device:?} must be tcp://host:port, /dev/usb/lpN or a serial device such as /dev/ttyUSB0"
    ))
}

fn connect(addr: &str) -> io::Result<TcpStream> {
    let candidates: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn open_device(options: &mut OpenOptions, path: &std::path::Path) -> io::Result<File> {
    #[cfg(unix)]
    if let Some(flags) = DEVICE_FLAGS {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(flags);
    }
    options.open(path)
}

fn describe_open_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{e} (printer unplugged or switched off?)"),
        io::ErrorKind::PermissionDenied => format!("{e} (the daemon's user needs group lp or dialout, or a udev rule)"),
        _ if e.raw_os_error() == Some(EBUSY) => format!("{e} (another program has the printer open)"),
        _ => e.to_string(),
    }
}

fn offline(reason: String) -> PrinterStatus {
    PrinterStatus {
        state: PrinterState::Offline,
        reasons: vec!["offline-report".into(), reason],
    }
}

/// The open connection of one job.
enum Link {
    Tcp(TcpStream),
    Device(File),
}

impl Link {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Link::Tcp(stream) => write_patiently(stream, bytes),
            Link::Device(file) => write_patiently(file, bytes),
        }
    }

    /// Waits until the printer, not just a kernel buffer, has the bytes, as far as the transport
    /// can tell.
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Link::Tcp(stream) => {
                stream.shutdown(Shutdown::Write)?;
                stream.set_read_timeout(Some(DRAIN_TIMEOUT))?;
                let deadline = Instant::now() + DRAIN_TIMEOUT;
                let mut sink = [0u8; 256];
                // The printer reads to our FIN and closes; a reset instead means it dropped data.
                while Instant::now() < deadline {
                    match stream.read(&mut sink) {
                        Ok(0) => return Ok(()),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                            return Ok(())
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Link::Device(file) => {
                // Non-blocking `usblp` returns before its last USB transfer is done and cancels it
                // on close; a zero-length write waits for it (see `usblp_wwait` in the kernel).
                let mut last_progress = Instant::now();
                loop {
                    match file.write(&[]) {
                        Ok(_) => return file.flush(),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_or_stall(&mut last_progress)?,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// `write_all` that tolerates a non-blocking device's full buffer and a socket's write timeout, and
/// gives up only when no byte has moved for `STALL_TIMEOUT`.
fn write_patiently(out: &mut impl Write, mut bytes: &[u8]) -> io::Result<()> {
    let mut last_progress = Instant::now();
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the printer accepts no more data",
                ))
            }
            Ok(n) => {
                bytes = &bytes[n..];
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                wait_or_stall(&mut last_progress)?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn wait_or_stall(last_progress: &mut Instant) -> io::Result<()> {
    if last_progress.elapsed() >= STALL_TIMEOUT {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the printer took no data for {} s (paper out, cover open or jammed?)",
                STALL_TIMEOUT.as_secs()
            ),
        ));
    }
    std::thread::sleep(POLL);
    Ok(())
}

/// Asks `DLE EOT 1` and, if that is answered, `DLE EOT 4`. `poll` is for non-blocking devices,
/// whose reads return at once; sockets block up to their read timeout instead.
fn ask_status(link: &mut (impl Read + Write), poll: bool) -> PrinterStatus {
    let Some(printer) = ask(link, &ASK_PRINTER, poll) else {
        // Silence is the norm on cheap printers and says nothing about paper or power.
        return PrinterStatus::new(PrinterState::Unknown);
    };
    decode_status(printer, ask(link, &ASK_PAPER, poll))
}

fn ask(link: &mut (impl Read + Write), question: &[u8], poll: bool) -> Option<u8> {
    let deadline = Instant::now() + STATUS_TIMEOUT;
    let mut rest = question;
    while !rest.is_empty() {
        match link.write(rest) {
            Ok(0) => return None,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if poll && e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(POLL)
            }
            Err(_) => return None,
        }
    }
    let mut byte = [0u8; 1];
    loop {
        match link.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) if is_status_byte(byte[0]) => return Some(byte[0]),
            // Automatic status back or other unsolicited bytes: keep listening for our answer.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if poll && e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// Every `DLE EOT` answer has the fixed bits `0xx1xx10`.
fn is_status_byte(b: u8) -> bool {
    b & 0b1001_0011 == 0b0001_0010
}

/// `DLE EOT 1` bit 3: offline. `DLE EOT 4` bits 5–6: paper end; bits 2–3: paper near end. An empty
/// roll also sets the offline bit, so paper end is reported as the cause.
fn decode_status(printer: u8, paper: Option<u8>) -> PrinterStatus {
    let paper_end = paper.is_some_and(|b| b & 0b0110_0000 != 0);
    let near_end = paper.is_some_and(|b| b & 0b0000_1100 != 0);
    let offline = printer & 0b0000_1000 != 0;
    let mut reasons = Vec::new();
    if paper_end {
        reasons.push("media-empty-error".to_string());
    } else if near_end {
        reasons.push("media-low".to_string());
    }
    if offline {
        reasons.push("offline-report".to_string());
    }
    let state = if paper_end {
        PrinterState::MediaEmpty
    } else if offline {
        PrinterState::Offline
    } else {
        PrinterState::Ready
    };
    PrinterStatus { state, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_forms() {
        for (device, host) in [
            ("tcp://10.0.0.5:9100", "10.0.0.5:9100"),
            (" tcp://printer.lan ", "printer.lan:9100"),
            ("tcp://[::1]:9101/", "[::1]:9101"),
            ("tcp://[fe80::1]", "[fe80::1]:9100"),
        ] {
            assert_eq!(parse_device(device).unwrap(), Target::Tcp(host.into()), "{device}");
        }
        for path in ["/dev/usb/lp0", "/dev/ttyUSB0"] {
            assert_eq!(parse_device(path).unwrap(), Target::Device(path.into()));
        }
        for bad in [
            "tcp://",
            "tcp://:9100",
            "tcp://host:0",
            "tcp://host:port",
            "usb://04b8:0202",
            "lp0",
        ] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
        assert!(EscposPrinter::new("/dev/usb/lp0", 0).is_err());
    }

    #[test]
    fn status_bits() {
        let ready = 0b0001_0010;
        assert!(is_status_byte(ready));
        assert!(!is_status_byte(0xFF));
        assert!(!is_status_byte(0x00));
        assert_eq!(
            decode_status(ready, Some(ready)),
            PrinterStatus::new(PrinterState::Ready)
        );
        assert_eq!(decode_status(ready, None), PrinterStatus::new(PrinterState::Ready));
        let low = decode_status(ready, Some(ready | 0b0000_1100));
        assert_eq!(
            (low.state, low.reasons),
            (PrinterState::Ready, vec!["media-low".to_string()])
        );
        let empty = decode_status(ready | 0b1000, Some(ready | 0b0110_1100));
        assert_eq!(empty.state, PrinterState::MediaEmpty);
        assert_eq!(empty.reasons, ["media-empty-error", "offline-report"]);
        assert_eq!(decode_status(ready | 0b1000, Some(ready)).state, PrinterState::Offline);
    }
}
