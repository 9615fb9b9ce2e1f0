//! The `escpos` backend against a fake printer: a TCP listener on loopback that records every byte,
//! and a temp file standing in for `/dev/usb/lp0`. The captured stream is decoded back into dots
//! and compared with `raster::dither` of the same page.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use image::{Rgb, RgbImage};
use photoboothd::config::Config;
use photoboothd::hw::printer::raster::{self, Decoded};
use photoboothd::hw::printer::{self as printer, EscposPrinter, PrintRequest, Printer, PrinterState};

/// Photo-like enough to exercise the dither: gradients, a disc and hard text-like bars.
fn page(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (cx, cy) = (width as i64 / 2, height as i64 / 2);
        let (dx, dy) = (x as i64 - cx, y as i64 - cy);
        if dx * dx + dy * dy < (width as i64 / 5).pow(2) {
            return Rgb([230, 180, 150]);
        }
        if y % 40 < 6 && x % 60 < 40 {
            return Rgb([0, 0, 0]);
        }
        let g = (x * 255 / width.max(1)) as u8;
        Rgb([g, (y * 255 / height.max(1)) as u8, 255 - g])
    })
}

fn request(page: &RgbImage, copies: u32) -> PrintRequest<'_> {
    PrintRequest {
        job_id: 7,
        order_id: 3,
        copies,
        page,
    }
}

/// A printer on an ephemeral port (`tcp://` device): `serve` runs on a thread with the one
/// connection the test's printer makes; join the handle for what it returns.
fn fake_printer<T: Send + 'static>(serve: impl FnOnce(TcpStream) -> T + Send + 'static) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let device = format!("tcp://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || serve(listener.accept().unwrap().0));
    (device, handle)
}

/// Accepts one connection and returns everything it sent until it closed its side.
fn recording_printer() -> (String, JoinHandle<Vec<u8>>) {
    fake_printer(move |mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    })
}

/// One copy as it came off the wire: the image bands and the tear-margin rows after them.
struct Copy {
    image: Vec<u8>,
    image_rows: usize,
    margin: Vec<u8>,
}

/// Checks the framing (ESC @ first, every raster as wide as the head, no band over BAND_ROWS, a cut
/// closing each copy) and splits the job into copies.
/// Prints `copies` of `page` on a recording TCP printer `dots` wide; returns the bytes it received.
fn print_over_tcp(dots: u32, page: &RgbImage, copies: u32) -> Vec<u8> {
    let (device, recorded) = recording_printer();
    let printer = EscposPrinter::new(&device, dots).unwrap();
    printer.print(&request(page, copies)).unwrap();
    recorded.join().unwrap()
}

/// Prints `copies` of `page` into a capture file standing in for a device node (`/dev/usb/lp0`):
/// the temp dir, the file, the printer and the bytes written.
fn print_to_file(dots: u32, page: &RgbImage, copies: u32) -> (tempfile::TempDir, PathBuf, EscposPrinter, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lp0");
    std::fs::write(&path, b"").unwrap();
    let printer = EscposPrinter::new(path.to_str().unwrap(), dots).unwrap();
    printer.print(&request(page, copies)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, printer, bytes)
}

fn split_job(bytes: &[u8], width_bytes: usize, page_rows: usize) -> Vec<Copy> {
    let commands = raster::decode_stream(bytes).expect("the job decodes");
    assert_eq!(commands.first(), Some(&Decoded::Init), "the job starts with ESC @");
    assert!(
        matches!(commands.last(), Some(Decoded::Cut { .. })),
        "the job ends with a cut"
    );
    let margin_rows = EscposPrinter::TEAR_MARGIN_ROWS as usize;
    let mut copies = Vec::new();
    let mut rows: Vec<u8> = Vec::new();
    let mut row_count = 0;
    for command in &commands[1..] {
        match command {
            Decoded::Raster {
                mode,
                width_bytes: w,
                rows: n,
                data,
            } => {
                assert_eq!(*mode, 0);
                assert_eq!(*w, width_bytes, "every band is exactly the head width");
                assert!(*n >= 1 && *n <= raster::BAND_ROWS as usize, "band of {n} rows");
                rows.extend_from_slice(data);
                row_count += n;
            }
            Decoded::Cut { .. } => {
                assert_eq!(row_count, page_rows + margin_rows, "rows of one copy");
                let margin = rows.split_off(page_rows * width_bytes);
                copies.push(Copy {
                    image: std::mem::take(&mut rows),
                    image_rows: page_rows,
                    margin,
                });
                row_count = 0;
            }
            other => panic!("unexpected command {other:?}"),
        }
    }
    assert_eq!(row_count, 0, "raster after the last cut");
    copies
}

fn assert_prints_exactly(bytes: &[u8], page: &RgbImage, width_dots: u32, copies: usize) {
    let expected = raster::dither(&raster::prepare(page, width_dots, true));
    let width_bytes = width_dots as usize / 8;
    assert_eq!(expected.width_bytes(), width_bytes);
    let printed = split_job(bytes, width_bytes, expected.height() as usize);
    assert_eq!(printed.len(), copies, "one raster set and one cut per copy");
    for (i, copy) in printed.iter().enumerate() {
        assert_eq!(copy.image_rows, expected.height() as usize);
        assert!(copy.image == expected.data(), "copy {i}: dots differ from dither()");
        assert!(
            copy.margin.iter().all(|&b| b == 0),
            "copy {i}: the tear margin is white"
        );
    }
    assert!(expected.count_black() > 0, "the test page has some black");
}

#[test]
fn tcp_576_dots_match_the_dither() {
    let page = page(576, 300);
    let bytes = print_over_tcp(576, &page, 1);
    assert!(bytes.starts_with(&[0x1B, b'@']));
    assert!(bytes.ends_with(&[0x1D, b'V', b'A', 0]));
    assert_prints_exactly(&bytes, &page, 576, 1);
}

#[test]
fn tcp_wide_page_is_scaled_to_384_dots_and_two_copies_print_twice() {
    let page = page(768, 500);
    let bytes = print_over_tcp(384, &page, 2);
    let rasters = raster::decode_gs_v0(&bytes).unwrap();
    assert!(rasters.iter().all(|(w, _, _)| *w == 48));
    let image_rows = 250 + EscposPrinter::TEAR_MARGIN_ROWS as usize;
    assert_eq!(rasters.iter().map(|(_, rows, _)| rows).sum::<usize>(), 2 * image_rows);
    assert_prints_exactly(&bytes, &page, 384, 2);
}

#[test]
fn device_file_384_dots_two_copies() {
    let page = page(384, 130);
    let (_dir, path, printer, bytes) = print_to_file(384, &page, 2);
    assert_prints_exactly(&bytes, &page, 384, 2);
    let cuts = raster::decode_stream(&bytes)
        .unwrap()
        .into_iter()
        .filter(|c| matches!(c, Decoded::Cut { .. }))
        .count();
    assert_eq!(cuts, 2);
    // A capture file cannot answer DLE EOT, and asking must not write into it.
    assert_eq!(printer.status().state, PrinterState::Unknown);
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len());
}

#[test]
fn device_file_narrow_page_is_centred_at_576_dots() {
    let page = RgbImage::from_pixel(200, 64, Rgb([0, 0, 0]));
    let (_dir, _path, _printer, bytes) = print_to_file(576, &page, 1);
    assert_prints_exactly(&bytes, &page, 576, 1);
    let rows = raster::decode_gs_v0(&bytes).unwrap();
    let first_row = &rows[0].2[..72];
    // 188 white dots, 200 black, 188 white.
    assert_eq!(first_row[..23], [0u8; 23]);
    assert_eq!(first_row[23], 0x0F);
    assert!(first_row[24..48].iter().all(|&b| b == 0xFF));
}

#[test]
fn missing_device_is_a_transient_error_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lp9");
    let printer = EscposPrinter::new(path.to_str().unwrap(), 384).unwrap();
    let e = printer.print(&request(&page(384, 10), 1)).unwrap_err();
    assert!(e.transient && !e.may_have_printed, "{e:?}");
    assert!(!path.exists(), "the device node must never be created");
    assert_eq!(printer.status().state, PrinterState::Offline);
}

#[test]
fn connection_dropped_mid_job_may_have_printed() {
    let (device, reader) = fake_printer(move |mut stream| {
        let mut first = vec![0u8; 4096];
        stream.read_exact(&mut first).unwrap();
        // Dropped with unread data: the kernel answers with a reset, as a printer that is switched
        // off mid-job would.
    });
    let printer = EscposPrinter::new(&device, 576).unwrap();
    let e = printer.print(&request(&page(576, 2000), 3)).unwrap_err();
    reader.join().unwrap();
    assert!(e.transient, "{e:?}");
    assert!(e.may_have_printed, "{e:?}");
    assert!(e.message.contains("raster bands"), "{}", e.message);
}

#[test]
fn nothing_listening_is_transient_and_printed_nothing() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let printer = EscposPrinter::new(&format!("tcp://127.0.0.1:{port}"), 576).unwrap();
    let e = printer.print(&request(&page(576, 10), 1)).unwrap_err();
    assert!(e.transient && !e.may_have_printed, "{e:?}");
    let status = printer.status();
    assert_eq!(status.state, PrinterState::Offline);
    assert!(
        status.reasons.iter().any(|r| r.contains(&port.to_string())),
        "{:?}",
        status.reasons
    );
}

/// A printer that answers DLE EOT n with `answers(n)`, or stays silent on `None`.
fn status_printer(answers: fn(u8) -> Option<u8>) -> (String, JoinHandle<Vec<u8>>) {
    fake_printer(move |mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut asked = Vec::new();
        let mut question = [0u8; 3];
        while stream.read_exact(&mut question).is_ok() {
            asked.extend_from_slice(&question);
            assert_eq!(question[..2], [0x10, 0x04]);
            if let Some(answer) = answers(question[2]) {
                let _ = stream.write_all(&[answer]);
            }
        }
        asked
    })
}

fn answer(ready: u8, n: u8, extra: u8) -> Option<u8> {
    Some(if n == 4 { ready | extra } else { ready })
}

#[test]
fn status_paper_end_is_media_empty() {
    let (device, asked) = status_printer(|n| answer(0x12, n, 0b0110_0000));
    let status = EscposPrinter::new(&device, 576).unwrap().status();
    assert_eq!(status.state, PrinterState::MediaEmpty);
    assert!(!status.state.can_print());
    assert_eq!(asked.join().unwrap(), [0x10, 0x04, 0x01, 0x10, 0x04, 0x04]);
}

#[test]
fn status_near_end_is_ready_with_media_low() {
    let (device, _asked) = status_printer(|n| answer(0x12, n, 0b0000_1100));
    let status = EscposPrinter::new(&device, 576).unwrap().status();
    assert_eq!(status.state, PrinterState::Ready);
    assert_eq!(status.reasons, ["media-low"]);
}

#[test]
fn status_offline_bit_is_offline() {
    let (device, _asked) = status_printer(|n| if n == 1 { Some(0x12 | 0b1000) } else { Some(0x12) });
    assert_eq!(
        EscposPrinter::new(&device, 576).unwrap().status().state,
        PrinterState::Offline
    );
}

#[test]
fn status_silence_is_unknown_not_offline() {
    let (device, _asked) = status_printer(|_| None);
    let started = std::time::Instant::now();
    let status = EscposPrinter::new(&device, 576).unwrap().status();
    assert_eq!(status.state, PrinterState::Unknown);
    assert!(status.state.can_print());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "status must return promptly"
    );
}

#[test]
fn status_ignores_bytes_that_are_not_status() {
    let (device, fake) = fake_printer(move |mut stream| {
        let mut question = [0u8; 3];
        stream.read_exact(&mut question).unwrap();
        // Garbage first (bit 7 set, not a status pattern), then the real answer.
        stream.write_all(&[0xFF, 0x00, 0x12]).unwrap();
        stream.read_exact(&mut question).unwrap();
        stream.write_all(&[0x12]).unwrap();
        let _ = stream.read(&mut question);
    });
    let status = EscposPrinter::new(&device, 576).unwrap().status();
    fake.join().unwrap();
    assert_eq!(status.state, PrinterState::Ready);
}

#[test]
fn config_selects_the_escpos_backend() {
    let text = photoboothd::config::DEFAULT_TOML;
    let escpos = text.replacen(
        "backend = \"file\"",
        "backend = \"escpos\"\ndevice = \"tcp://127.0.0.1:9\"",
        1,
    );
    assert_ne!(escpos, text, "the default config names the file backend");
    let config = Config::parse(&escpos, "test").unwrap();
    assert_eq!(printer::from_config(&config).unwrap().backend(), "escpos");
}

#[test]
fn garbage_from_a_tcp_peer_never_panics() {
    // A peer that floods random bytes and closes: status must come back, whatever it decides.
    let (device, fake) = fake_printer(move |mut stream| {
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80)
            .collect();
        let _ = stream.write_all(&noise);
    });
    let status = EscposPrinter::new(&device, 576).unwrap().status();
    fake.join().unwrap();
    assert_eq!(status.state, PrinterState::Unknown);
}
