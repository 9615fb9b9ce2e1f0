//! Splits a stream of concatenated JPEG frames (what `rpicam-vid --codec mjpeg -o -` and
//! `gphoto2 --capture-movie --stdout` write: no length prefix, no container) into whole frames,
//! without decoding them.
//!
//! A frame runs from the start-of-image marker (FF D8) to the end-of-image marker (FF D9). Searching
//! for FF D9 alone is wrong: an EXIF thumbnail inside an APP1 segment is a complete JPEG of its own.
//! So the marker segments before the image data are skipped by their length fields, and only inside
//! the entropy-coded data (after SOS) are the bytes scanned: there an FF is always followed by 00
//! (a stuffed byte) or a restart marker D0..D7, so the first other marker is real (JPEG, ITU-T T.81
//! B.1.1.5). Garbage between frames (gphoto2 prints a line on SIGUSR2) is skipped, a truncated frame
//! is dropped when the next one starts, and a frame that grows past `MAX_FRAME` is thrown away.

/// Larger than any live-view frame we ask for (a 1920×1080 MJPEG frame at high quality is < 1 MiB).
pub const MAX_FRAME: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for FF D8.
    Seek,
    /// Inside a frame, at a marker (or fill bytes) before the image data.
    Segments,
    /// Inside entropy-coded data.
    Scan,
}

/// An incremental splitter: feed it whatever the pipe returns, get whole frames back.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Where parsing continues in `buf` (the frame, once found, starts at 0).
    at: usize,
    state: State,
    /// Frames dropped as truncated or oversized, for the log.
    pub dropped: u64,
}

impl Default for Splitter {
    fn default() -> Splitter {
        Splitter {
            buf: Vec::with_capacity(256 * 1024),
            at: 0,
            state: State::Seek,
            dropped: 0,
        }
    }
}

impl Splitter {
    /// Appends `data` and calls `frame` with every frame it completes, in order.
    pub fn push(&mut self, data: &[u8], mut frame: impl FnMut(Vec<u8>)) {
        self.buf.extend_from_slice(data);
        while let Some(end) = self.advance() {
            let rest = self.buf.split_off(end);
            frame(std::mem::replace(&mut self.buf, rest));
            self.at = 0;
            self.state = State::Seek;
        }
        if self.buf.len() > MAX_FRAME {
            self.dropped += 1;
            self.restart_after(self.buf.len().saturating_sub(1));
        }
    }

    /// Parses as far as the buffer allows; `Some(end)` when a frame ends at `end` (exclusive).
    fn advance(&mut self) -> Option<usize> {
        loop {
            match self.state {
                State::Seek => {
                    let Some(start) = find_pair(&self.buf, 0, 0xD8) else {
                        // Nothing here can start a frame, except a final FF.
                        let keep = usize::from(self.buf.last() == Some(&0xFF));
                        self.buf.drain(..self.buf.len() - keep);
                        return None;
                    };
                    self.buf.drain(..start);
                    self.at = 2;
                    self.state = State::Segments;
                }
                State::Segments => {
                    let buf = &self.buf;
                    let at = self.at;
                    if at + 2 > buf.len() {
                        return None;
                    }
                    if buf[at] != 0xFF {
                        // Not a marker where one must be: a truncated frame ran into something else.
                        self.dropped += 1;
                        self.restart_after(1);
                        continue;
                    }
                    match buf[at + 1] {
                        0xFF => self.at += 1,
                        0xD9 => return Some(at + 2),
                        0xD8 => {
                            // A new frame started before this one ended.
                            self.dropped += 1;
                            self.restart_after(at);
                        }
                        0x01 | 0xD0..=0xD7 => self.at += 2,
                        marker => {
                            if at + 4 > buf.len() {
                                return None;
                            }
                            let len = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
                            if len < 2 {
                                self.dropped += 1;
                                self.restart_after(1);
                                continue;
                            }
                            self.at = at + 2 + len;
                            if marker == 0xDA {
                                self.state = State::Scan;
                            }
                        }
                    }
                }
                State::Scan => {
                    let p = self.at + self.buf.get(self.at..)?.iter().position(|&b| b == 0xFF)?;
                    let next = *self.buf.get(p + 1)?;
                    match next {
                        0x00 | 0xD0..=0xD7 => self.at = p + 2,
                        0xFF => self.at = p + 1,
                        0xD9 => return Some(p + 2),
                        0xD8 => {
                            self.dropped += 1;
                            self.restart_after(p);
                        }
                        _ => {
                            // Another segment (DHT, SOS of the next scan in a progressive JPEG...).
                            self.at = p;
                            self.state = State::Segments;
                        }
                    }
                }
            }
        }
    }

    /// Forgets the current frame: drops `buf[..n]` and seeks the next start of image.
    fn restart_after(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.at = 0;
        self.state = State::Seek;
    }
}

/// The index of the first FF followed by `second` at or after `from`.
fn find_pair(buf: &[u8], from: usize, second: u8) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w[0] == 0xFF && w[1] == second)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::{Rgb, RgbImage};

    fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x as u8).wrapping_mul(seed), y as u8, seed]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img).unwrap();
        out
    }

    /// `frame` with an APP1 "Exif" segment holding `thumb` (a whole JPEG) right after SOI.
    fn with_exif_thumbnail(frame: &[u8], thumb: &[u8]) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(thumb);
        let len = (payload.len() + 2) as u16;
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&frame[2..]);
        out
    }

    fn split(stream: &[u8], chunk: usize) -> (Vec<Vec<u8>>, u64) {
        let mut s = Splitter::default();
        let mut frames = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            s.push(piece, |f| frames.push(f));
        }
        (frames, s.dropped)
    }

    #[test]
    fn splits_concatenated_frames_at_any_chunking() {
        let a = jpeg(64, 48, 3);
        let b = jpeg(32, 24, 7);
        let exif = with_exif_thumbnail(&jpeg(80, 60, 11), &jpeg(16, 12, 5));
        assert!(image::load_from_memory(&exif).is_ok(), "the EXIF frame is a valid JPEG");
        let mut stream = b"gphoto2: some text line\n".to_vec();
        for f in [&a, &exif, &b] {
            stream.extend_from_slice(f);
        }
        for chunk in [1, 2, 3, 7, 100, 4096, stream.len()] {
            let (frames, dropped) = split(&stream, chunk);
            assert_eq!(frames, vec![a.clone(), exif.clone(), b.clone()], "chunk {chunk}");
            assert_eq!(dropped, 0);
        }
    }

    #[test]
    fn a_truncated_frame_is_dropped_and_the_next_one_kept() {
        let a = jpeg(64, 48, 3);
        let b = jpeg(32, 24, 9);
        for cut in [3, 10, a.len() / 2, a.len() - 3] {
            let mut stream = a[..cut].to_vec();
            stream.extend_from_slice(&b);
            stream.extend_from_slice(&a);
            let (frames, _) = split(&stream, 500);
            assert_eq!(frames.last(), Some(&a), "cut at {cut}");
            assert!(frames.contains(&b) || cut < 6, "cut at {cut}: {} frames", frames.len());
            for f in &frames {
                assert!(
                    image::load_from_memory(f).is_ok(),
                    "cut at {cut}: a broken frame came out"
                );
            }
        }
    }

    #[test]
    fn garbage_alone_yields_nothing_and_keeps_little() {
        let mut s = Splitter::default();
        let mut n = 0;
        for _ in 0..100 {
            s.push(&[0x12; 1000], |_| n += 1);
        }
        assert_eq!(n, 0);
        assert!(s.buf.len() < 2);
    }
}
