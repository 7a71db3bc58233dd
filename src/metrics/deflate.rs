//! The serializer of `histograms.hlog`'s lines: hdrhistogram's V2 encoding in a zlib stream of
//! stored (uncompressed) deflate blocks, which every reader of the format inflates as it
//! inflates hdrhistogram's own `V2DeflateSerializer` lines (the same cookie, the same layout).
//!
//! Why stored: a compressor made each line cost about half a million instructions (callgrind),
//! for lines of a few hundred bytes that the V2 encoding has already packed (its counts are
//! variable-length and its empty runs collapsed). hdrhistogram's serializer builds a zlib
//! compressor per line, about 300 KB of tables allocated and zeroed; one compressor kept from line
//! to line still zeroed its tables and copied its 64 KB window buffer at every reset, and the
//! writer's thread writes one line per series with samples every second. Stored blocks cost a
//! copy and a checksum, and a line grows by what deflate would have saved of it.

use std::io::{self, Write};

use hdrhistogram::Counter;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};

/// hdrhistogram's cookie of a deflated V2 histogram (its `V2_COMPRESSED_COOKIE`, private there;
/// the test against `V2DeflateSerializer` holds it to the crate's).
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

/// The zlib header: deflate with a 32 KiB window, no dictionary, the fastest-level hint
/// (`0x78 0x01`: a multiple of 31 as RFC 1950 requires).
const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];

/// The most a stored block holds (its length is 16 bits).
const STORED_MAX: usize = u16::MAX as usize;

/// A V2 serializer into stored zlib streams that keeps its buffers from line to line.
#[derive(Default)]
pub struct StoredDeflate {
    v2: V2Serializer,
    plain: Vec<u8>,
    line: Vec<u8>,
}

impl StoredDeflate {
    pub fn new() -> Self {
        Self::default()
    }
}

/// `data` as a zlib stream of stored deflate blocks (RFC 1950 and 1951, section 3.2.4), appended
/// to `out`.
fn zlib_stored(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + 6 + 5 * (data.len() / STORED_MAX + 1));
    out.extend_from_slice(&ZLIB_HEADER);
    let mut blocks = data.chunks(STORED_MAX).peekable();
    if blocks.peek().is_none() {
        // An empty stream is one empty final block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL in the lowest bit, BTYPE 00 (stored) above it; the rest of the byte is padding.
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
}

/// RFC 1950's Adler-32 checksum.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // The most bytes summed before the sums can overflow a u32 (zlib's NMAX).
    const NMAX: usize = 5_552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(NMAX) {
        for byte in chunk {
            a += u32::from(*byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

impl Serializer for StoredDeflate {
    type SerializeError = io::Error;

    fn serialize<T: Counter, W: Write>(&mut self, h: &Histogram<T>, writer: &mut W) -> io::Result<usize> {
        self.plain.clear();
        let len = self
            .v2
            .serialize(h, &mut self.plain)
            .map_err(|e| io::Error::other(format!("cannot encode a histogram: {e:?}")))?;
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        // The payload's length, known once the stream is written.
        line.extend_from_slice(&[0; 4]);
        zlib_stored(&self.plain[..len], line);
        let payload = u32::try_from(line.len() - 8).map_err(|_| io::Error::other("a histogram line past 4 GiB"))?;
        line[4..8].copy_from_slice(&payload.to_be_bytes());
        writer.write_all(line)?;
        Ok(line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
    use proptest::prelude::*;
    use std::io::Read;

    fn histogram(samples: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = crate::metrics::series::new_histogram();
        for (v, n) in samples {
            h.saturating_record_n(*v, *n);
        }
        h
    }

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(stream).read_to_end(&mut out).unwrap();
        out
    }

    proptest! {
        /// Every line reads back, through hdrhistogram's own deserializer, as the histogram it
        /// was made of, and holds what hdrhistogram's own serializer deflates: the same cookie and
        /// the same V2 bytes, stored rather than compressed (no compressor made or reset).
        #[test]
        fn lines_read_back_as_the_crates_own(
            lines in prop::collection::vec(
                prop::collection::vec((1u64..4_000_000_000, 1u64..1_000), 0..300),
                1..6,
            )
        ) {
            let mut ours = StoredDeflate::new();
            for samples in &lines {
                let h = histogram(samples);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let n = ours.serialize(&h, &mut a).unwrap();
                V2DeflateSerializer::new().serialize(&h, &mut b).unwrap();
                prop_assert_eq!(n, a.len());
                prop_assert_eq!(&a[..4], &b[..4]);
                let length = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
                prop_assert_eq!(length, a.len() - 8);
                let mut plain = Vec::new();
                V2Serializer::new().serialize(&h, &mut plain).unwrap();
                prop_assert_eq!(inflate(&a[8..]), inflate(&b[8..]));
                // Stored: the V2 bytes are there as they are, after the zlib and block headers.
                prop_assert_eq!(&a[8 + 2 + 5..a.len() - 4], &plain[..]);
                let back: Histogram<u64> = Deserializer::new().deserialize(&mut a.as_slice()).unwrap();
                prop_assert_eq!(&back, &h);
                prop_assert_eq!(back.max(), h.max());
                prop_assert_eq!(back.min_nz(), h.min_nz());
            }
        }

        /// Any bytes, one block or many (a block holds at most 65,535), inflate to themselves
        /// and carry the checksum zlib computes.
        #[test]
        fn stored_streams_inflate_to_their_bytes(len in prop_oneof![0usize..300, 65_530usize..140_000], seed: u8) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let mut stream = vec![9, 9];
            zlib_stored(&data, &mut stream);
            prop_assert_eq!(&stream[..2], &[9, 9]);
            prop_assert_eq!(inflate(&stream[2..]), data);
        }
    }

    /// The decoder the tests read with checks the checksum: a stream whose checksum is wrong
    /// does not inflate (so the tests above hold `adler32` to zlib's).
    #[test]
    fn a_wrong_checksum_is_refused() {
        let mut stream = Vec::new();
        zlib_stored(b"provbench", &mut stream);
        let last = stream.len() - 1;
        stream[last] ^= 1;
        let mut out = Vec::new();
        assert!(
            flate2::read::ZlibDecoder::new(&stream[..])
                .read_to_end(&mut out)
                .is_err()
        );
    }
}
