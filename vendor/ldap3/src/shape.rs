//! provbench: the shape of every LDAPMessage the directory sends, checked once, in the codec
//! (`protocol::decode_inner`), before any other part of ldap3 reads it.
//!
//! Upstream ldap3 0.12.1 `expect`ed each element it read from an answer (message id,
//! protocolOp, result code, matched DN, entry DN and attributes, referrals, controls), so a
//! hostile directory's malformed answer panicked the connection's task or the caller's. This
//! module checks exactly what those readers require, and nothing stricter (a quirky but
//! readable answer still reads): a message that fails is an `io::Error` (InvalidData) out of
//! the codec, which ends the connection with an error every waiting operation sees.
//!
//! What it cannot know is which operation an answer belongs to: an answer of the wrong kind
//! (an entry answering a bind) is refused where it is read (`result.rs`, `conn.rs`).

use lber::common::TagClass;
use lber::structure::{PL, StructureTag};
use lber::universal::Types;

/// Why a message is malformed, said to the operator.
type Shape = Result<(), String>;

fn children<'a>(t: &'a StructureTag, what: &str) -> Result<&'a [StructureTag], String> {
    match t.payload {
        PL::C(ref c) => Ok(c),
        PL::P(_) => Err(format!("{what} is primitive, not constructed")),
    }
}

fn bytes<'a>(t: &'a StructureTag, what: &str) -> Result<&'a [u8], String> {
    match t.payload {
        PL::P(ref p) => Ok(p),
        PL::C(_) => Err(format!("{what} is constructed, not primitive")),
    }
}

/// An LDAPString: ldap3 reads it into a `String`.
fn text(t: &StructureTag, what: &str) -> Shape {
    std::str::from_utf8(bytes(t, what)?)
        .map(|_| ())
        .map_err(|_| format!("{what} is not UTF-8"))
}

/// An INTEGER or ENUMERATED that ldap3 reads with `parse_uint`: at least one content octet.
fn number(t: &StructureTag, id: Types, kind: &str, what: &str) -> Shape {
    if t.class != TagClass::Universal || t.id != id as u64 {
        return Err(format!("{what} is not a universal {kind}"));
    }
    if bytes(t, what)?.is_empty() {
        return Err(format!("{what} has no content octets"));
    }
    Ok(())
}

fn element<'a>(tags: &'a [StructureTag], n: usize, what: &str) -> Result<&'a StructureTag, String> {
    tags.get(n).ok_or_else(|| format!("{what} is missing"))
}

/// The top-level elements of one LDAPMessage (RFC 4511 section 4.1.1): messageID, protocolOp,
/// and optionally the controls [0], or the element [10] that Active Directory puts there in its
/// Notice of Disconnection (which upstream skips).
pub(crate) fn message(tags: &[StructureTag]) -> Shape {
    let (id, op, rest) = match tags {
        [id, op, rest @ ..] => (id, op, rest),
        _ => {
            return Err(format!(
                "an LDAPMessage of {} element(s), not two or three",
                tags.len()
            ));
        }
    };
    number(id, Types::Integer, "INTEGER", "the message id")?;
    match rest {
        [] => {}
        [c] if c.class == TagClass::Context && c.id == 0 => controls(c)?,
        [c] if c.class == TagClass::Context && c.id == 10 => {}
        _ => {
            return Err(
                "an LDAPMessage with elements past its operation that are not its controls".into(),
            );
        }
    }
    operation(op)
}

/// The protocolOp: one of the responses a client reads.
fn operation(op: &StructureTag) -> Shape {
    if op.class != TagClass::Application {
        return Err(format!(
            "the operation is not an APPLICATION tag ({:?} {})",
            op.class, op.id
        ));
    }
    let c = children(op, "the operation")?;
    match op.id {
        // Bind, SearchResultDone, Modify, Add, Delete, ModifyDN, Compare, Extended responses.
        1 | 5 | 7 | 9 | 11 | 13 | 15 | 24 => result(c),
        4 => entry(c),
        19 => c
            .iter()
            .try_for_each(|u| text(u, "a search result reference URI")),
        // IntermediateResponse: [0] responseName, [1] responseValue, both optional.
        25 => c
            .iter()
            .try_for_each(|t| bytes(t, "an intermediate response's component").map(|_| ())),
        n => Err(format!("[APPLICATION {n}] is not a response")),
    }
}

/// An LDAPResult and what follows it (`result.rs` reads any [3] referral, [7] SASL
/// credentials, [10] exop name and [11] exop value, by tag number alone).
fn result(c: &[StructureTag]) -> Shape {
    number(
        element(c, 0, "the result code")?,
        Types::Enumerated,
        "ENUMERATED",
        "the result code",
    )?;
    text(element(c, 1, "the matched DN")?, "the matched DN")?;
    text(
        element(c, 2, "the diagnostic message")?,
        "the diagnostic message",
    )?;
    for t in c.iter().skip(3) {
        match t.id {
            3 => referral(t)?,
            7 => bytes(t, "the server's SASL credentials").map(|_| ())?,
            10 => text(t, "the extended response's name")?,
            11 => bytes(t, "the extended response's value").map(|_| ())?,
            _ => {}
        }
    }
    Ok(())
}

/// A Referral: a SEQUENCE of URIs.
pub(crate) fn referral(t: &StructureTag) -> Shape {
    children(t, "the referral")?
        .iter()
        .try_for_each(|u| text(u, "a referral URI"))
}

/// A SearchResultEntry: objectName, then a SEQUENCE of PartialAttribute (type, SET of values).
fn entry(c: &[StructureTag]) -> Shape {
    text(element(c, 0, "the entry's DN")?, "the entry's DN")?;
    for a in children(
        element(c, 1, "the entry's attributes")?,
        "the entry's attributes",
    )? {
        let a = children(a, "an attribute")?;
        text(element(a, 0, "an attribute's type")?, "an attribute's type")?;
        for v in children(
            element(a, 1, "an attribute's values")?,
            "an attribute's values",
        )? {
            bytes(v, "an attribute value")?;
        }
    }
    Ok(())
}

/// Controls [0]: a SEQUENCE of Control (type, criticality BOOLEAN optional, value optional),
/// as `controls_impl::parse_controls` reads them.
fn controls(t: &StructureTag) -> Shape {
    for c in children(t, "the controls")? {
        let c = children(c, "a control")?;
        text(element(c, 0, "a control's type")?, "a control's type")?;
        let value = match c.get(1) {
            None => None,
            Some(b) if b.id == Types::Boolean as u64 => {
                if bytes(b, "a control's criticality")?.is_empty() {
                    return Err("a control's criticality has no content octets".into());
                }
                c.get(2)
            }
            Some(v) if v.id == Types::OctetString as u64 => Some(v),
            Some(_) => {
                return Err("a control's second element is neither criticality nor value".into());
            }
        };
        if let Some(v) = value {
            bytes(v, "a control's value")?;
        }
    }
    Ok(())
}
