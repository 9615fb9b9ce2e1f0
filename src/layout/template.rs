//! Print templates: page size, photo slots and text for one layout, one TOML file per layout in
//! `assets/templates/`. The files (and any PNGs they name) are embedded, so one binary deploys every
//! layout and a template can never go missing on a booth. Every error names the template and key.
//!
//! Format (all lengths in pixels at the printer's native resolution, origin top-left):
//!
//! ```toml
//! width = 1200                 # the page the printer gets
//! height = 1800
//! dpi = 300                    # informational: what the pixel sizes were designed for
//! repeat_x = 2                 # optional (1): the design is a strip width/repeat_x wide, drawn repeat_x
//!                              # times side by side (2×6 strips two-up on 4×6 media for `-div2`)
//! background = "#ffffff"       # optional (white); "#rrggbb" or "#rgb"
//! background_image = "x.png"   # optional: an RGB PNG the size of one strip, drawn under the photos
//! frame = "y.png"              # optional: an RGBA PNG the size of one strip, blended over the photos
//!
//! [[slot]]                     # one per photo, in shot order; photos are cover-cropped, centred
//! x = 40
//! y = 40
//! w = 520
//! h = 460
//!
//! [[text]]
//! kind = "booth_name"          # or "date" (with optional format, default "%d.%m.%Y"),
//!                              # or "literal" (with text = "…")
//! align = "center"             # "left" (x = left edge), "center" (x = centre, default the strip's
//!                              # centre) or "right" (x = right edge)
//! y = 1520                     # top of the line
//! size = 64                    # font size in px (DejaVu Sans Bold)
//! color = "#1e1e1e"            # optional (black)
//! max_width = 500              # optional: longer text is shrunk to fit; default keeps the photos'
//!                              # side margin
//! ```

use std::fmt;
use std::path::PathBuf;

use image::{ImageFormat, Rgb, RgbImage, RgbaImage};
use serde::Deserialize;

/// The shipped templates, by name. The name is what `printer.layout` holds.
const TEMPLATES: &[(&str, &str)] = &[
    ("4x6-single", include_str!("../../assets/templates/4x6-single.toml")),
    ("4x6-grid", include_str!("../../assets/templates/4x6-grid.toml")),
    ("strip-2x6", include_str!("../../assets/templates/strip-2x6.toml")),
    ("thermal-80", include_str!("../../assets/templates/thermal-80.toml")),
    ("thermal-58", include_str!("../../assets/templates/thermal-58.toml")),
];

/// PNGs that shipped templates may name as `background_image` or `frame`, embedded like the TOML.
/// None ship yet; add `("name.png", include_bytes!("../../assets/templates/name.png"))` here.
const ASSETS: &[(&str, &[u8])] = &[];

/// Largest page side accepted: 6×9 in at 600 dpi is 5400 px; anything bigger is a typo that would
/// otherwise allocate gigabytes.
const MAX_SIDE: u32 = 8000;

/// Date format codes `kind = "date"` understands; anything else is refused at load time.
const FORMAT_CODES: &[char] = &['Y', 'm', 'd', 'H', 'M', '%'];

/// Why a template could not be loaded or a page could not be composed.
#[derive(Debug)]
pub enum LayoutError {
    /// No shipped template has this name.
    UnknownTemplate(String),
    /// A template is malformed; `key` is the TOML key (`slot[1].w`), or `toml` for a syntax error.
    Template {
        template: String,
        key: String,
        message: String,
    },
    /// `compose` was called without photos.
    NoPhotos,
    /// A photo could not be read or decoded.
    Photo { path: PathBuf, message: String },
    /// Something that should not happen (a decoder panicked); the message says what.
    Internal(String),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::UnknownTemplate(name) => {
                let known: Vec<&str> = names().collect();
                write!(f, "unknown layout template {name:?} (shipped: {})", known.join(", "))
            }
            LayoutError::Template { template, key, message } => write!(f, "template {template:?}: {key}: {message}"),
            LayoutError::NoPhotos => f.write_str("no photos to compose"),
            LayoutError::Photo { path, message } => write!(f, "photo {}: {message}", path.display()),
            LayoutError::Internal(message) => write!(f, "layout: {message}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// A parsed, validated template. Coordinates of slots and text are inside one strip
/// (`cell_width() × height()`); the page is `repeat_x` strips side by side.
#[derive(Debug, Clone)]
pub struct Template {
    pub(super) name: String,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) dpi: u32,
    pub(super) repeat_x: u32,
    pub(super) background: Rgb<u8>,
    pub(super) background_image: Option<RgbImage>,
    pub(super) frame: Option<RgbaImage>,
    pub(super) slots: Vec<Slot>,
    pub(super) texts: Vec<TextItem>,
}

/// Where one photo goes, inside the strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Slot {
    /// The centre pixel.
    pub fn center(&self) -> (u32, u32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextKind {
    /// The booth name from the config (`booth.name`).
    BoothName,
    /// The print time, formatted with `%Y %m %d %H %M %%`.
    Date {
        format: String,
    },
    Literal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// One line of text. `x` is the anchor the alignment refers to (left edge, centre or right edge).
#[derive(Debug, Clone, PartialEq)]
pub struct TextItem {
    pub kind: TextKind,
    pub align: Align,
    pub x: u32,
    pub y: u32,
    pub size: u32,
    pub color: Rgb<u8>,
    /// The widest the line may be; longer text is drawn smaller.
    pub max_width: u32,
}

impl Template {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Page width in pixels (all strips).
    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn dpi(&self) -> u32 {
        self.dpi
    }
    pub fn repeat_x(&self) -> u32 {
        self.repeat_x
    }
    /// Width of one strip, the space slot and text coordinates live in.
    pub fn cell_width(&self) -> u32 {
        self.width / self.repeat_x
    }
    pub fn background(&self) -> Rgb<u8> {
        self.background
    }
    pub fn background_image(&self) -> Option<&RgbImage> {
        self.background_image.as_ref()
    }
    pub fn frame(&self) -> Option<&RgbaImage> {
        self.frame.as_ref()
    }
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
    pub fn texts(&self) -> &[TextItem] {
        &self.texts
    }

    /// Parses and validates a template whose PNGs (if any) are among the embedded assets.
    pub fn parse(name: &str, toml_src: &str) -> Result<Template, LayoutError> {
        Self::parse_with_assets(name, toml_src, ASSETS)
    }

    /// Parses and validates a template, looking up `background_image` and `frame` in `assets`
    /// (file name → PNG bytes). For templates that do not ship in the binary, and for tests.
    pub fn parse_with_assets(name: &str, toml_src: &str, assets: &[(&str, &[u8])]) -> Result<Template, LayoutError> {
        let err = |key: &str, message: String| LayoutError::Template {
            template: name.to_string(),
            key: key.to_string(),
            message,
        };
        let raw: RawTemplate = toml::from_str(toml_src).map_err(|e| err("toml", e.to_string().trim().to_string()))?;

        if raw.width == 0 || raw.width > MAX_SIDE {
            return Err(err("width", format!("{} is not between 1 and {MAX_SIDE}", raw.width)));
        }
        if raw.height == 0 || raw.height > MAX_SIDE {
            return Err(err("height", format!("{} is not between 1 and {MAX_SIDE}", raw.height)));
        }
        if raw.dpi == 0 {
            return Err(err("dpi", "must be greater than 0".into()));
        }
        if raw.repeat_x == 0 || !raw.width.is_multiple_of(raw.repeat_x) {
            return Err(err(
                "repeat_x",
                format!("{} must be at least 1 and divide the width {}", raw.repeat_x, raw.width),
            ));
        }
        let cell_w = raw.width / raw.repeat_x;
        let (page_h, strip) = (raw.height, if raw.repeat_x > 1 { "strip" } else { "page" });

        let background = match &raw.background {
            Some(c) => parse_color(c).ok_or_else(|| err("background", format!("{c:?} is not a #rrggbb colour")))?,
            None => Rgb([255, 255, 255]),
        };
        let png = |key: &str, file: &str| -> Result<image::DynamicImage, LayoutError> {
            let bytes = assets
                .iter()
                .find(|(n, _)| *n == file)
                .map(|(_, b)| *b)
                .ok_or_else(|| err(key, format!("{file:?} is not an embedded asset")))?;
            let img = image::load_from_memory_with_format(bytes, ImageFormat::Png)
                .map_err(|e| err(key, format!("{file:?} is not a readable PNG: {e}")))?;
            if (img.width(), img.height()) != (cell_w, page_h) {
                return Err(err(
                    key,
                    format!(
                        "{file:?} is {}×{}, the {strip} is {cell_w}×{page_h}",
                        img.width(),
                        img.height()
                    ),
                ));
            }
            Ok(img)
        };
        let background_image = match &raw.background_image {
            Some(file) => Some(png("background_image", file)?.to_rgb8()),
            None => None,
        };
        let frame = match &raw.frame {
            Some(file) => Some(png("frame", file)?.to_rgba8()),
            None => None,
        };

        if raw.slot.is_empty() {
            return Err(err("slot", "a template needs at least one [[slot]]".into()));
        }
        let mut slots = Vec::with_capacity(raw.slot.len());
        for (i, s) in raw.slot.iter().enumerate() {
            if s.w == 0 {
                return Err(err(&format!("slot[{i}].w"), "must be greater than 0".into()));
            }
            if s.h == 0 {
                return Err(err(&format!("slot[{i}].h"), "must be greater than 0".into()));
            }
            // A slot ends (position + size) inside its strip, on both axes.
            for (axis, sum, end, bound, limit) in [
                (
                    "x",
                    "x + w",
                    u64::from(s.x) + u64::from(s.w),
                    format!("{strip} width"),
                    cell_w,
                ),
                (
                    "y",
                    "y + h",
                    u64::from(s.y) + u64::from(s.h),
                    "page height".to_string(),
                    page_h,
                ),
            ] {
                if end > u64::from(limit) {
                    let message = format!("{sum} = {end} is outside the {bound} {limit}");
                    return Err(err(&format!("slot[{i}].{axis}"), message));
                }
            }
            slots.push(Slot {
                x: s.x,
                y: s.y,
                w: s.w,
                h: s.h,
            });
        }
        // Text keeps the photos' side margin unless told otherwise, so lines up with them.
        let margin = slots.iter().map(|s| s.x.min(cell_w - s.x - s.w)).min().unwrap_or(0);

        let mut texts = Vec::with_capacity(raw.text.len());
        for (i, t) in raw.text.iter().enumerate() {
            let key = |k: &str| format!("text[{i}].{k}");
            let kind = match t.kind.as_str() {
                "booth_name" => TextKind::BoothName,
                "date" => {
                    let format = t.format.clone().unwrap_or_else(|| "%d.%m.%Y".to_string());
                    check_format(&format).map_err(|m| err(&key("format"), m))?;
                    TextKind::Date { format }
                }
                "literal" => match &t.text {
                    Some(s) if !s.trim().is_empty() => TextKind::Literal(s.clone()),
                    _ => return Err(err(&key("text"), "kind = \"literal\" needs a non-empty text".into())),
                },
                other => {
                    return Err(err(
                        &key("kind"),
                        format!("{other:?} is not one of \"booth_name\", \"date\", \"literal\""),
                    ))
                }
            };
            if t.text.is_some() && !matches!(kind, TextKind::Literal(_)) {
                return Err(err(&key("text"), "only kind = \"literal\" takes a text".into()));
            }
            if t.format.is_some() && !matches!(kind, TextKind::Date { .. }) {
                return Err(err(&key("format"), "only kind = \"date\" takes a format".into()));
            }
            let align = match t.align.as_deref().unwrap_or("left") {
                "left" => Align::Left,
                "center" | "centre" => Align::Center,
                "right" => Align::Right,
                other => {
                    return Err(err(
                        &key("align"),
                        format!("{other:?} is not one of \"left\", \"center\", \"right\""),
                    ))
                }
            };
            let x = match (t.x, align) {
                (Some(x), _) => x,
                (None, Align::Center) => cell_w / 2,
                (None, _) => return Err(err(&key("x"), "required unless align = \"center\"".into())),
            };
            if x > cell_w {
                return Err(err(&key("x"), format!("{x} is outside the {strip} width {cell_w}")));
            }
            if t.size == 0 {
                return Err(err(&key("size"), "must be greater than 0".into()));
            }
            // A line is about 1.17 × size tall (DejaVu ascent + descent); size itself must fit.
            if u64::from(t.y) + u64::from(t.size) > u64::from(page_h) {
                return Err(err(
                    &key("y"),
                    format!("y + size = {} is outside the page height {page_h}", t.y + t.size),
                ));
            }
            let color = match &t.color {
                Some(c) => {
                    parse_color(c).ok_or_else(|| err(&key("color"), format!("{c:?} is not a #rrggbb colour")))?
                }
                None => Rgb([0, 0, 0]),
            };
            // The room between the anchor and the strip's edges, less the margin.
            let room = match align {
                Align::Left => cell_w.saturating_sub(x).saturating_sub(margin),
                Align::Right => x.saturating_sub(margin),
                Align::Center => 2 * x.min(cell_w - x).saturating_sub(margin),
            };
            let max_width = match t.max_width {
                Some(0) => return Err(err(&key("max_width"), "must be greater than 0".into())),
                Some(w) => {
                    let fits = match align {
                        Align::Left => u64::from(x) + u64::from(w) <= u64::from(cell_w),
                        Align::Right => w <= x,
                        Align::Center => w / 2 <= x.min(cell_w - x),
                    };
                    if !fits {
                        return Err(err(
                            &key("max_width"),
                            format!("{w} at x = {x} reaches outside the {strip} width {cell_w}"),
                        ));
                    }
                    w
                }
                None if room == 0 => {
                    return Err(err(
                        &key("x"),
                        format!("{x} leaves no room for text inside the margin {margin}"),
                    ))
                }
                None => room,
            };
            texts.push(TextItem {
                kind,
                align,
                x,
                y: t.y,
                size: t.size,
                color,
                max_width,
            });
        }

        Ok(Template {
            name: name.to_string(),
            width: raw.width,
            height: raw.height,
            dpi: raw.dpi,
            repeat_x: raw.repeat_x,
            background,
            background_image,
            frame,
            slots,
            texts,
        })
    }
}

/// Loads a shipped template by name (`printer.layout`).
pub fn load(name: &str) -> Result<Template, LayoutError> {
    let (_, src) = TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| LayoutError::UnknownTemplate(name.to_string()))?;
    Template::parse(name, src)
}

/// Names of the shipped templates.
pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(n, _)| *n)
}

fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(code) if FORMAT_CODES.contains(&code) => {}
                Some(code) => return Err(format!("%{code} is not one of %Y %m %d %H %M %%")),
                None => return Err("ends with a lone %".into()),
            }
        }
    }
    Ok(())
}

/// `#rrggbb` or `#rgb`.
fn parse_color(s: &str) -> Option<Rgb<u8>> {
    let hex = s.strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = |i: usize, n: usize| u8::from_str_radix(&hex[i..i + n], 16).ok();
    match hex.len() {
        6 => Some(Rgb([v(0, 2)?, v(2, 2)?, v(4, 2)?])),
        3 => Some(Rgb([v(0, 1)? * 17, v(1, 1)? * 17, v(2, 1)? * 17])),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    width: u32,
    height: u32,
    dpi: u32,
    #[serde(default = "one")]
    repeat_x: u32,
    background: Option<String>,
    background_image: Option<String>,
    frame: Option<String>,
    #[serde(default)]
    slot: Vec<RawSlot>,
    #[serde(default)]
    text: Vec<RawText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    kind: String,
    text: Option<String>,
    format: Option<String>,
    align: Option<String>,
    x: Option<u32>,
    y: u32,
    size: u32,
    color: Option<String>,
    max_width: Option<u32>,
}

fn one() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "width = 600\nheight = 400\ndpi = 300\n[[slot]]\nx = 10\ny = 10\nw = 100\nh = 100\n";

    fn error_of(src: &str) -> String {
        match Template::parse("t", src) {
            Ok(_) => panic!("template parsed: {src}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_shipped_template_loads() {
        let names: Vec<&str> = names().collect();
        assert_eq!(names.len(), TEMPLATES.len());
        for name in names {
            let t = load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.name(), name);
            assert!(!t.slots().is_empty(), "{name}");
            assert!(
                t.texts().iter().any(|x| x.kind == TextKind::BoothName),
                "{name} shows the booth name"
            );
            assert!(
                t.texts().iter().any(|x| matches!(x.kind, TextKind::Date { .. })),
                "{name} shows the date"
            );
            // Nothing overlaps: text lines sit below or above every slot.
            for text in t.texts() {
                for slot in t.slots() {
                    let (top, bottom) = (text.y, text.y + text.size * 117 / 100);
                    assert!(bottom <= slot.y || top >= slot.y + slot.h, "{name}: text over a slot");
                }
            }
        }
        // The config default must exist.
        assert!(load("strip-2x6").is_ok());
        assert!(matches!(load("nope"), Err(LayoutError::UnknownTemplate(_))));
    }

    #[test]
    fn shipped_sizes_match_the_printers() {
        let size = |n: &str| {
            let t = load(n).unwrap();
            (t.width(), t.height(), t.cell_width())
        };
        assert_eq!(size("4x6-single"), (1200, 1800, 1200));
        assert_eq!(size("4x6-grid"), (1200, 1800, 1200));
        assert_eq!(size("strip-2x6"), (1200, 1800, 600));
        assert_eq!(size("thermal-80").0, 576);
        assert_eq!(size("thermal-58").0, 384);
        assert_eq!(load("4x6-grid").unwrap().slots().len(), 4);
        assert_eq!(load("strip-2x6").unwrap().slots().len(), 3);
    }

    #[test]
    fn errors_name_the_template_and_key() {
        let e = error_of(&MINIMAL.replace("w = 100", "w = 0"));
        assert!(e.contains("template \"t\"") && e.contains("slot[0].w"), "{e}");
        let e = error_of(&MINIMAL.replace("x = 10", "x = 550"));
        assert!(e.contains("slot[0].x") && e.contains("600"), "{e}");
        let e = error_of(&MINIMAL.replace("y = 10", "y = 350"));
        assert!(e.contains("slot[0].y"), "{e}");
        let e = error_of(
            &MINIMAL
                .replace("dpi = 300", "dpi = 300\nrepeat_x = 2")
                .replace("x = 10", "x = 250"),
        );
        assert!(e.contains("slot[0].x") && e.contains("strip width 300"), "{e}");
        let e = error_of(&MINIMAL.replace("dpi = 300", "dpi = 300\nrepeat_x = 7"));
        assert!(e.contains("repeat_x"), "{e}");
        let e = error_of(&MINIMAL.replace("dpi = 300", "dpi = 300\nbackground = \"#12\""));
        assert!(e.contains("background"), "{e}");
        let e = error_of(&MINIMAL.replace("dpi = 300", "dpi = 300\nframe = \"f.png\""));
        assert!(e.contains("frame") && e.contains("f.png"), "{e}");
        let e = error_of("width = 600\nheight = 400\ndpi = 300\n");
        assert!(e.contains("slot"), "{e}");
        // A `[[text]]` after the minimal template, and what its error must name.
        for (text, names) in [
            (
                "kind = \"bothname\"\ny = 200\nsize = 20\nalign = \"center\"\n",
                &["text[0].kind"][..],
            ),
            (
                "kind = \"date\"\nformat = \"%d %B\"\ny = 200\nsize = 20\nx = 5\n",
                &["text[0].format", "%B"],
            ),
            ("kind = \"booth_name\"\ny = 390\nsize = 20\nx = 5\n", &["text[0].y"]),
            ("kind = \"booth_name\"\ny = 100\nsize = 20\n", &["text[0].x"]),
            ("kind = \"literal\"\ny = 100\nsize = 20\nx = 20\n", &["text[0].text"]),
            (
                "kind = \"booth_name\"\ntext = \"x\"\ny = 100\nsize = 20\nx = 20\n",
                &["text[0].text"],
            ),
        ] {
            let e = error_of(&format!("{MINIMAL}[[text]]\n{text}"));
            assert!(names.iter().all(|n| e.contains(n)), "{e}");
        }
        let e = error_of(&format!("{MINIMAL}colour = \"#fff\"\n"));
        assert!(e.contains("toml") && e.contains("colour"), "{e}");
    }

    #[test]
    fn text_defaults_keep_the_photo_margin() {
        let t = Template::parse(
            "t",
            &format!("{MINIMAL}[[text]]\nkind = \"booth_name\"\nalign = \"center\"\ny = 200\nsize = 20\n"),
        )
        .unwrap();
        let text = &t.texts()[0];
        assert_eq!((text.x, text.max_width, text.color), (300, 580, Rgb([0, 0, 0])));
    }

    #[test]
    fn png_assets_must_match_the_strip() {
        let mut png = Vec::new();
        RgbaImage::new(300, 400)
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let src = MINIMAL.replace("dpi = 300", "dpi = 300\nrepeat_x = 2\nframe = \"f.png\"");
        let t = Template::parse_with_assets("t", &src, &[("f.png", &png)]).unwrap();
        assert_eq!(t.frame().map(|f| f.dimensions()), Some((300, 400)));
        let e = Template::parse_with_assets("t", &src.replace("repeat_x = 2", ""), &[("f.png", &png)]).unwrap_err();
        assert!(e.to_string().contains("300×400"), "{e}");
        let e = Template::parse_with_assets("t", &src, &[("f.png", b"not a png")]).unwrap_err();
        assert!(e.to_string().contains("frame"), "{e}");
    }

    #[test]
    fn parses_colours() {
        assert_eq!(parse_color("#1e1E1e"), Some(Rgb([30, 30, 30])));
        assert_eq!(parse_color("#fff"), Some(Rgb([255, 255, 255])));
        assert_eq!(parse_color("#ffff"), None);
        assert_eq!(parse_color("fff"), None);
        assert_eq!(parse_color("#ééé"), None);
    }
}
