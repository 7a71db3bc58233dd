//! BER decoding.
//!
//! provbench's copy (see PROVBENCH.md): the identifier and length octets are read by hand
//! instead of through nom's bit parsers and combinators. The answers, including every
//! `Incomplete` and how much it says is needed, are those of lber 0.5.1, with three exceptions:
//! elements nested more than [`MAX_DEPTH`] deep are an error, where 0.5.1 recursed until the
//! stack overflowed (an abort, not even a panic); and a child longer than its complete parent
//! is an error, where 0.5.1 said `Incomplete` (a wait for bytes that can never complete it);
//! and length octets that are no length (indefinite, or past 64 bits) are an error, where 0.5.1
//! read them as 0 and as their low bits.
use std::convert::TryFrom;

use crate::common::TagClass;
use crate::common::TagStructure;
use crate::structure::{PL, StructureTag};

use nom;
use nom::error::{Error, ErrorKind, ParseError};
use nom::{IResult, Needed};

/// How deep constructed elements may nest. LDAP's deepest answers (a search entry's values
/// inside its attribute inside its list inside the message) are about six deep; each level of
/// recursion costs a stack frame, and a hostile peer can nest two bytes a level.
pub const MAX_DEPTH: usize = 256;

/// `Incomplete` with `count` more bytes needed, as nom's streaming `take` says it.
fn needed<'a, T>(count: usize) -> nom::IResult<&'a [u8], T> {
    Err(nom::Err::Incomplete(Needed::new(count)))
}

/// The identifier octet: class, primitive/constructed, and the tag number in its low five bits
/// (0.5.1 reads no long-form tag number: 31 is returned as it is).
fn parse_type_header(i: &[u8]) -> nom::IResult<&[u8], (TagClass, TagStructure, u64)> {
    let Some((&byte, rest)) = i.split_first() else {
        // nom's bit parser asks for 2 bits, which it reports as 2 / 8 + 1 bytes.
        return needed(1);
    };
    let class = match byte >> 6 {
        0 => TagClass::Universal,
        1 => TagClass::Application,
        2 => TagClass::Context,
        _ => TagClass::Private,
    };
    let structure = if byte & 0x20 == 0 {
        TagStructure::Primitive
    } else {
        TagStructure::Constructed
    };
    Ok((rest, (class, structure, u64::from(byte & 0x1F))))
}

fn parse_length(i: &[u8]) -> nom::IResult<&[u8], usize> {
    let Some((&len, i)) = i.split_first() else {
        return needed(1);
    };
    if len < 128 {
        Ok((i, len as usize))
    } else {
        let len = (len - 128) as usize;
        // The indefinite form (0x80), which LDAP forbids (RFC 4511, 5.1): 0.5.1 read it as a
        // length of 0, so an answer became a well-formed one of another shape.
        if len == 0 {
            return Err(nom::Err::Failure(Error::from_error_kind(i, ErrorKind::LengthValue)));
        }
        if i.len() < len {
            return needed(len - i.len());
        }
        let (b, i) = i.split_at(len);
        // Past 8 octets only leading zeros fit in 64 bits: 0.5.1 shifted the others out and
        // read the low bits (2^64 + 1 as 1).
        if b.len() > 8 && b[..b.len() - 8].iter().any(|&o| o != 0) {
            return Err(nom::Err::Failure(Error::from_error_kind(i, ErrorKind::LengthValue)));
        }
        let (_, len) = parse_uint(b)?;
        Ok((
            i,
            usize::try_from(len)
                .map_err(|_| nom::Err::Failure(Error::from_error_kind(i, ErrorKind::TooLarge)))?,
        ))
    }
}

/// Extract an unsigned integer value from BER data.
pub fn parse_uint(i: &[u8]) -> nom::IResult<&[u8], u64> {
    Ok((i, i.iter().fold(0, |res, &byte| (res << 8) | byte as u64)))
}

/// Parse raw BER data into a serializable structure.
pub fn parse_tag(i: &[u8]) -> nom::IResult<&[u8], StructureTag> {
    parse_nested(i, 0)
}

/// The identifier and length of the element at the start of `i`, and its contents, which must
/// all be there.
#[allow(clippy::type_complexity)]
fn element(i: &[u8]) -> nom::IResult<&[u8], (TagClass, TagStructure, u64, &[u8])> {
    let (i, (class, structure, id)) = parse_type_header(i)?;
    let (i, len) = parse_length(i)?;
    if i.len() < len {
        return needed(len - i.len());
    }
    let (content, rest) = i.split_at(len);
    Ok((rest, (class, structure, id, content)))
}

fn parse_nested(i: &[u8], depth: usize) -> nom::IResult<&[u8], StructureTag> {
    let (rest, (class, structure, id, content)) = element(i)?;
    let payload = match structure {
        TagStructure::Primitive => PL::P(content.to_vec()),
        TagStructure::Constructed => {
            if depth >= MAX_DEPTH {
                return Err(nom::Err::Failure(Error::from_error_kind(
                    i,
                    ErrorKind::TooLarge,
                )));
            }
            let mut tv: Vec<StructureTag> = Vec::new();
            let mut content = content;
            while !content.is_empty() {
                let (j, sub) = match parse_nested(content, depth + 1) {
                    // The parent is all there and its length is fixed: no byte that comes later
                    // can complete a child that claims more than it holds. 0.5.1 said
                    // `Incomplete`, and ldap3 waited for such bytes until the operation timed
                    // out, every later answer on the connection stuck behind it.
                    Err(nom::Err::Incomplete(_)) => {
                        return Err(nom::Err::Failure(Error::from_error_kind(
                            content,
                            ErrorKind::Complete,
                        )));
                    }
                    other => other?,
                };
                content = j;
                tv.push(sub);
            }
            PL::C(tv)
        }
    };
    Ok((
        rest,
        StructureTag {
            class,
            id,
            payload,
        },
    ))
}

pub struct Parser;

impl Parser {
    pub fn new() -> Self {
        Self
    }

    pub fn parse<'a>(
        &mut self,
        input: &'a [u8],
    ) -> IResult<&'a [u8], StructureTag, nom::error::Error<&'a [u8]>> {
        if input.is_empty() {
            return Err(nom::Err::Incomplete(Needed::Unknown));
        };
        parse_tag(input)
    }
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::common::TagClass;
    use crate::structure::{PL, StructureTag};

    #[test]
    fn test_primitive() {
        let bytes: Vec<u8> = vec![2, 2, 255, 127];
        let result_tag = StructureTag {
            class: TagClass::Universal,
            id: 2u64,
            payload: PL::P(vec![255, 127]),
        };
        let rest_tag: Vec<u8> = vec![];

        let tag = parse_tag(&bytes[..]);

        assert_eq!(tag, Ok((&rest_tag[..], result_tag)));
    }

    #[test]
    fn test_constructed() {
        let bytes: Vec<u8> = vec![
            48, 14, 12, 12, 72, 101, 108, 108, 111, 32, 87, 111, 114, 108, 100, 33,
        ];
        let result_tag = StructureTag {
            class: TagClass::Universal,
            id: 16u64,
            payload: PL::C(vec![StructureTag {
                class: TagClass::Universal,
                id: 12u64,
                payload: PL::P(vec![72, 101, 108, 108, 111, 32, 87, 111, 114, 108, 100, 33]),
            }]),
        };
        let rest_tag: Vec<u8> = vec![];

        let tag = parse_tag(&bytes[..]);

        assert_eq!(tag, Ok((&rest_tag[..], result_tag)));
    }

    #[test]
    fn test_long_length() {
        let bytes: Vec<u8> = vec![
            0x30, 0x82, 0x01, 0x01, 0x80, 0x0C, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E,
            0x67, 0x54, 0x61, 0x67, 0x81, 0x81, 0xF0, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F,
            0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67,
            0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61,
            0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A,
            0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73,
            0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41,
            0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F,
            0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67,
            0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61,
            0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A,
            0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73,
            0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41,
            0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F,
            0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67,
            0x54, 0x61, 0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61,
            0x67, 0x4A, 0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A,
            0x75, 0x73, 0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67, 0x4A, 0x75, 0x73,
            0x74, 0x41, 0x4C, 0x6F, 0x6E, 0x67, 0x54, 0x61, 0x67,
        ];

        let result_tag = StructureTag {
            class: TagClass::Universal,
            id: 16u64,
            payload: PL::C(vec![
                StructureTag {
                    class: TagClass::Context,
                    id: 0,
                    payload: PL::P(vec![74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103]),
                },
                StructureTag {
                    class: TagClass::Context,
                    id: 1,
                    payload: PL::P(vec![
                        74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116,
                        65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110,
                        103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103,
                        74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116,
                        65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110,
                        103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103,
                        74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116,
                        65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110,
                        103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103,
                        74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116,
                        65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110,
                        103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103,
                        74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116,
                        65, 76, 111, 110, 103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110,
                        103, 84, 97, 103, 74, 117, 115, 116, 65, 76, 111, 110, 103, 84, 97, 103,
                    ]),
                },
            ]),
        };

        let rest_tag = Vec::new();

        let tag = parse_tag(&bytes[..]);
        assert_eq!(tag, Ok((&rest_tag[..], result_tag)));
    }
}
