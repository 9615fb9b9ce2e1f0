//! A minimal ZIP writer for the event gallery's "download all": stored entries (no compression:
//! the files are JPEGs and PNGs, already compressed), written file by file to a sink so a large
//! archive never sits in memory. Each file is read twice in 64 KiB pieces, once for its CRC-32
//! (the local header needs it first) and once for its bytes; the length of the whole archive is
//! known before the first byte, so the HTTP reply can carry a `Content-Length`.
//!
//! Plain ZIP (no ZIP64): the caller keeps an archive under `MAX_BYTES` and `MAX_ENTRIES`
//! (`parts` splits a long list into archives that fit).

use std::io::Read;
use std::path::PathBuf;

/// The most bytes of files in one archive; well under ZIP's 4 GiB offsets, and what a phone on a
/// booth's 4G uplink may reasonably fetch in one go.
pub const MAX_BYTES: u64 = 1 << 30;
/// The most entries in one archive (ZIP's 16-bit count).
pub const MAX_ENTRIES: usize = 60_000;

const LOCAL_HEADER: u64 = 30;
const CENTRAL_HEADER: u64 = 46;
const END_RECORD: u64 = 22;
const CHUNK: usize = 64 * 1024;
/// Bit 11: the names are UTF-8.
const FLAGS: u16 = 1 << 11;

/// One file of the archive: its name inside, where it is, and its size when listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// The archive's exact length in bytes.
pub fn archive_len(entries: &[Entry]) -> u64 {
    let per_entry: u64 = entries
        .iter()
        .map(|e| LOCAL_HEADER + CENTRAL_HEADER + 2 * e.name.len() as u64 + e.size)
        .sum();
    per_entry + END_RECORD
}

/// Splits `entries` (in order) into runs that each fit one archive; a file larger than the cap
/// gets an archive of its own.
pub fn parts(entries: &[Entry], max_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, e) in entries.iter().enumerate() {
        let full = i > start && (bytes + e.size > max_bytes || i - start >= MAX_ENTRIES);
        if full {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += e.size;
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// MS-DOS time and date of a UTC millisecond timestamp (ZIP's only mandatory time field).
pub fn dos_time(ms: i64) -> (u16, u16) {
    let days = ms.div_euclid(86_400_000);
    let secs = ms.rem_euclid(86_400_000) / 1000;
    let (year, month, day) = crate::date::civil_from_days(days);
    if !(1980..=2107).contains(&year) {
        return (0, (1 << 5) | 1);
    }
    let time = ((secs / 3600) << 11) | (((secs / 60) % 60) << 5) | ((secs % 60) / 2);
    let date = ((year - 1980) << 9) | (i64::from(month) << 5) | i64::from(day);
    (time as u16, date as u16)
}

/// Writes the archive of `entries` to `sink`, piece by piece. Fails (and stops) if a file cannot
/// be read, its size changed since it was listed, the archive is over the caps, or the sink
/// refuses a piece (the client went away). Blocking (file reads).
pub fn write(
    entries: &[Entry],
    when: (u16, u16),
    sink: &mut dyn FnMut(Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if entries.len() > MAX_ENTRIES || archive_len(entries) >= u64::from(u32::MAX) {
        return Err(std::io::Error::other("too large for one archive"));
    }
    let mut central = Vec::new();
    let mut offset: u64 = 0;
    for e in entries {
        let crc = checksum(e)?;
        let header = header(HeaderKind::Local, e, crc, when, 0);
        central.extend_from_slice(&self::header(HeaderKind::Central, e, crc, when, offset));
        offset += header.len() as u64 + e.size;
        sink(header)?;
        each_piece(e, sink)?;
    }
    let central_len = central.len() as u64;
    let mut end = Vec::with_capacity(END_RECORD as usize);
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0; 4]); // this disk, the disk where the directory starts
    end.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    end.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    end.extend_from_slice(&(central_len as u32).to_le_bytes());
    end.extend_from_slice(&(offset as u32).to_le_bytes());
    end.extend_from_slice(&[0; 2]); // no comment
    sink(central)?;
    sink(end)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    Local,
    Central,
}

/// A local file header, or a central directory record (which adds the versions, comment, disk,
/// attributes and the local header's offset).
fn header(kind: HeaderKind, e: &Entry, crc: u32, (time, date): (u16, u16), offset: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(CENTRAL_HEADER as usize + e.name.len());
    let (signature, version_made_by) = match kind {
        HeaderKind::Local => (0x0403_4b50u32, None),
        HeaderKind::Central => (0x0201_4b50u32, Some(20u16)),
    };
    h.extend_from_slice(&signature.to_le_bytes());
    if let Some(v) = version_made_by {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&10u16.to_le_bytes()); // version needed: 1.0, stored
    h.extend_from_slice(&FLAGS.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&(e.size as u32).to_le_bytes()); // compressed size
    h.extend_from_slice(&(e.size as u32).to_le_bytes()); // size
    h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // no extra field
    if kind == HeaderKind::Central {
        h.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        h.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    h.extend_from_slice(e.name.as_bytes());
    h
}

/// The CRC-32 of the file, checking it still has the size it was listed with.
fn checksum(e: &Entry) -> std::io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    each_piece(e, &mut |piece| {
        hasher.update(&piece);
        Ok(())
    })?;
    Ok(hasher.finalize())
}

/// The file's bytes in pieces; an error if it is no longer `e.size` bytes long.
fn each_piece(e: &Entry, f: &mut dyn FnMut(Vec<u8>) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut file = std::fs::File::open(&e.path)?;
    let mut read: u64 = 0;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        if read > e.size {
            break;
        }
        buf.truncate(n);
        f(buf)?;
    }
    if read != e.size {
        return Err(std::io::Error::other(format!("{} changed size while zipped", e.name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Entry {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Entry {
            name: name.into(),
            path,
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn an_archive_has_the_announced_length_and_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let entries = [entry(dir.path(), "a.jpg", b"hello"), entry(dir.path(), "b.png", &big)];
        let mut out = Vec::new();
        write(&entries, dos_time(0), &mut |piece| {
            out.extend_from_slice(&piece);
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len() as u64, archive_len(&entries));
        assert_eq!(&out[..4], b"PK\x03\x04");
        // The CRC-32 of "hello" is 0x3610a686, in the first local header.
        assert_eq!(&out[14..18], &0x3610_a686u32.to_le_bytes());
        let end = &out[out.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let cd_offset = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        assert_eq!(&out[cd_offset..cd_offset + 4], b"PK\x01\x02");
    }

    #[test]
    fn a_file_that_changed_size_stops_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = entry(dir.path(), "a.jpg", b"hello");
        e.size = 3;
        let result = write(&[e], dos_time(0), &mut |_| Ok(()));
        assert!(result.is_err());
    }

    #[test]
    fn parts_keep_each_archive_under_the_cap() {
        let e = |size| Entry {
            name: "x".into(),
            path: PathBuf::new(),
            size,
        };
        let list = [e(4), e(4), e(4), e(20), e(1)];
        assert_eq!(parts(&list, 10), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(parts(&list, 100), vec![0..5]);
        assert!(parts(&[], 10).is_empty());
    }

    #[test]
    fn dos_times() {
        // 2026-06-12 14:30:10 UTC.
        let (time, date) = dos_time(1_781_274_610_000);
        assert_eq!((time >> 11, (time >> 5) & 63, (time & 31) * 2), (14, 30, 10));
        assert_eq!((1980 + (date >> 9), (date >> 5) & 15, date & 31), (2026, 6, 12));
    }
}
