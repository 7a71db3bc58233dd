//! lber 0.5.1's BER encoder and decoder exactly as published (only reformatted, and the
//! encoder's `unwrap`s kept): the oracle `ber.rs` holds provbench's copy in `vendor/lber` to.
//! Nothing else may use it.

use bytes::BytesMut;
use lber::common::{TagClass, TagStructure};
use lber::structure::{PL, StructureTag};
use nom::InputLength;
use nom::bits::streaming as bits;
use nom::bytes::streaming::take;
use nom::combinator::map_opt;
use nom::error::{Error, ErrorKind, ParseError};
use nom::number::streaming as number;
use nom::sequence::tuple;
use std::io::{self, Write};

pub fn encode_into(buf: &mut BytesMut, tag: StructureTag) -> io::Result<()> {
    let mut tag_vec = Vec::new();
    encode_inner(&mut tag_vec, tag)?;
    buf.extend(tag_vec);
    Ok(())
}

fn encode_inner(buf: &mut Vec<u8>, tag: StructureTag) -> io::Result<()> {
    let structure = match tag.payload {
        PL::P(_) => TagStructure::Primitive,
        PL::C(_) => TagStructure::Constructed,
    };
    write_type(buf, tag.class, structure, tag.id);
    match tag.payload {
        PL::P(v) => {
            write_length(buf, v.len());
            buf.extend(v);
        }
        PL::C(tags) => {
            let mut tmp = Vec::new();
            for tag in tags {
                encode_inner(&mut tmp, tag)?;
            }
            write_length(buf, tmp.len());
            buf.extend(tmp);
        }
    };
    Ok(())
}

fn write_type(w: &mut dyn Write, class: TagClass, structure: TagStructure, id: u64) {
    let extended_tag: Option<Vec<u8>>;
    let type_byte = {
        (class as u8) << 6
            | (structure as u8) << 5
            | if id > 30 {
                let mut tagbytes: Vec<u8> = Vec::new();
                let mut tag = id;
                while tag > 0 {
                    let byte = (tag & 0x7F) as u8;
                    tag >>= 7;
                    tagbytes.push(byte);
                }
                extended_tag = Some(tagbytes);
                0x1F
            } else {
                extended_tag = None;
                id as u8
            }
    };
    let _ = w.write(&[type_byte]);
    if let Some(mut ext_bytes) = extended_tag {
        for _ in 0..ext_bytes.len() - 1 {
            let mut byte = ext_bytes.pop().unwrap();
            byte |= 0x80;
            let _ = w.write(&[byte]);
        }
        let byte = ext_bytes.pop().unwrap();
        let _ = w.write(&[byte]);
    }
}

fn write_length(w: &mut dyn Write, length: usize) {
    if length < 128 {
        let _ = w.write(&[length as u8]);
    } else {
        let mut count = 0u8;
        let mut len = length;
        while {
            count += 1;
            len >>= 8;
            len > 0
        } {}
        let _ = w.write(&[count | 0x80]);
        let repr = &length.to_be_bytes();
        let len = repr.len();
        let bytes = &repr[(len - (count as usize))..];
        let _ = w.write_all(bytes);
    }
}

fn class_bits(i: (&[u8], usize)) -> nom::IResult<(&[u8], usize), TagClass> {
    map_opt(bits::take(2usize), TagClass::from_u8)(i)
}

fn pc_bit(i: (&[u8], usize)) -> nom::IResult<(&[u8], usize), TagStructure> {
    map_opt(bits::take(1usize), TagStructure::from_u8)(i)
}

fn tagnr_bits(i: (&[u8], usize)) -> nom::IResult<(&[u8], usize), u64> {
    bits::take(5usize)(i)
}

fn parse_type_header(i: &[u8]) -> nom::IResult<&[u8], (TagClass, TagStructure, u64)> {
    nom::bits(tuple((class_bits, pc_bit, tagnr_bits)))(i)
}

fn parse_length(i: &[u8]) -> nom::IResult<&[u8], usize> {
    let (i, len) = number::be_u8(i)?;
    if len < 128 {
        Ok((i, len as usize))
    } else {
        let len = len - 128;
        let (i, b) = take(len)(i)?;
        let (_, len) = parse_uint(b)?;
        Ok((
            i,
            usize::try_from(len).map_err(|_| nom::Err::Failure(Error::from_error_kind(i, ErrorKind::TooLarge)))?,
        ))
    }
}

fn parse_uint(i: &[u8]) -> nom::IResult<&[u8], u64> {
    Ok((i, i.iter().fold(0, |res, &byte| (res << 8) | byte as u64)))
}

pub fn parse_tag(i: &[u8]) -> nom::IResult<&[u8], StructureTag> {
    let (mut i, ((class, structure, id), len)) = tuple((parse_type_header, parse_length))(i)?;
    let pl: PL = match structure {
        TagStructure::Primitive => {
            let (j, content) = take(len)(i)?;
            i = j;
            PL::P(content.to_vec())
        }
        TagStructure::Constructed => {
            let (j, mut content) = take(len)(i)?;
            i = j;
            let mut tv: Vec<StructureTag> = Vec::new();
            while content.input_len() > 0 {
                let (j, sub) = parse_tag(content)?;
                content = j;
                tv.push(sub);
            }
            PL::C(tv)
        }
    };
    Ok((i, StructureTag { class, id, payload: pl }))
}
