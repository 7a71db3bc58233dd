//! Distinguished names as RFC 4514 writes them, as far as ownership needs: the first RDN of a
//! DN (its attribute and unescaped value) and its parent, and whether two DNs name the same
//! entry (attribute types and values compared case-insensitively, spaces around separators
//! ignored). A multi-valued RDN (`a=1+b=2`) or a DN that does not parse is never "the same" as
//! anything, so nothing is ever deleted on its strength.

/// The first RDN of a DN: `attribute=value` and the DN it sits under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn<'a> {
    pub attribute: &'a str,
    /// Unescaped.
    pub value: String,
    pub parent: &'a str,
}

/// Splits `dn` at its first unescaped `,`: the first RDN and the rest.
fn split_first(dn: &str) -> Option<(&str, &str)> {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return Some((&dn[..i], &dn[i + 1..])),
            _ => i += 1,
        }
    }
    Some((dn, ""))
}

/// The value of an RDN with its escapes (`\,`, `\2c`, `\\`…) undone; `None` for a multi-valued
/// RDN or a bad escape.
fn unescape(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_hexdigit() {
                    let hex = raw.get(i + 1..i + 3)?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                } else {
                    out.push(next);
                    i += 2;
                }
            }
            // `+` joins the values of a multi-valued RDN, and `;` is RFC 2253's other RDN
            // separator (servers still accept it): neither is one name. Unescaped `"`, `<`,
            // `>` and `=` are not valid in a value: such a DN is not trusted either.
            b'+' | b';' | b'"' | b'<' | b'>' | b'=' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The first RDN of `dn`, or `None` when it is not a single `attribute=value`.
pub fn first_rdn(dn: &str) -> Option<Rdn<'_>> {
    let (rdn, parent) = split_first(dn)?;
    let (attribute, value) = rdn.split_once('=')?;
    let attribute = attribute.trim();
    if attribute.is_empty()
        || !attribute
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    Some(Rdn {
        attribute,
        value: unescape(value.trim())?,
        parent: parent.trim_start(),
    })
}

/// The RDNs of `dn`, each as (lower-case attribute, lower-case unescaped value).
fn normal(dn: &str) -> Option<Vec<(String, String)>> {
    let mut rest = dn.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let rdn = first_rdn(rest)?;
        // ASCII case only: a Unicode fold would make the Kelvin sign `K` an ASCII `k`.
        out.push((rdn.attribute.to_ascii_lowercase(), rdn.value.to_ascii_lowercase()));
        rest = rdn.parent.trim();
    }
    Some(out)
}

/// What names the entry `dn` names, for sets of DNs: equal for two spellings of one entry
/// (attribute names and values ASCII case aside, escapes decoded, spaces around RDNs trimmed), as
/// [`same`] compares them; a DN that does not parse is its own text.
pub fn key(dn: &str) -> Result<Vec<(String, String)>, String> {
    match normal(dn) {
        Some(rdns) if !rdns.is_empty() => Ok(rdns),
        _ => Err(dn.to_string()),
    }
}

/// Whether `a` and `b` name the same entry.
pub fn same(a: &str, b: &str) -> bool {
    match (normal(a), normal(b)) {
        (Some(a), Some(b)) => !a.is_empty() && a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdns_and_parents() {
        let r = first_rdn("uid=pb-1\\2c x,ou=people,dc=example,dc=test").unwrap();
        assert_eq!(
            (r.attribute, r.value.as_str(), r.parent),
            ("uid", "pb-1, x", "ou=people,dc=example,dc=test")
        );
        assert_eq!(first_rdn("cn=a\\,b, dc=x").unwrap().value, "a,b");
        assert_eq!(first_rdn("cn=a+uid=b,dc=x"), None);
        assert_eq!(first_rdn("garbage"), None);
        assert!(same(
            "UID=A,OU=People, DC=example,dc=test",
            "uid=a,ou=people,dc=example,dc=test"
        ));
        assert!(!same("uid=a,ou=people,dc=example,dc=test", "uid=a,dc=example,dc=test"));
        assert!(!same("", ""));
        // `;` separates RDNs for servers that follow RFC 2253; a Kelvin sign is not a `k`.
        assert_eq!(first_rdn("uid=victim;ou=pb-1,ou=kiosk,dc=x"), None);
        assert!(!same("ou=\u{212A}iosk,dc=x", "ou=kiosk,dc=x"));
        assert_eq!(
            key("UID=A,OU=People, DC=example,dc=test"),
            key("uid=a,ou=people,dc=example,dc=test")
        );
        assert_ne!(key("uid=a,ou=people,dc=x"), key("uid=a,dc=x"));
        assert_eq!(key("garbage"), Err("garbage".to_string()));
    }
}
