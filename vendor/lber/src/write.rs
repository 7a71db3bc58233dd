//! BER encoding support.
//!
//! provbench's copy (see PROVBENCH.md): every element is written straight into the one output
//! buffer. A constructed element's length is written as one placeholder byte and patched once
//! its contents are written; only a length of 128 or more moves the contents (by the few bytes
//! its long form needs). The bytes are those of lber 0.5.1's encoder, which built a `Vec` per
//! constructed element and wrote through `dyn Write` a byte at a time.
use crate::common::{TagClass, TagStructure};
use crate::structure::{PL, StructureTag};
use bytes::BytesMut;

use std::io;

/// BER-encode a tag structure into the provided buffer.
pub fn encode_into(buf: &mut BytesMut, tag: StructureTag) -> io::Result<()> {
    encode_inner(buf, &tag);
    Ok(())
}

fn encode_inner(buf: &mut BytesMut, tag: &StructureTag) {
    match &tag.payload {
        PL::P(v) => {
            write_type(buf, tag.class, TagStructure::Primitive, tag.id);
            write_length(buf, v.len());
            buf.extend_from_slice(v);
        }
        PL::C(tags) => {
            write_type(buf, tag.class, TagStructure::Constructed, tag.id);
            // One byte for the length, patched below: short form unless the contents are long.
            let at = buf.len();
            buf.extend_from_slice(&[0]);
            for tag in tags {
                encode_inner(buf, tag);
            }
            let length = buf.len() - at - 1;
            if length < 128 {
                buf[at] = length as u8;
            } else {
                let (form, used) = long_form(length);
                let extra = used - 1;
                let end = buf.len();
                buf.resize(end + extra, 0);
                buf.copy_within(at + 1..end, at + 1 + extra);
                buf[at..at + used].copy_from_slice(&form[..used]);
            }
        }
    }
}

fn write_type(buf: &mut BytesMut, class: TagClass, structure: TagStructure, id: u64) {
    // First two bits: class; bit 6: primitive/constructed; bits 5-1: the tag number, or 11111
    // when it is above 30 and follows in base 128, most significant group first.
    let head = (class as u8) << 6 | (structure as u8) << 5;
    if id <= 30 {
        buf.extend_from_slice(&[head | id as u8]);
        return;
    }
    let mut bytes = [0u8; 11];
    let mut at = bytes.len();
    let mut tag = id;
    while tag > 0 {
        at -= 1;
        bytes[at] = (tag & 0x7F) as u8 | 0x80;
        tag >>= 7;
    }
    // The last group has its top bit clear.
    bytes[10] &= 0x7F;
    at -= 1;
    bytes[at] = head | 0x1F;
    buf.extend_from_slice(&bytes[at..]);
}

/// The long form of a length: 0x80 | count, then count big-endian bytes; and how many bytes
/// that is.
fn long_form(length: usize) -> ([u8; 9], usize) {
    let repr = length.to_be_bytes();
    let count = repr.len() - (length.leading_zeros() as usize / 8);
    let mut form = [0u8; 9];
    form[0] = 0x80 | count as u8;
    form[1..=count].copy_from_slice(&repr[repr.len() - count..]);
    (form, count + 1)
}

// Yes I know you could overflow the length in theory. But, do you have 2^64 bytes of memory?
fn write_length(buf: &mut BytesMut, length: usize) {
    if length < 128 {
        buf.extend_from_slice(&[length as u8]);
    } else {
        let (form, used) = long_form(length);
        buf.extend_from_slice(&form[..used]);
    }
}

#[cfg(test)]
mod tests {
    use std::default::Default;

    use bytes::BytesMut;

    use crate::common::TagClass::*;
    use crate::structures::*;

    #[test]
    fn encode_simple_tag() {
        let tag = Tag::Integer(Integer {
            inner: 1616,
            ..Default::default()
        });

        let mut buf = BytesMut::new();
        super::encode_into(&mut buf, tag.into_structure()).unwrap();

        assert_eq!(buf, vec![0x2, 0x2, 0x06, 0x50]);
    }

    #[test]
    fn encode_constructed_tag() {
        let tag = Tag::Sequence(Sequence {
            inner: vec![Tag::OctetString(OctetString {
                inner: String::from("Hello World!").into_bytes(),
                ..Default::default()
            })],
            ..Default::default()
        });

        let mut buf = BytesMut::new();
        super::encode_into(&mut buf, tag.into_structure()).unwrap();

        assert_eq!(
            buf,
            vec![
                48, 14, 4, 12, 72, 101, 108, 108, 111, 32, 87, 111, 114, 108, 100, 33
            ]
        );
    }

    #[test]
    fn complex_tag() {
        let tag = Tag::Sequence(Sequence {
            inner: vec![
                Tag::Integer(Integer {
                    inner: 1,
                    ..Default::default()
                }),
                Tag::Sequence(Sequence {
                    id: 0,
                    class: Application,
                    inner: vec![
                        Tag::Integer(Integer {
                            inner: 3,
                            ..Default::default()
                        }),
                        Tag::OctetString(OctetString {
                            inner: String::from("cn=root,dc=plabs").into_bytes(),
                            ..Default::default()
                        }),
                        Tag::OctetString(OctetString {
                            id: 0,
                            class: Context,
                            inner: String::from("asdf").into_bytes(),
                        }),
                    ],
                }),
            ],
            ..Default::default()
        });

        let expected = vec![
            0x30, 0x20, 0x02, 0x01, 0x01, 0x60, 0x1B, 0x02, 0x01, 0x03, 0x04, 0x10, 0x63, 0x6e,
            0x3d, 0x72, 0x6f, 0x6f, 0x74, 0x2c, 0x64, 0x63, 0x3d, 0x70, 0x6c, 0x61, 0x62, 0x73,
            0x80, 0x04, 0x61, 0x73, 0x64, 0x66,
        ];

        let mut buf = BytesMut::new();
        super::encode_into(&mut buf, tag.into_structure()).unwrap();

        assert_eq!(buf, expected);
    }
}
