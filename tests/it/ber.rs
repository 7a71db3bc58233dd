//! provbench's copy of lber (`vendor/lber`, the BER encoder and decoder under ldap3) against
//! lber 0.5.1 as published (`ber_oracle`): the same bytes for every tree, the same reading of
//! every answer, hostile ones included (invariant 6: a malformed answer is an error, never a
//! panic or a crash), nesting too deep for the stack an error where 0.5.1 overflowed it, and a
//! child longer than its complete parent an error where 0.5.1 waited for bytes ("incomplete").

use crate::ber_oracle as oracle;
use bytes::BytesMut;
use lber::common::TagClass;
use lber::parse::{MAX_DEPTH, parse_tag};
use lber::structure::{PL, StructureTag};
use lber::structures::{ASNTag, Boolean, Enumerated, ExplicitTag, Integer, Null, OctetString, Sequence, Set, Tag};
use proptest::prelude::*;

fn class() -> impl Strategy<Value = TagClass> + Clone {
    prop_oneof![
        Just(TagClass::Universal),
        Just(TagClass::Application),
        Just(TagClass::Context),
        Just(TagClass::Private),
    ]
}

/// Tag numbers: 0.5.1's decoder reads no long-form number, so round trips stay at 30 or less;
/// the encoders are compared on every number.
fn id(long_form: bool) -> BoxedStrategy<u64> {
    if long_form {
        prop_oneof![0u64..=30, 31u64..300, any::<u64>()].boxed()
    } else {
        (0u64..=30).boxed()
    }
}

/// Octet strings short, past 127 (long-form length, one byte) and past 65,535 (three bytes).
fn octets() -> impl Strategy<Value = Vec<u8>> {
    let long = |lo: usize, hi: usize| {
        (lo..hi, any::<u8>()).prop_map(|(n, seed)| (0..n).map(|k| seed.wrapping_add(k as u8)).collect::<Vec<u8>>())
    };
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..40),
        3 => long(128, 400),
        1 => long(65_536, 70_000),
    ]
}

fn leaf(long_form: bool) -> BoxedStrategy<Tag> {
    let tagged = (class(), id(long_form));
    prop_oneof![
        any::<i64>().prop_map(|inner| Tag::Integer(Integer {
            inner,
            ..Default::default()
        })),
        (tagged.clone(), any::<i64>()).prop_map(|((class, id), inner)| Tag::Integer(Integer { id, class, inner })),
        (tagged.clone(), any::<i64>()).prop_map(|((class, id), inner)| Tag::Enumerated(Enumerated {
            id,
            class,
            inner
        })),
        any::<i64>().prop_map(|inner| Tag::Enumerated(Enumerated {
            inner,
            ..Default::default()
        })),
        (tagged.clone(), any::<bool>()).prop_map(|((class, id), inner)| Tag::Boolean(Boolean { id, class, inner })),
        Just(Tag::Null(Null::default())),
        octets().prop_map(|inner| Tag::OctetString(OctetString {
            inner,
            ..Default::default()
        })),
        (tagged, octets()).prop_map(|((class, id), inner)| Tag::OctetString(OctetString { id, class, inner })),
    ]
    .boxed()
}

/// Wraps `inner` in one constructed element of the given kind.
fn wrap(kind: u8, class: TagClass, id: u64, inner: Vec<Tag>) -> Tag {
    match kind % 4 {
        0 => Tag::Sequence(Sequence {
            inner,
            ..Default::default()
        }),
        1 => Tag::Set(Set { id, class, inner }),
        2 => match inner.into_iter().next() {
            Some(one) => Tag::ExplicitTag(ExplicitTag {
                id,
                class,
                inner: Box::new(one),
            }),
            None => Tag::Sequence(Sequence {
                id,
                class,
                inner: Vec::new(),
            }),
        },
        _ => Tag::StructureTag(StructureTag {
            class,
            id,
            payload: PL::C(inner.into_iter().map(ASNTag::into_structure).collect()),
        }),
    }
}

/// Trees of every kind lber builds, broad ones and chains 5 to 12 deep.
fn tree(long_form: bool) -> BoxedStrategy<Tag> {
    let broad = leaf(long_form).prop_recursive(8, 48, 5, move |inner| {
        (any::<u8>(), class(), id(long_form), prop::collection::vec(inner, 0..5))
            .prop_map(|(kind, class, id, inner)| wrap(kind, class, id, inner))
    });
    let levels = prop::collection::vec((any::<u8>(), class(), id(long_form)), 5..12);
    let deep = (broad.clone(), levels, leaf(long_form)).prop_map(|(tag, levels, beside)| {
        levels.into_iter().fold(tag, |tag, (kind, class, id)| {
            wrap(kind, class, id, vec![tag, beside.clone()])
        })
    });
    prop_oneof![broad, deep].boxed()
}

fn encode_new(prefix: &[u8], tag: StructureTag) -> BytesMut {
    let mut buf = BytesMut::from(prefix);
    lber::write::encode_into(&mut buf, tag).expect("encoding into memory");
    buf
}

fn encode_old(prefix: &[u8], tag: StructureTag) -> BytesMut {
    let mut buf = BytesMut::from(prefix);
    oracle::encode_into(&mut buf, tag).expect("encoding into memory");
    buf
}

/// BER length octets: short form below 128, else 0x80 | count and count big-endian bytes.
fn length_octets(n: usize) -> Vec<u8> {
    if n < 128 {
        return vec![n as u8];
    }
    let repr = n.to_be_bytes();
    let skip = n.leading_zeros() as usize / 8;
    let mut out = vec![0x80 | (repr.len() - skip) as u8];
    out.extend_from_slice(&repr[skip..]);
    out
}

/// `levels` SEQUENCEs, each holding the next, around a NULL: the lengths inside out, then the
/// bytes outside in.
fn nested(levels: usize) -> Vec<u8> {
    let mut lengths = vec![2usize];
    for _ in 0..levels {
        let inner = *lengths.last().expect("one length at least");
        lengths.push(1 + length_octets(inner).len() + inner);
    }
    let mut out = Vec::with_capacity(*lengths.last().expect("one length at least"));
    for inner in lengths[..levels].iter().rev() {
        out.push(0x30);
        out.extend_from_slice(&length_octets(*inner));
    }
    out.extend_from_slice(&[0x05, 0x00]);
    out
}

/// Answers a server could send: random bytes, well-formed ones cut short or with a length
/// byte replaced (indefinite 0x80, 10-byte 0x8A, 0xFF), or 10 length bytes put in, and chains
/// up to 250 deep, whole or cut.
fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let encoded = tree(false)
        .prop_map(|tag| encode_new(&[], tag.into_structure()).to_vec())
        .boxed();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (encoded.clone(), any::<prop::sample::Index>()).prop_map(|(b, at)| {
            let cut = at.index(b.len() + 1);
            b[..cut].to_vec()
        }),
        (
            encoded.clone(),
            any::<prop::sample::Index>(),
            prop_oneof![Just(0x80u8), Just(0x8A), Just(0xFF), Just(0x84), any::<u8>()]
        )
            .prop_map(|(mut b, at, byte)| {
                let at = at.index(b.len());
                b[at] = byte;
                b
            }),
        (encoded, any::<prop::sample::Index>(), any::<[u8; 10]>()).prop_map(|(mut b, at, ten)| {
            let at = at.index(b.len());
            b.splice(at..at, std::iter::once(0x8A).chain(ten));
            b
        }),
        (1usize..250, any::<prop::sample::Index>()).prop_map(|(levels, at)| {
            let b = nested(levels);
            let cut = at.index(b.len() + 1);
            b[..cut].to_vec()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_encoder_writes_the_bytes_of_lber_0_5_1(
        tag in tree(true),
        prefix in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let structure = tag.into_structure();
        let new = encode_new(&prefix, structure.clone());
        let old = encode_old(&prefix, structure);
        prop_assert_eq!(new, old);
    }

    #[test]
    fn what_is_encoded_decodes_to_itself(
        tag in tree(false),
        rest in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let structure = tag.into_structure();
        let mut bytes = encode_new(&[], structure.clone()).to_vec();
        bytes.extend_from_slice(&rest);
        let decoded = parse_tag(&bytes);
        prop_assert_eq!(&decoded, &Ok((&rest[..], structure)));
        prop_assert_eq!(decoded, oracle::parse_tag(&bytes));
        prop_assert_eq!(lber::Parser::new().parse(&bytes), oracle::parse_tag(&bytes));
    }

    #[test]
    fn hostile_answers_read_as_lber_0_5_1_read_them(bytes in hostile()) {
        let new = parse_tag(&bytes);
        let old = oracle::parse_tag(&bytes);
        match (&new, &old) {
            // Lengths that are not lengths: indefinite, or past 64 bits.
            (Err(nom::Err::Failure(e)), _) if e.code == nom::error::ErrorKind::LengthValue => {
                prop_assert!(bytes.iter().any(|b| *b == 0x80 || *b >= 0x89), "{:?}", bytes);
            }
            // And: 0.5.1's `Incomplete` for a child past its complete parent.
            (Err(nom::Err::Failure(e)), Err(nom::Err::Incomplete(_))) => {
                prop_assert_eq!(e.code, nom::error::ErrorKind::Complete);
                prop_assert!(outer_complete(&bytes), "{:?}", bytes);
            }
            _ => {
                prop_assert_eq!(new, old);
            }
        }
    }
}

/// Whether the outermost element's identifier, length and contents are all in `bytes`.
fn outer_complete(bytes: &[u8]) -> bool {
    let Some(&first) = bytes.get(1) else { return false };
    let (count, len) = if first < 0x80 {
        (0, first as u128)
    } else {
        let count = (first & 0x7f) as usize;
        let Some(octets) = bytes.get(2..2 + count) else {
            return false;
        };
        (count, octets.iter().fold(0u128, |n, b| (n << 8) | *b as u128))
    };
    // 0.5.1 keeps only the low 64 bits of a length (a 9-byte or longer one wraps).
    let len = len as u64 as u128;
    2 + count as u128 + len <= bytes.len() as u128
}

/// A child that claims more than its complete parent holds: more bytes cannot help, so it is
/// an error, not `Incomplete` (lber 0.5.1 said `Incomplete`; ldap3 then waited to its timeout).
#[test]
fn a_child_longer_than_its_complete_parent_is_an_error() {
    // SEQUENCE of 3 bytes holding an OCTET STRING that says 5; then a whole other message.
    let mut bytes = vec![0x30, 0x03, 0x04, 0x05, 0x00];
    assert!(matches!(oracle::parse_tag(&bytes), Err(nom::Err::Incomplete(_))));
    bytes.extend_from_slice(&[0x30, 0x00]);
    assert!(
        matches!(parse_tag(&bytes), Err(nom::Err::Failure(_))),
        "{:?}",
        parse_tag(&bytes)
    );
    // Two levels down, and a child whose length octets are past the parent's end.
    for bytes in [
        &[0x30, 0x04, 0x30, 0x02, 0x04, 0x09][..],
        &[0x30, 0x02, 0x04, 0x82, 0x01, 0x00, 0x00],
        &[0x30, 0x01, 0x04],
    ] {
        assert!(
            matches!(parse_tag(bytes), Err(nom::Err::Failure(_))),
            "{bytes:?}: {:?}",
            parse_tag(bytes)
        );
    }
    // The parent itself cut short is still `Incomplete`, as 0.5.1 said.
    assert_eq!(
        parse_tag(&[0x30, 0x05, 0x04, 0x05, 0x00]),
        oracle::parse_tag(&[0x30, 0x05, 0x04, 0x05, 0x00])
    );
    assert!(matches!(
        parse_tag(&[0x30, 0x05, 0x04, 0x05, 0x00]),
        Err(nom::Err::Incomplete(_))
    ));
}

#[test]
fn nesting_at_the_limit_decodes() {
    let bytes = nested(MAX_DEPTH);
    let decoded = parse_tag(&bytes);
    assert!(decoded.is_ok(), "{MAX_DEPTH} levels: {:?}", decoded.map(|_| ()));
    assert_eq!(decoded, oracle::parse_tag(&bytes));
}

#[test]
fn nesting_deeper_than_the_stack_is_an_error_not_a_crash() {
    // 100,000 levels, about 0.5 MB: lber 0.5.1 recursed once a level and overflowed a 2 MiB
    // stack (tokio's workers have that), aborting the process. A thread of that size reads it.
    let bytes = nested(100_000);
    let outcome = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || match parse_tag(&bytes) {
            Err(nom::Err::Failure(_)) => Ok(()),
            other => Err(format!("{:?}", other.map(|_| ()))),
        })
        .expect("a thread")
        .join()
        .expect("no panic");
    assert_eq!(outcome, Ok(()));
}

/// Length octets that are not a length: the indefinite form (0x80, which LDAP forbids, RFC 4511
/// section 5.1), read by lber 0.5.1 as 0, and 9 or more octets whose value does not fit in
/// 64 bits, which 0.5.1 shifted out and read as the low bits (a length of 1 for 2^64 + 1). Each
/// made a malformed answer read as a well-formed one of another shape; now each is an error.
#[test]
fn lengths_that_are_not_lengths_are_errors() {
    let indefinite = [0x04, 0x80, 0x00, 0x00];
    let wrapped = [0x04, 0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xAA];
    let nested = [0x30, 0x04, 0x04, 0x80, 0x00, 0x00];
    for bytes in [&indefinite[..], &wrapped, &nested] {
        assert!(oracle::parse_tag(bytes).is_ok(), "0.5.1 read {bytes:?}");
        assert!(
            matches!(parse_tag(bytes), Err(nom::Err::Failure(_))),
            "{bytes:?}: {:?}",
            parse_tag(bytes)
        );
    }
    // Leading zero octets are still a length (non-minimal, but BER), as 0.5.1 read them.
    let padded = [0x04, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xAA];
    assert_eq!(parse_tag(&padded), oracle::parse_tag(&padded));
    assert!(parse_tag(&padded).is_ok());
}

/// Constructed elements whose contents end right at each length-form boundary (the encoder
/// moves the contents up when the length outgrows its one placeholder byte): the bytes of
/// lber 0.5.1, one and two levels deep.
#[test]
fn lengths_at_each_boundary_are_encoded_as_0_5_1_did() {
    let mut wrote = 0;
    for edge in [128usize, 256, 1 << 16, 1 << 24] {
        // An OCTET STRING's own header is 2 to 5 bytes: around each edge for every one.
        for len in edge.saturating_sub(8)..edge + 2 {
            let octets = OctetString {
                inner: vec![0x5a; len],
                ..Default::default()
            };
            let inner = Tag::Sequence(Sequence {
                inner: vec![Tag::OctetString(octets)],
                ..Default::default()
            });
            let outer = Tag::Sequence(Sequence {
                inner: vec![inner.clone(), Tag::Null(Null::default())],
                ..Default::default()
            });
            for tag in [inner, outer] {
                let structure = tag.into_structure();
                assert!(
                    encode_new(&[1, 2], structure.clone()) == encode_old(&[1, 2], structure),
                    "{len}"
                );
                wrote += 1;
            }
        }
    }
    assert_eq!(wrote, 4 * 10 * 2);
}
