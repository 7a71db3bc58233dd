//! The entry `create_user` adds, shaped once per target from `[directory]`: attribute names, the
//! object classes and every value no placeholder changes are bytes made once; an add renders only
//! the values that carry a placeholder and lends the rest to the request. (Each add used to copy
//! every name, class and fixed value into vectors of its own before ldap3 copied them again.)

use std::collections::HashSet;

use crate::workload::directory::{LdapTarget, PasswordWrite, text};
use crate::workload::template::{Template, Vars};

/// Where an attribute's values come from.
enum Values {
    /// The same in every entry, rendered once (no value is empty: LDAP has none).
    Fixed(Vec<Vec<u8>>),
    /// The entry's naming value.
    Name,
    /// Rendered for each add; a value that renders empty is left out, and an attribute left
    /// with no value is not sent.
    Rendered(Vec<Template>),
    /// `userPassword`: rendered for each add, sent as it renders.
    Password(Template),
    /// Active Directory's `unicodePwd`: rendered for each add, quoted UTF-16LE.
    AdPassword(Template),
}

/// The attributes of a created user, in the order they are sent: the object classes, the naming
/// attribute, `[directory] attributes`, the password (and with it, for AD, the enabled account).
pub struct EntryShape {
    attrs: Vec<(Vec<u8>, Values)>,
}

/// The values an add rendered, which the request borrows.
#[derive(Default)]
pub struct Rendered(Vec<Vec<u8>>);

impl EntryShape {
    pub fn new(t: &LdapTarget) -> EntryShape {
        let mut attrs = Vec::with_capacity(t.attributes.len() + 4);
        let classes = t.object_classes.iter().map(|c| c.as_bytes().to_vec()).collect();
        attrs.push((b"objectClass".to_vec(), Values::Fixed(classes)));
        attrs.push((t.rdn.as_bytes().to_vec(), Values::Name));
        let none = Vars {
            run_id: "",
            seq: 0,
            admin: 0,
        };
        for (a, values) in &t.attributes {
            let shape = if values.iter().all(Template::is_fixed) {
                let fixed: Vec<Vec<u8>> = values
                    .iter()
                    .map(|v| text(v, &none).into_bytes())
                    .filter(|v| !v.is_empty())
                    .collect();
                if fixed.is_empty() {
                    continue;
                }
                Values::Fixed(fixed)
            } else {
                Values::Rendered(values.clone())
            };
            attrs.push((a.as_bytes().to_vec(), shape));
        }
        match &t.password {
            PasswordWrite::None => {}
            PasswordWrite::UserPassword(p) => attrs.push((b"userPassword".to_vec(), Values::Password(p.clone()))),
            // Active Directory: the password and the enabled account in one add (over TLS, as
            // validate holds it), so no user exists, even for a moment, enabled without its
            // password or with a clear-text one.
            PasswordWrite::UnicodePwd(p) => {
                attrs.push((b"unicodePwd".to_vec(), Values::AdPassword(p.clone())));
                attrs.push((b"userAccountControl".to_vec(), Values::Fixed(vec![b"512".to_vec()])));
            }
        }
        EntryShape { attrs }
    }

    /// Renders this add's own values into `out` (cleared first), in the order
    /// [`EntryShape::attributes`] takes them.
    pub fn render(&self, vars: &Vars, out: &mut Rendered) {
        out.0.clear();
        for (_, values) in &self.attrs {
            match values {
                Values::Fixed(_) | Values::Name => {}
                Values::Rendered(templates) => out.0.extend(templates.iter().map(|v| text(v, vars).into_bytes())),
                Values::Password(p) => out.0.push(text(p, vars).into_bytes()),
                Values::AdPassword(p) => out.0.push(crate::ldap::ad_password(&text(p, vars))),
            }
        }
    }

    /// The attributes of the entry named `name`, with the values [`EntryShape::render`] put in
    /// `rendered`.
    pub fn attributes<'a>(&'a self, name: &'a str, rendered: &'a Rendered) -> Vec<(&'a [u8], HashSet<&'a [u8]>)> {
        let mut own = rendered.0.iter();
        let mut out = Vec::with_capacity(self.attrs.len());
        for (a, values) in &self.attrs {
            let set: HashSet<&[u8]> = match values {
                Values::Fixed(v) => v.iter().map(Vec::as_slice).collect(),
                Values::Name => HashSet::from([name.as_bytes()]),
                Values::Rendered(templates) => own
                    .by_ref()
                    .take(templates.len())
                    .map(Vec::as_slice)
                    .filter(|v| !v.is_empty())
                    .collect(),
                Values::Password(_) | Values::AdPassword(_) => own.next().map(Vec::as_slice).into_iter().collect(),
            };
            if !set.is_empty() {
                out.push((a.as_slice(), set));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::ldap::Endpoint;
    use crate::workload::directory::{GroupShape, LdapRoles};

    /// How an add built its attributes before the shape (the oracle the shape must agree with).
    fn before(t: &LdapTarget, name: &str, vars: &Vars) -> Vec<(Vec<u8>, HashSet<Vec<u8>>)> {
        let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = Vec::new();
        let mut put = |a: &str, values: HashSet<Vec<u8>>| attrs.push((a.as_bytes().to_vec(), values));
        put(
            "objectClass",
            t.object_classes.iter().map(|c| c.clone().into_bytes()).collect(),
        );
        put(&t.rdn, HashSet::from([name.to_string().into_bytes()]));
        for (a, values) in &t.attributes {
            let values: HashSet<Vec<u8>> = values
                .iter()
                .map(|v| text(v, vars))
                .filter(|v| !v.is_empty())
                .map(String::into_bytes)
                .collect();
            if !values.is_empty() {
                put(a, values);
            }
        }
        match &t.password {
            PasswordWrite::None => {}
            PasswordWrite::UserPassword(p) => put("userPassword", HashSet::from([text(p, vars).into_bytes()])),
            PasswordWrite::UnicodePwd(p) => {
                put("unicodePwd", HashSet::from([crate::ldap::ad_password(&text(p, vars))]));
                put("userAccountControl", HashSet::from([b"512".to_vec()]));
            }
        }
        attrs
    }

    fn template(s: &str) -> Template {
        let vars = BTreeMap::from([("site".to_string(), "lab".to_string())]);
        Template::compile_text(s, &vars, &|_| false).unwrap()
    }

    fn target(classes: Vec<String>, attributes: Vec<(String, Vec<Template>)>, password: PasswordWrite) -> LdapTarget {
        LdapTarget {
            endpoint: Endpoint {
                url: "ldap://127.0.0.1:389".into(),
                starttls: false,
                ca_file: None,
                bind_dn: None,
                password: None,
                timeout: Duration::from_secs(1),
            },
            base_dn: "ou=people,dc=example,dc=test".into(),
            connections: 1,
            rdn: "uid".into(),
            name: template("{run_id}-{seq}"),
            object_classes: classes,
            attributes,
            password,
            modify: Vec::new(),
            disable: Vec::new(),
            enable: Vec::new(),
            roles: LdapRoles::Groups,
            groups: GroupShape {
                base_dn: "ou=groups,dc=example,dc=test".into(),
                object_class: "groupOfNames".into(),
                member_attribute: "member".into(),
                name: template("{run_id}-g{seq}"),
            },
        }
    }

    /// Pieces of a value: fixed text, nothing, and every placeholder a directory template takes.
    const PIECES: &[&str] = &[
        "", "a", " ", "x y", "{seq}", "{first}", "{last}", "{admin}", "{run_id}", "{site}",
    ];

    fn value() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(PIECES), 0..3).prop_map(|p| p.concat())
    }

    fn password() -> impl Strategy<Value = PasswordWrite> {
        prop_oneof![
            Just(PasswordWrite::None),
            value().prop_map(|v| PasswordWrite::UserPassword(template(&v))),
            value().prop_map(|v| PasswordWrite::UnicodePwd(template(&v))),
        ]
    }

    proptest! {
        /// The shape, built once, gives every add the attributes and values the per-add build
        /// gave, in the same order: fixed and rendered values, empty renders left out (and an
        /// attribute with none), duplicates once, the password as each kind writes it.
        #[test]
        fn the_shape_built_once_adds_what_each_add_built(
            classes in proptest::collection::vec(proptest::sample::select(&["inetOrgPerson", "person", "top"][..]), 1..3),
            attributes in proptest::collection::vec(
                (proptest::sample::select(&["sn", "cn", "mail", "description", "title"][..]),
                 proptest::collection::vec(value(), 1..4)),
                0..4,
            ),
            password in password(),
            name in "[a-z0-9-]{0,12}",
            seqs in proptest::collection::vec(0u64..1000, 1..4),
            admin in 0usize..5,
        ) {
            let classes = classes.into_iter().map(String::from).collect();
            let attributes = attributes
                .into_iter()
                .map(|(a, vs)| (a.to_string(), vs.iter().map(|v| template(v)).collect()))
                .collect();
            let t = target(classes, attributes, password);
            let shape = EntryShape::new(&t);
            let mut rendered = Rendered::default();
            // One shape and one buffer for several adds, as a run uses them.
            for seq in seqs {
                let vars = Vars { run_id: "pb-1a2b3c4d", seq, admin };
                shape.render(&vars, &mut rendered);
                let got: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = shape
                    .attributes(&name, &rendered)
                    .into_iter()
                    .map(|(a, vs)| (a.to_vec(), vs.into_iter().map(<[u8]>::to_vec).collect()))
                    .collect();
                prop_assert_eq!(got, before(&t, &name, &vars));
            }
        }
    }
}
