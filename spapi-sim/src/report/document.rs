//! A finished report document: the gzip bytes Amazon would put on S3, kept as a list of 64 KiB
//! slices so that neither compressing a large report nor serving it needs one huge contiguous
//! buffer, and so that a download streams them without copying.
//!
//! Memory: the whole compressed document stays in memory for the simulator's lifetime (XML
//! compresses about ten to one, so 100,000 orders cost a few tens of MB). It never touches disk.

use std::io::{self, Read, Write};

use axum::body::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

const SLICE: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Document {
    slices: Vec<Bytes>,
    len: u64,
}

/// `io::Write` into 64 KiB slices.
#[derive(Default)]
struct SliceWriter {
    done: Vec<Bytes>,
    current: Vec<u8>,
    len: u64,
}

impl Write for SliceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.current.capacity() == 0 {
            self.current.reserve_exact(SLICE);
        }
        let room = SLICE - self.current.len();
        let taken = room.min(buf.len());
        self.current.extend_from_slice(&buf[..taken]);
        self.len += taken as u64;
        if self.current.len() == SLICE {
            self.done
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Document {
    /// Gzips whatever `write` produces.
    pub fn gzip(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<Document> {
        let mut encoder = GzEncoder::new(SliceWriter::default(), Compression::default());
        write(&mut encoder)?;
        let mut sink = encoder.finish()?;
        if !sink.current.is_empty() {
            sink.done
                .push(Bytes::from(std::mem::take(&mut sink.current)));
        }
        Ok(Document {
            slices: sink.done,
            len: sink.len,
        })
    }

    /// Compressed size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The compressed bytes, in order (cheap clones of shared slices).
    pub fn slices(&self) -> Vec<Bytes> {
        self.slices.clone()
    }

    /// The first `count` compressed bytes, copied (for the truncated-body fault).
    pub fn prefix(&self, count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for slice in &self.slices {
            let left = count.saturating_sub(out.len() as u64) as usize;
            out.extend_from_slice(&slice[..left.min(slice.len())]);
        }
        out
    }

    /// The uncompressed text, for test assertions. `None` if it is not UTF-8 (it always is).
    pub fn text(&self) -> Option<String> {
        let compressed = self.prefix(self.len);
        let mut text = String::new();
        MultiGzDecoder::new(compressed.as_slice())
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_many_slices() {
        // Poorly compressible text so the gzip spans several slices.
        let mut state = 7u64;
        let text: String = (0..400_000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                char::from(b'a' + (state >> 59) as u8)
            })
            .collect();
        let document = Document::gzip(|w| w.write_all(text.as_bytes())).unwrap();
        assert!(document.slices().len() > 2);
        assert_eq!(
            document
                .slices()
                .iter()
                .map(|s| s.len() as u64)
                .sum::<u64>(),
            document.len()
        );
        assert_eq!(document.text().as_deref(), Some(text.as_str()));
        assert_eq!(document.prefix(10).len(), 10);
        assert_eq!(&document.prefix(2)[..], &[0x1f, 0x8b]);
    }
}
