//! The serializer of `histograms.hlog`'s lines: hdrhistogram's V2 encoding, deflated, byte for
//! byte what its `V2DeflateSerializer` writes, with the compressor kept from one line to the
//! next instead of made for each.
//!
//! `V2DeflateSerializer` builds a new zlib compressor per histogram: about 300 KB of tables,
//! allocated and zeroed for a line of a few hundred bytes, several times a second (one per
//! series with samples). Callgrind counted that as two fifths of the interval writer's work,
//! and freeing it made the allocator hand the pages back and fault them in again each time.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use hdrhistogram::Counter;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};

/// hdrhistogram's cookie of a deflated V2 histogram (its `V2_COMPRESSED_COOKIE`, private there;
/// the test against `V2DeflateSerializer` holds it to the crate's).
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

/// A V2 deflate serializer that keeps its buffers and its compressor.
pub struct ReusedDeflate {
    v2: V2Serializer,
    plain: Vec<u8>,
    /// Writes into the line being made; `reset` finishes it and swaps in the next one's buffer.
    encoder: ZlibEncoder<Vec<u8>>,
    /// The last line written, kept for its capacity: the encoder's buffer after the next.
    line: Vec<u8>,
}

impl Default for ReusedDeflate {
    fn default() -> Self {
        Self::new()
    }
}

impl ReusedDeflate {
    pub fn new() -> Self {
        Self {
            v2: V2Serializer::new(),
            plain: Vec::new(),
            encoder: ZlibEncoder::new(Vec::new(), Compression::default()),
            line: Vec::new(),
        }
    }
}

impl Serializer for ReusedDeflate {
    type SerializeError = io::Error;

    fn serialize<T: Counter, W: Write>(&mut self, h: &Histogram<T>, writer: &mut W) -> io::Result<usize> {
        self.plain.clear();
        let len = self
            .v2
            .serialize(h, &mut self.plain)
            .map_err(|e| io::Error::other(format!("cannot encode a histogram: {e:?}")))?;
        // The cookie and a placeholder for the payload's length go first, straight into the
        // line the encoder writes to (nothing of the new stream is written yet).
        let line = self.encoder.get_mut();
        line.clear();
        line.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        line.extend_from_slice(&[0; 4]);
        // As `V2DeflateSerializer` does (write all, then finish), so the stream is the same;
        // `reset` finishes it, readies the compressor's tables for the next line (one reset per
        // line, no allocation) and hands back this line's bytes.
        self.encoder.write_all(&self.plain[..len])?;
        let mut done = self.encoder.reset(std::mem::take(&mut self.line))?;
        let payload = u32::try_from(done.len() - 8).map_err(|_| io::Error::other("a histogram line past 4 GiB"))?;
        done[4..8].copy_from_slice(&payload.to_be_bytes());
        writer.write_all(&done)?;
        let total = done.len();
        self.line = done;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::V2DeflateSerializer;
    use proptest::prelude::*;

    fn histogram(samples: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = crate::metrics::series::new_histogram();
        for (v, n) in samples {
            h.saturating_record_n(*v, *n);
        }
        h
    }

    proptest! {
        /// Every line is the bytes hdrhistogram's own serializer writes, however many lines
        /// one compressor made before it.
        #[test]
        fn lines_are_the_crates_own(
            lines in prop::collection::vec(
                prop::collection::vec((1u64..4_000_000_000, 1u64..1_000), 0..300),
                1..6,
            )
        ) {
            let mut ours = ReusedDeflate::new();
            for samples in &lines {
                let h = histogram(samples);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let n = ours.serialize(&h, &mut a).unwrap();
                V2DeflateSerializer::new().serialize(&h, &mut b).unwrap();
                prop_assert_eq!(n, a.len());
                prop_assert_eq!(&a, &b);
            }
        }
    }
}
