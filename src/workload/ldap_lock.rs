//! How a directory entry shows its account disabled, for the LDAP probe's reads
//! ([`DisabledRule`]): the presence of an attribute (OpenLDAP's ppolicy), one exact value of it
//! (389 Directory Server's `nsAccountLock = TRUE`) or bits of an integer flag word (Active
//! Directory's `userAccountControl`, bit 2 ACCOUNTDISABLE). The rule is built from the keys of an
//! `ldap = { … }` table here, each mistake at its key; once built it cannot be invalid. Also the
//! rule for attribute names every directory key follows ([`attribute_name`]). A helper of
//! `ldap_read`: it imports no other file of `workload`.

use std::num::NonZeroU32;
use std::ops::Range;

use toml::Spanned;

/// An attribute name as LDAP allows it (RFC 4512 descr or a numeric OID).
pub fn attribute_name(a: &str, key: &str) -> Result<(), String> {
    let ok = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b';');
    if ok {
        Ok(())
    } else {
        Err(format!("{key}: `{a}` is not an LDAP attribute name"))
    }
}

/// Active Directory's ACCOUNTDISABLE flag of `userAccountControl`: 2 (1 + 1, as a constant
/// that cannot be zero).
pub const AD_ACCOUNTDISABLE: NonZeroU32 = NonZeroU32::MIN.saturating_add(1);

/// When an entry reads as disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisabledRule {
    /// The attribute is there, with any value (ppolicy's `pwdAccountLockedTime`).
    Present(String),
    /// One of the attribute's values is this one, compared without case (`nsAccountLock`).
    Value { attribute: String, value: String },
    /// The attribute's value, an integer, has one of these bits set (`userAccountControl`,
    /// mask 2): the other bits say nothing about the lock.
    Bits { attribute: String, mask: NonZeroU32 },
}

impl DisabledRule {
    /// The attribute a read asks for.
    pub fn attribute(&self) -> &str {
        match self {
            DisabledRule::Present(a) => a,
            DisabledRule::Value { attribute, .. } | DisabledRule::Bits { attribute, .. } => attribute,
        }
    }

    /// Whether an entry whose attribute holds `values` is disabled. An error when the rule
    /// cannot read them: a flag word that is no integer says nothing either way.
    pub fn disabled(&self, values: &[String]) -> Result<bool, String> {
        match self {
            DisabledRule::Present(_) => Ok(!values.is_empty()),
            DisabledRule::Value { value, .. } => Ok(values.iter().any(|v| v.trim().eq_ignore_ascii_case(value))),
            DisabledRule::Bits { attribute, mask } => {
                let mut disabled = false;
                for v in values {
                    let word = flag_word(v).ok_or_else(|| {
                        format!(
                            "{attribute} = {:?} is no integer, so its bits cannot be read",
                            crate::redact::sample(v, 40)
                        )
                    })?;
                    disabled |= word & mask.get() != 0;
                }
                Ok(disabled)
            }
        }
    }
}

/// An LDAP INTEGER as the 32 bits of a flag word: Active Directory writes `userAccountControl`
/// as a signed 32-bit value (a word with bit 31 set reads negative), others write it unsigned.
fn flag_word(v: &str) -> Option<u32> {
    let n: i64 = v.trim().parse().ok()?;
    if (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&n) {
        // Two's complement: the low 32 bits are the word either way.
        Some(n as u32)
    } else {
        None
    }
}

/// The keys of an `ldap = { … }` table that say how a disabled account shows.
pub struct RuleWire<'a> {
    /// `lock`: a preset named like the target's (`ppolicy`, `389ds`, `active-directory`).
    pub lock: Option<&'a Spanned<String>>,
    pub attribute: Option<&'a Spanned<String>>,
    pub value: Option<&'a Spanned<String>>,
    pub mask: Option<&'a Spanned<i64>>,
}

/// A mistake at a key: its span (when it has one) and the message.
pub type KeyError = (Option<Range<usize>>, String);

/// The rule the keys give; `key` prefixes errors (`probes.sync `replica` ldap`).
pub fn rule(w: RuleWire, key: &str) -> Result<DisabledRule, KeyError> {
    let at = |s: Option<Range<usize>>, m: String| (s, m);
    if let Some(lock) = w.lock {
        if let Some(given) = w.attribute.map(Spanned::span).or(w.value.map(Spanned::span)) {
            return Err(at(
                Some(given),
                format!(
                    "{key}: `lock` sets how a disabled account shows; give it or `disabled_attribute`/`disabled_value`/`disabled_mask`, not both"
                ),
            ));
        }
        if let Some(m) = w.mask {
            return Err(at(
                Some(m.span()),
                format!("{key}: `lock` sets how a disabled account shows; `disabled_mask` goes without it"),
            ));
        }
        return match lock.get_ref().as_str() {
            "ppolicy" => Ok(DisabledRule::Present("pwdAccountLockedTime".into())),
            "389ds" => Ok(DisabledRule::Value {
                attribute: "nsAccountLock".into(),
                value: "TRUE".into(),
            }),
            "active-directory" => Ok(ad()),
            other => Err(at(
                Some(lock.span()),
                format!("{key}.lock: `{other}` (known: ppolicy, 389ds, active-directory)"),
            )),
        };
    }
    let attribute = match w.attribute {
        Some(a) => {
            attribute_name(a.get_ref(), &format!("{key}.disabled_attribute")).map_err(|m| at(Some(a.span()), m))?;
            a.get_ref().clone()
        }
        None => "pwdAccountLockedTime".into(),
    };
    match (w.value, w.mask) {
        (Some(_), Some(m)) => Err(at(
            Some(m.span()),
            format!("{key}: `disabled_value` names one value, `disabled_mask` bits of an integer: give one of them"),
        )),
        (Some(v), None) => {
            let value = v.get_ref().trim();
            if value.is_empty() {
                return Err(at(
                    Some(v.span()),
                    format!(
                        "{key}.disabled_value: empty (LDAP has no empty values; leave it out to read the attribute's presence)"
                    ),
                ));
            }
            Ok(DisabledRule::Value {
                attribute,
                value: value.to_string(),
            })
        }
        (None, Some(m)) => {
            let mask = u32::try_from(*m.get_ref())
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(|| {
                    at(
                        Some(m.span()),
                        format!(
                            "{key}.disabled_mask = {}: the bits that mean disabled, 1 to {} (Active Directory: 2, ACCOUNTDISABLE)",
                            m.get_ref(),
                            u32::MAX
                        ),
                    )
                })?;
            Ok(DisabledRule::Bits { attribute, mask })
        }
        (None, None) if attribute.eq_ignore_ascii_case("userAccountControl") => Err(at(
            w.attribute.map(Spanned::span),
            format!(
                "{key}: userAccountControl is on every Active Directory account, so its presence says nothing: give `disabled_mask = 2` (ACCOUNTDISABLE) or `lock = \"active-directory\"`"
            ),
        )),
        (None, None) => Ok(DisabledRule::Present(attribute)),
    }
}

/// Active Directory: bit 2 of `userAccountControl`.
fn ad() -> DisabledRule {
    DisabledRule::Bits {
        attribute: "userAccountControl".into(),
        mask: AD_ACCOUNTDISABLE,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bits(mask: u32) -> DisabledRule {
        DisabledRule::Bits {
            attribute: "userAccountControl".into(),
            mask: NonZeroU32::new(mask).unwrap(),
        }
    }

    fn vals(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ad_reads_bit_2_of_user_account_control() {
        assert_eq!(ad(), bits(2));
        assert_eq!(AD_ACCOUNTDISABLE.get(), 2);
        let r = ad();
        assert_eq!(r.disabled(&vals(&["512"])), Ok(false));
        assert_eq!(r.disabled(&vals(&["514"])), Ok(true));
        // PASSWD_NOTREQD | ACCOUNTDISABLE | NORMAL_ACCOUNT: a user created without a password.
        assert_eq!(r.disabled(&vals(&["546"])), Ok(true));
        // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD: enabled.
        assert_eq!(r.disabled(&vals(&["66048"])), Ok(false));
        // Bit 31 set, as AD writes it (signed), and as others do (unsigned).
        assert_eq!(r.disabled(&vals(&["-2147483134"])), Ok(true));
        assert_eq!(r.disabled(&vals(&["2147484160"])), Ok(false));
        // Absent: nothing says disabled.
        assert_eq!(r.disabled(&[]), Ok(false));
        assert!(r.disabled(&vals(&["TRUE"])).unwrap_err().contains("no integer"));
        assert!(r.disabled(&vals(&["99999999999"])).is_err());
    }

    #[test]
    fn presence_and_values() {
        let p = DisabledRule::Present("pwdAccountLockedTime".into());
        assert_eq!(p.disabled(&vals(&["000001010000Z"])), Ok(true));
        assert_eq!(p.disabled(&[]), Ok(false));
        let v = DisabledRule::Value {
            attribute: "nsAccountLock".into(),
            value: "TRUE".into(),
        };
        assert_eq!(v.disabled(&vals(&["true"])), Ok(true));
        assert_eq!(v.disabled(&vals(&["FALSE"])), Ok(false));
        assert_eq!(v.attribute(), "nsAccountLock");
    }

    /// The keys as an inline table is written, on the line after `[x]` (line 2).
    fn parse(keys: &str) -> Result<DisabledRule, (Option<usize>, String)> {
        #[derive(serde::Deserialize)]
        struct W {
            lock: Option<Spanned<String>>,
            disabled_attribute: Option<Spanned<String>>,
            disabled_value: Option<Spanned<String>>,
            disabled_mask: Option<Spanned<i64>>,
        }
        let text = format!("[x]\n{keys}\n");
        let w: W = toml::from_str::<std::collections::BTreeMap<String, W>>(&text)
            .unwrap()
            .remove("x")
            .unwrap();
        rule(
            RuleWire {
                lock: w.lock.as_ref(),
                attribute: w.disabled_attribute.as_ref(),
                value: w.disabled_value.as_ref(),
                mask: w.disabled_mask.as_ref(),
            },
            "probes.sync `dc` ldap",
        )
        .map_err(|(span, m)| (span.map(|s| text[..s.start].matches('\n').count() + 1), m))
    }

    #[test]
    fn the_keys_give_one_rule() {
        assert_eq!(parse("lock = \"active-directory\""), Ok(bits(2)));
        assert_eq!(
            parse("disabled_attribute = \"userAccountControl\"\ndisabled_mask = 2"),
            Ok(bits(2))
        );
        assert_eq!(parse(""), Ok(DisabledRule::Present("pwdAccountLockedTime".into())));
        assert_eq!(
            parse("lock = \"389ds\""),
            Ok(DisabledRule::Value {
                attribute: "nsAccountLock".into(),
                value: "TRUE".into()
            })
        );
    }

    /// Each mistake names its key and the line it is written on.
    #[test]
    fn mistakes_are_named_at_their_key_and_line() {
        for (keys, line, needle) in [
            ("disabled_value = \"TRUE\"\ndisabled_mask = 2", 3, "give one of them"),
            ("disabled_mask = 0", 2, "disabled_mask = 0"),
            ("\ndisabled_mask = -2", 3, "disabled_mask = -2"),
            ("disabled_mask = 4294967296", 2, "1 to 4294967295"),
            ("\ndisabled_attribute = \"userAccountControl\"", 3, "disabled_mask = 2"),
            ("lock = \"active-directory\"\ndisabled_mask = 2", 3, "goes without it"),
            ("lock = \"novell\"", 2, "known: ppolicy"),
            ("disabled_attribute = \"a b\"", 2, "disabled_attribute"),
            ("disabled_value = \" \"", 2, "disabled_value: empty"),
        ] {
            let (at, message) = parse(keys).unwrap_err();
            assert!(message.contains(needle), "{keys}: {message}");
            assert!(message.contains("probes.sync `dc` ldap"), "{keys}: {message}");
            assert_eq!(at, Some(line), "{keys}: {message}");
        }
    }

    proptest! {
        /// Over every userAccountControl word, written as AD writes it (signed) or unsigned,
        /// with any other flags: the account reads disabled exactly when bit 2 is set.
        #[test]
        fn user_account_control_reads_disabled_by_bit_2_alone(word in any::<u32>(), signed in any::<bool>(), pad in " {0,2}") {
            let written = if signed { (word as i32).to_string() } else { word.to_string() };
            let r = ad();
            prop_assert_eq!(r.disabled(&[format!("{pad}{written}{pad}")]), Ok(word & 2 != 0), "{}", written);
            // Setting or clearing bit 2 alone flips the reading, whatever the other bits say.
            prop_assert_eq!(r.disabled(&[(word | 2).to_string()]), Ok(true));
            prop_assert_eq!(r.disabled(&[(word & !2).to_string()]), Ok(false));
        }

        /// A mask reads its bits and no other: disabled exactly when they meet.
        #[test]
        fn a_mask_reads_its_bits_alone(word in any::<u32>(), mask in 1..=u32::MAX) {
            prop_assert_eq!(bits(mask).disabled(&[word.to_string()]), Ok(word & mask != 0));
        }

        /// A value that is no 32-bit integer is never read as enabled or disabled.
        #[test]
        fn no_integer_is_no_reading(v in "[^0-9 -]{1,12}|[0-9]{11,20}") {
            prop_assume!(flag_word(&v).is_none());
            prop_assert!(ad().disabled(&[v]).is_err());
        }
    }
}
