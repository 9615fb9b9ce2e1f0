//! Every shipped layout composed from three camera-sized JPEGs: page size, which photo lands in
//! which slot, the two-up strip, text ink, and errors for missing or corrupt photos.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, Rgb, RgbImage};
use photoboothd::layout::compose::{compose, compose_prepared, prepare_photo, Context, LayoutError};
use photoboothd::layout::template::{self, Template};

mod common;

/// The Pi HQ camera's full resolution, so the DCT-scale choice is the one a booth makes.
const CAMERA: (u32, u32) = (4056, 3040);
const RED: Rgb<u8> = Rgb([220, 30, 30]);
const GREEN: Rgb<u8> = Rgb([30, 200, 40]);
const BLUE: Rgb<u8> = Rgb([30, 40, 220]);
const YELLOW: Rgb<u8> = Rgb([240, 220, 20]);
/// Flat colours survive JPEG at quality 90 within a few levels; 4:2:x chroma rounding adds a few.
const TOLERANCE: i32 = 16;

const CTX: Context<'static> = Context {
    booth_name: "Foto Ёлка",
    time_ms: 1_795_000_000_000,
    date_text: None,
};

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    rgb: [PathBuf; 3],
    yellow: PathBuf,
}

/// Encoding 12 MP JPEGs is slow in a debug build, so every test shares one set.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let write = |name: &str, color: Rgb<u8>, (w, h): (u32, u32)| {
            let p = path.join(name);
            let img = RgbImage::from_pixel(w, h, color);
            std::fs::write(&p, jpeg(&img, None)).expect("write jpeg");
            p
        };
        let rgb = std::thread::scope(|s| {
            let r = s.spawn(|| write("red.jpg", RED, CAMERA));
            let g = s.spawn(|| write("green.jpg", GREEN, CAMERA));
            let b = write("blue.jpg", BLUE, CAMERA);
            [r.join().expect("red"), g.join().expect("green"), b]
        });
        // Only ever passed as a photo too many, never decoded: it need not be camera-sized.
        let yellow = write("yellow.jpg", YELLOW, (640, 480));
        Fixture {
            dir: path,
            _dir: dir,
            rgb,
            yellow,
        }
    })
}

fn jpeg(img: &RgbImage, exif: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut out, 90);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).expect("exif");
    }
    enc.encode_image(img).expect("encode");
    out
}

fn close(a: Rgb<u8>, b: Rgb<u8>) -> bool {
    a.0.iter()
        .zip(b.0)
        .all(|(&x, y)| (i32::from(x) - i32::from(y)).abs() <= TOLERANCE)
}

/// The page pixel at a strip-relative point, in strip copy `copy`.
fn at(page: &RgbImage, t: &Template, copy: u32, (x, y): (u32, u32)) -> Rgb<u8> {
    *page.get_pixel(copy * t.cell_width() + x, y)
}

fn assert_slots(page: &RgbImage, t: &Template, colors: &[Rgb<u8>]) {
    for copy in 0..t.repeat_x() {
        for (i, slot) in t.slots().iter().enumerate() {
            let want = colors[i % colors.len()];
            let got = at(page, t, copy, slot.center());
            assert!(
                close(got, want),
                "{}: slot {i} (copy {copy}) is {got:?}, want {want:?}",
                t.name()
            );
            // Slots are filled edge to edge: cover, not fit.
            for corner in [(slot.x, slot.y), (slot.x + slot.w - 1, slot.y + slot.h - 1)] {
                let got = at(page, t, copy, corner);
                assert!(close(got, want), "{}: slot {i} corner {corner:?} is {got:?}", t.name());
            }
        }
    }
}

/// The kiosk session prepares each shot as it is taken and assembles the page after the last one;
/// that page must be the very page `compose` makes from the same files, in any preparation order.
#[test]
fn a_page_from_shots_prepared_one_by_one_is_the_composed_page() {
    let f = fixture();
    for name in template::names() {
        let t = template::load(name).unwrap_or_else(|e| panic!("{e}"));
        let whole = compose(&t, &f.rgb, &CTX).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut prepared: Vec<_> = (0..3)
            .rev()
            .map(|i| prepare_photo(&t, i, 3, &f.rgb[i]).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect();
        prepared.reverse();
        let assembled = compose_prepared(&t, &prepared, &CTX);
        assert!(
            whole == assembled,
            "{name}: the prepared page differs from the composed one"
        );
    }
    let first = template::names().next().unwrap_or("classic");
    let t = template::load(first).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(
            prepare_photo(&t, 0, 3, &f.dir.join("missing.jpg")),
            Err(LayoutError::Photo { .. })
        ),
        "a missing shot is an error naming the photo"
    );
}

/// The review preview takes the last shot from its EXIF thumbnail (no 12 MP decode between the
/// shot and the review); the print never does. The thumbnails here are yellow and the photos are
/// red, green and blue, so each pixel says which one it came from.
#[test]
fn the_preview_takes_the_last_shot_from_its_thumbnail_and_the_page_from_the_photo() {
    use photoboothd::booth::session::SessionFiles;
    let dir = tempfile::tempdir().expect("temp dir");
    let files = SessionFiles::new(dir.path(), 1);
    std::fs::create_dir_all(files.dir()).expect("session dir");
    let thumb = RgbImage::from_pixel(320, 240, YELLOW);
    for (n, color) in [(1, RED), (2, GREEN), (3, BLUE)] {
        let exif = common::jpeg::exif_with_thumbnail(&thumb, 1);
        let img = RgbImage::from_pixel(CAMERA.0, CAMERA.1, color);
        std::fs::write(files.shot(n), jpeg(&img, Some(exif))).expect("write shot");
    }
    let thumbnail = photoboothd::layout::thumbnail::read(&files.shot(3)).expect("the thumbnail reads");
    assert_eq!(thumbnail.dimensions(), (320, 240));
    assert!(close(*thumbnail.get_pixel(160, 120), YELLOW));

    let mut config = photoboothd::config::Config::built_in().expect("built-in config");
    config.printer.layout = "4x6-grid".into();
    config.booth.name = CTX.booth_name.into();
    let t = template::load("4x6-grid").expect("4x6-grid");
    // Shots 1 and 2 were prepared during the countdowns; shot 3 was just taken.
    let prepared = (0..2)
        .map(|i| prepare_photo(&t, i, 3, &files.shot(i as u32 + 1)).ok())
        .collect();
    let job = files.compose_page(&config, None, 3, prepared).expect("compose");

    let preview = image::open(files.preview()).expect("preview").to_rgb8();
    let scale = f64::from(preview.width()) / f64::from(t.width());
    let in_preview = |slot: &template::Slot| {
        let (x, y) = slot.center();
        *preview.get_pixel((f64::from(x) * scale) as u32, (f64::from(y) * scale) as u32)
    };
    let slots = t.slots();
    assert!(close(in_preview(&slots[0]), RED) && close(in_preview(&slots[1]), GREEN));
    assert!(close(in_preview(&slots[2]), YELLOW), "shot 3 came from its thumbnail");

    let page = job.run().expect("the page");
    assert_slots(&page, &t, &[RED, GREEN, BLUE]);
}

#[test]
fn every_layout_composes_three_camera_photos() {
    let f = fixture();
    let colors = [RED, GREEN, BLUE];
    for name in template::names() {
        let t = template::load(name).unwrap_or_else(|e| panic!("{e}"));
        let page = compose(&t, &f.rgb, &CTX).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(page.dimensions(), (t.width(), t.height()), "{name}");
        assert_slots(&page, &t, &colors);

        // Every text line leaves ink: the rows it occupies hold dark pixels, and its own colour.
        for (i, item) in t.texts().iter().enumerate() {
            let rows = item.y..(item.y + item.size * 117 / 100).min(t.height());
            let dark = rows
                .flat_map(|y| (0..t.cell_width()).map(move |x| (x, y)))
                .filter(|&(x, y)| page.get_pixel(x, y).0.iter().all(|&c| c < 128))
                .count();
            assert!(dark > 100, "{name}: text[{i}] has only {dark} dark pixels");
        }

        // Outside slots and text the page keeps its white background (the margins are clean).
        assert_eq!(page.get_pixel(2, 2).0, [255, 255, 255], "{name}: top-left margin");
        let bottom = t.height() - 3;
        assert_eq!(
            page.get_pixel(t.width() - 3, bottom).0,
            [255, 255, 255],
            "{name}: bottom-right margin"
        );

        if t.repeat_x() == 2 {
            // Two identical strips for the `-div2` cut: every row's left half equals its right half.
            let row_bytes = t.width() as usize * 3;
            for (y, row) in page.as_raw().chunks_exact(row_bytes).enumerate() {
                let (left, right) = row.split_at(row_bytes / 2);
                assert!(left == right, "{name}: halves differ in row {y}");
            }
        }
    }
}

#[test]
fn strip_two_up_is_the_default_layout_at_4x6() {
    let t = template::load("strip-2x6").expect("strip");
    assert_eq!(
        (t.width(), t.height(), t.repeat_x(), t.cell_width()),
        (1200, 1800, 2, 600)
    );
}

#[test]
fn fewer_photos_repeat_and_extra_photos_are_left_out() {
    let f = fixture();
    let grid = template::load("4x6-grid").expect("grid");
    let page = compose(&grid, &f.rgb[..1], &CTX).expect("one photo");
    assert_slots(&page, &grid, &[RED]);
    let page = compose(&grid, &f.rgb[..2], &CTX).expect("two photos");
    assert_slots(&page, &grid, &[RED, GREEN]);

    let strip = template::load("strip-2x6").expect("strip");
    let four = [&f.rgb[0], &f.rgb[1], &f.rgb[2], &f.yellow];
    let page = compose(&strip, &four, &CTX).expect("four photos");
    assert_slots(&page, &strip, &[RED, GREEN, BLUE]);
    assert!(
        !page.pixels().any(|&p| close(p, YELLOW)),
        "the fourth photo must not appear"
    );
}

#[test]
fn no_photos_is_an_error() {
    let t = template::load("thermal-58").expect("thermal");
    let none: [&Path; 0] = [];
    assert!(matches!(compose(&t, &none, &CTX), Err(LayoutError::NoPhotos)));
}

#[test]
fn a_missing_photo_names_its_path() {
    let f = fixture();
    let missing = f.dir.join("never-taken.jpg");
    let t = template::load("strip-2x6").expect("strip");
    let photos = [f.rgb[0].clone(), missing.clone(), f.rgb[2].clone()];
    let err = compose(&t, &photos, &CTX).expect_err("missing photo");
    assert!(
        matches!(&err, LayoutError::Photo { path, .. } if *path == missing),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&missing.display().to_string()) && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn corrupt_photos_are_errors_not_panics() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("temp dir");
    let good = std::fs::read(&f.rgb[0]).expect("read");
    let mut png = Vec::new();
    RgbImage::from_pixel(8, 8, RED)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty.jpg", Vec::new()),
        ("text.jpg", b"this is not a jpeg at all".to_vec()),
        ("png.jpg", png),
        ("header-only.jpg", good[..200].to_vec()),
        ("soi-only.jpg", vec![0xFF, 0xD8, 0xFF]),
    ];
    let t = template::load("thermal-80").expect("thermal");
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let photos = [f.rgb[0].clone(), path.clone()];
        let err = compose(&t, &photos, &CTX).expect_err(name);
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains("JPEG"), "{name}: {msg}");
    }

    // A header claiming 20000×20000 is refused before anything that size is allocated.
    let mut huge = good;
    let sof = huge.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF");
    huge[sof + 5..sof + 9].copy_from_slice(&[0x4E, 0x20, 0x4E, 0x20]);
    let path = dir.path().join("huge.jpg");
    std::fs::write(&path, huge).expect("write");
    let msg = compose(&t, &[&path], &CTX).expect_err("huge").to_string();
    assert!(msg.contains("huge.jpg") && msg.contains("20000×20000"), "{msg}");

    // Damaged entropy data may decode to garbage or fail, but must never panic. A small photo and a
    // small slot keep this quick in a debug build; the damage lands in the scan, past the headers.
    let t = Template::parse(
        "fuzz",
        "width = 64\nheight = 48\ndpi = 300\n[[slot]]\nx = 0\ny = 0\nw = 64\nh = 48\n",
    )
    .expect("template");
    let small = jpeg(
        &RgbImage::from_fn(640, 480, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8])),
        None,
    );
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..40 {
        let mut bytes = small.clone();
        for _ in 0..1 + round % 8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = 700 + (seed as usize) % (bytes.len() - 700);
            bytes[i] = (seed >> 32) as u8;
        }
        if round % 5 == 4 {
            bytes.truncate(bytes.len() / 2);
        }
        let path = dir.path().join(format!("damaged-{round}.jpg"));
        std::fs::write(&path, &bytes).expect("write");
        if let Err(e) = compose(&t, &[&path], &CTX) {
            assert!(e.to_string().contains(&format!("damaged-{round}.jpg")), "{e}");
        }
    }
}

/// A minimal little-endian TIFF/EXIF block holding only the orientation tag.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut v = b"II*\0".to_vec();
    v.extend_from_slice(&8u32.to_le_bytes()); // first IFD right after the header
    v.extend_from_slice(&1u16.to_le_bytes()); // one entry
    v.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    v.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    v.extend_from_slice(&1u32.to_le_bytes()); // one value
    v.extend_from_slice(&value.to_le_bytes());
    v.extend_from_slice(&[0, 0]); // padding of the 4-byte value field
    v.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    v
}

#[test]
fn exif_orientation_is_applied_before_cropping() {
    // Stored sideways: left half red, right half blue. EXIF 6 = rotate 90° clockwise to view, so
    // upright the red half is on top. A tall slot shows red above blue; ignoring EXIF would show a
    // red|blue split left to right instead.
    let sideways = RgbImage::from_fn(800, 400, |x, _| if x < 400 { RED } else { BLUE });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portrait.jpg");
    std::fs::write(&path, jpeg(&sideways, Some(exif_orientation(6)))).expect("write");
    let t = Template::parse(
        "tall",
        "width = 200\nheight = 400\ndpi = 300\n[[slot]]\nx = 0\ny = 0\nw = 200\nh = 400\n",
    )
    .expect("template");
    let page = compose(&t, &[&path], &CTX).expect("compose");
    for x in [10, 100, 190] {
        assert!(
            close(*page.get_pixel(x, 100), RED),
            "top at x={x}: {:?}",
            page.get_pixel(x, 100)
        );
        assert!(
            close(*page.get_pixel(x, 300), BLUE),
            "bottom at x={x}: {:?}",
            page.get_pixel(x, 300)
        );
    }
}

#[test]
fn a_frame_png_is_blended_over_the_photos() {
    // A frame with an opaque black border 10 px wide and a transparent window.
    let frame = image::RgbaImage::from_fn(300, 200, |x, y| {
        let border = x < 10 || y < 10 || x >= 290 || y >= 190;
        image::Rgba(if border { [0, 0, 0, 255] } else { [0, 0, 0, 0] })
    });
    let mut png = Vec::new();
    frame
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let src = "width = 600\nheight = 200\ndpi = 300\nrepeat_x = 2\nframe = \"f.png\"\n\
               [[slot]]\nx = 0\ny = 0\nw = 300\nh = 200\n";
    let t = Template::parse_with_assets("framed", src, &[("f.png", &png)]).expect("template");
    let page = compose(&t, &fixture().rgb[1..2], &CTX).expect("compose");
    assert_eq!(page.dimensions(), (600, 200));
    for copy in 0..2 {
        assert_eq!(at(&page, &t, copy, (5, 100)).0, [0, 0, 0]);
        assert!(close(at(&page, &t, copy, (150, 100)), GREEN));
    }
}

#[test]
fn a_long_booth_name_shrinks_to_stay_inside_the_margins() {
    let f = fixture();
    let t = template::load("thermal-58").expect("thermal");
    let long = Context {
        booth_name: "Wedding of Aziza and Timur — Tashkent City Hall, Grand Ballroom",
        ..CTX
    };
    let page = compose(&t, &f.rgb, &long).expect("compose");
    let name = &t.texts()[0];
    let margin = t.slots()[0].x;
    for y in name.y..name.y + name.size * 117 / 100 {
        for x in (0..margin).chain(t.cell_width() - margin..t.cell_width()) {
            assert_eq!(page.get_pixel(x, y).0, [255, 255, 255], "ink in the margin at {x},{y}");
        }
    }
}

#[test]
fn an_event_date_is_printed_as_written_in_place_of_the_day() {
    let f = fixture();
    let t = template::load("strip-2x6").expect("strip");
    // CTX's time is 2026-11-18 UTC; the strip prints it as "18.11.2026".
    let written = Context {
        date_text: Some("18.11.2026"),
        ..CTX
    };
    let other = Context {
        date_text: Some("12.06.2026"),
        ..CTX
    };
    let by_clock = compose(&t, &f.rgb, &CTX).expect("compose");
    assert!(compose(&t, &f.rgb, &written).expect("compose") == by_clock);
    assert!(compose(&t, &f.rgb, &other).expect("compose") != by_clock);
}
