//! A directory's schema as `init` reads it: the object class and attribute type definitions of
//! its subschema entry (RFC 4512 §4.1.1 and §4.1.2, as OpenLDAP, 389 DS and Active Directory
//! write them), reduced to what a workload needs: which classes and attributes exist, what a
//! class requires and allows (through its superclasses). Pure: the reads are in `ldap`.

use std::collections::{BTreeSet, HashMap};

/// One object class: its names, superclasses, required and allowed attributes (all lower case).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Class {
    pub names: Vec<String>,
    pub sup: Vec<String>,
    pub must: Vec<String>,
    pub may: Vec<String>,
}

/// The classes and attribute names a subschema entry defines.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    classes: HashMap<String, Class>,
    attributes: BTreeSet<String>,
}

/// How deep a superclass chain is followed (a schema with a loop ends there).
const MAX_DEPTH: usize = 16;

impl Schema {
    /// From the values of `objectClasses` and `attributeTypes`; a definition that does not
    /// parse is left out (it names nothing the workload uses).
    pub fn parse(object_classes: &[String], attribute_types: &[String]) -> Schema {
        let mut classes = HashMap::new();
        for c in object_classes.iter().filter_map(|d| class(d)) {
            for n in &c.names {
                classes.insert(n.clone(), c.clone());
            }
        }
        let attributes = attribute_types.iter().flat_map(|d| names(&tokens(d))).collect();
        Schema { classes, attributes }
    }

    pub fn has_class(&self, name: &str) -> bool {
        self.classes.contains_key(&name.to_ascii_lowercase())
    }

    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes.contains(&name.to_ascii_lowercase())
    }

    /// How many classes the schema defines (for the report).
    pub fn class_count(&self) -> usize {
        self.classes
            .values()
            .map(|c| &c.names[0])
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Whether an entry of `class` may hold `attribute` (MUST or MAY of it or a superclass).
    pub fn allows(&self, class: &str, attribute: &str) -> bool {
        let a = attribute.to_ascii_lowercase();
        self.chain(class)
            .iter()
            .any(|c| c.must.contains(&a) || c.may.contains(&a))
    }

    /// The attributes an entry of `class` must hold (its own and its superclasses').
    pub fn required(&self, class: &str) -> BTreeSet<String> {
        self.chain(class).iter().flat_map(|c| c.must.iter().cloned()).collect()
    }

    /// `class` and its superclasses, each once.
    fn chain(&self, class: &str) -> Vec<&Class> {
        let mut out: Vec<&Class> = Vec::new();
        let mut next = vec![(class.to_ascii_lowercase(), 0)];
        while let Some((name, depth)) = next.pop() {
            let Some(c) = self.classes.get(&name) else { continue };
            if depth > MAX_DEPTH || out.iter().any(|o| o.names == c.names) {
                continue;
            }
            next.extend(c.sup.iter().map(|s| (s.clone(), depth + 1)));
            out.push(c);
        }
        out
    }
}

/// The tokens of a definition: `(`, `)`, quoted strings (quotes kept), `$` and words.
fn tokens(def: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = def.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' | ')' | '$' => out.push(c.to_string()),
            '\'' => {
                let mut s = String::from("'");
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    s.push(c);
                }
                out.push(s);
            }
            c if c.is_whitespace() => {}
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '(' | ')' | '$' | '\'') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

/// The values after keyword `key`: one token, or a parenthesised list (`$` and quotes dropped),
/// lower case.
fn after(tokens: &[String], key: &str) -> Vec<String> {
    let Some(at) = tokens.iter().position(|t| t.eq_ignore_ascii_case(key)) else {
        return Vec::new();
    };
    let rest = &tokens[at + 1..];
    let clean = |t: &String| t.trim_start_matches('\'').to_ascii_lowercase();
    match rest.first().map(String::as_str) {
        Some("(") => rest[1..]
            .iter()
            .take_while(|t| *t != ")")
            .filter(|t| *t != "$")
            .map(clean)
            .collect(),
        Some(t) if t != ")" => vec![clean(&rest[0])],
        _ => Vec::new(),
    }
}

fn names(tokens: &[String]) -> Vec<String> {
    after(tokens, "NAME")
}

fn class(def: &str) -> Option<Class> {
    let t = tokens(def);
    let names = names(&t);
    if names.is_empty() {
        return None;
    }
    Some(Class {
        names,
        sup: after(&t, "SUP"),
        must: after(&t, "MUST"),
        may: after(&t, "MAY"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let classes = [
            "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
            "( 2.5.6.6 NAME 'person' DESC 'RFC2256: a person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber $ seeAlso $ description ) )",
            "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( title $ x121Address ) )",
            "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( mail $ givenName $ uid $ employeeType ) )",
            "( 1.3.6.1.4.1.42.2.27.8.2.1 NAME 'pwdPolicy' SUP top AUXILIARY MUST pwdAttribute )",
            "( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL MAY (userAccountControl $ unicodePwd) )",
            "( 9.9 NAME ( 'loopA' 'aliasA' ) SUP loopB MUST a )",
            "( 9.8 NAME 'loopB' SUP loopA MUST b )",
            "garbage",
        ]
        .map(String::from);
        let attrs = ["( 1.3.6.1.4.1.42.2.27.8.1.17 NAME 'pwdAccountLockedTime' DESC 'x' )"].map(String::from);
        Schema::parse(&classes, &attrs)
    }

    #[test]
    fn classes_allow_what_their_superclasses_allow() {
        let s = schema();
        assert!(s.has_class("inetOrgPerson") && s.has_class("PWDPOLICY") && !s.has_class("posixAccount"));
        assert!(s.allows("inetOrgPerson", "title") && s.allows("inetOrgPerson", "SN"));
        assert!(s.allows("user", "userAccountControl") && !s.allows("inetOrgPerson", "userAccountControl"));
        assert_eq!(
            s.required("inetOrgPerson").into_iter().collect::<Vec<_>>(),
            ["cn", "objectclass", "sn"]
        );
        assert!(s.has_attribute("pwdaccountlockedtime") && !s.has_attribute("nsAccountLock"));
        assert_eq!(s.class_count(), 8);
    }

    #[test]
    fn a_superclass_loop_ends() {
        let s = schema();
        assert_eq!(s.required("aliasA").into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(!s.allows("nope", "cn"));
    }
}
