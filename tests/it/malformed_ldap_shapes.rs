//! Invariant 6 for directories, over generated answers: a lying LDAP server answers a bind, or
//! a search after an honest bind, with one LDAPMessage of random shape (random tags, elements
//! missing, extra or of the wrong kind, primitive where constructed is read and back,
//! truncated contents inside a complete parent). ldap3 runs in-process as provbench drives it
//! (`src/ldap/mod.rs`: the connection's driver spawned, entries read one by one, referrals and
//! intermediate messages skipped, each entry made a `SearchEntry`): neither the driver's task
//! nor the operation's may panic. vendor/ldap3 refuses such a message in its codec
//! (`shape.rs`), and an answer of the wrong operation where it is read (`result.rs`).

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapError, Scope, SearchEntry};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

use super::bounds_ldap::{ber, read_ber};

/// One BER element of a generated answer. `Id` is the INTEGER holding the message id of the
/// request it answers (so that ldap3 hands the answer to the operation that waits for it).
#[derive(Debug, Clone)]
enum Node {
    Id,
    Prim(u8, Vec<u8>),
    Cons(u8, Vec<Node>),
    /// The element's encoding cut to at most this many bytes: a child longer than its parent.
    Cut(Box<Node>, usize),
}

impl Node {
    fn encode(&self, id: &[u8]) -> Vec<u8> {
        match self {
            Node::Id => ber(0x02, id),
            Node::Prim(tag, content) => ber(tag & !0x20, content),
            Node::Cons(tag, children) => ber(
                tag | 0x20,
                &children.iter().flat_map(|c| c.encode(id)).collect::<Vec<_>>(),
            ),
            Node::Cut(node, n) => {
                let mut whole = node.encode(id);
                whole.truncate((*n).min(whole.len().saturating_sub(1)));
                whole
            }
        }
    }
}

/// An identifier octet with a low tag number: any class, the bit for constructed set by
/// `encode`.
fn tag() -> impl Strategy<Value = u8> {
    prop_oneof![
        (0u8..4, 0u8..31).prop_map(|(class, n)| class << 6 | n),
        // The ones an answer is made of: INTEGER, OCTET STRING, ENUMERATED, SEQUENCE, BOOLEAN,
        // and the responses [APPLICATION 1, 4, 5, 19, 24, 25].
        prop::sample::select(vec![
            0x02, 0x04, 0x0a, 0x10, 0x01, 0x41, 0x44, 0x45, 0x53, 0x58, 0x59, 0x80, 0x83, 0x87
        ]),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        (tag(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(t, c)| Node::Prim(t, c)),
        Just(Node::Prim(0x04, b"cn=x".to_vec())),
        Just(Node::Prim(0x04, vec![0xff, 0xfe])),
        Just(Node::Prim(0x0a, vec![0])),
        Just(Node::Id),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (tag(), prop::collection::vec(inner.clone(), 0..4)).prop_map(|(t, c)| Node::Cons(t, c)),
            (inner, 0usize..12).prop_map(|(n, at)| Node::Cut(Box::new(n), at)),
        ]
    })
}

/// An LDAPResult (code success, empty matched DN and message) with one element dropped,
/// replaced or added, and `flip` toggling primitive/constructed on another.
fn result_like() -> impl Strategy<Value = Vec<Node>> {
    (0usize..4, 0usize..4, node(), any::<bool>()).prop_map(|(drop, flip, other, add)| {
        let mut elems = vec![
            Node::Prim(0x0a, vec![0]),
            Node::Prim(0x04, vec![]),
            Node::Prim(0x04, vec![]),
        ];
        if add {
            elems.insert(drop.min(elems.len()), other);
        } else if drop < elems.len() {
            elems[drop] = other;
        }
        if let Some(e) = elems.get_mut(flip) {
            *e = match e.clone() {
                Node::Prim(t, _) => Node::Cons(t, vec![]),
                Node::Cons(t, _) => Node::Prim(t, vec![]),
                same => same,
            };
        }
        elems
    })
}

/// A whole answer: a random element; a SEQUENCE of the message id, a random operation and
/// extra elements; or a response of each kind around a broken LDAPResult.
fn answer() -> impl Strategy<Value = Node> {
    let op = prop::sample::select(vec![0x61u8, 0x64, 0x65, 0x73, 0x78, 0x79, 0x67]);
    prop_oneof![
        node(),
        (node(), prop::collection::vec(node(), 0..3)).prop_map(|(op, extra)| {
            let mut elems = vec![Node::Id, op];
            elems.extend(extra);
            Node::Cons(0x30, elems)
        }),
        (op.clone(), result_like()).prop_map(|(op, result)| Node::Cons(0x30, vec![Node::Id, Node::Cons(op, result)])),
        (op, result_like(), 0usize..8).prop_map(|(op, result, at)| Node::Cons(
            0x30,
            vec![Node::Id, Node::Cut(Box::new(Node::Cons(op, result)), at)]
        )),
    ]
}

/// A directory that answers the bind with success when `search` (the generated answer then
/// answers the search), writes the generated answer once, and closes.
async fn lying_directory(answer: Node, search: bool) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (mut r, mut w) = stream.into_split();
        while let Some((_, message)) = read_ber(&mut r).await {
            let id = message[2..2 + message[1] as usize].to_vec();
            let is_bind = message.get(2 + id.len()) == Some(&0x60);
            if search && is_bind {
                let ok = super::bounds_ldap::ldap_message(&id, ber(0x61, &[0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]));
                if w.write_all(&ok).await.is_err() {
                    return;
                }
                continue;
            }
            let _ = w.write_all(&answer.encode(&id)).await;
            return;
        }
    });
    port
}

/// Bind, then (when `search`) search as provbench reads a search. Whatever the answer, `Ok` or
/// an error: what may not happen is a panic.
async fn exchange(port: u16, search: bool) -> Result<(), String> {
    let (conn, mut ldap) = LdapConnAsync::new(&format!("ldap://127.0.0.1:{port}"))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn.drive());
    let operation = tokio::spawn(async move {
        ldap.with_timeout(Duration::from_secs(20));
        ldap.simple_bind("cn=admin,dc=example,dc=test", "secret")
            .await?
            .success()?;
        if search {
            ldap.with_timeout(Duration::from_secs(20));
            let mut s = ldap
                .streaming_search("dc=example,dc=test", Scope::Subtree, "(objectClass=*)", vec!["*"])
                .await?;
            while let Some(e) = s.next().await? {
                if !(e.is_ref() || e.is_intermediate()) {
                    let _ = SearchEntry::construct(e);
                }
            }
            s.finish().await.success()?;
        }
        Ok::<_, LdapError>(())
    });
    let operation = operation.await;
    let driver = driver.await;
    let mut panicked = Vec::new();
    if operation.as_ref().is_err_and(|e| e.is_panic()) {
        panicked.push("the operation panicked");
    }
    if driver.as_ref().is_err_and(|e| e.is_panic()) {
        panicked.push("the connection's driver panicked");
    }
    match panicked.is_empty() {
        true => Ok(()),
        false => Err(panicked.join(", ")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_answer_of_any_shape_is_never_a_panic(answer in answer(), search in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = rt.block_on(async {
            let port = lying_directory(answer.clone(), search).await;
            exchange(port, search).await
        });
        prop_assert!(outcome.is_ok(), "{:?} answering the {}: {:?}", answer, if search { "search" } else { "bind" }, outcome);
    }
}
