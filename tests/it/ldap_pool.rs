//! Pipelining on a directory's pooled connections (issue 25): operations at once go several to a
//! connection before the next connection is used (`ldap::pool`), so one read brings several
//! answers. A raw-TCP directory (the hand-encoded BER of [`super::bounds_ldap`]) holds every add
//! until as many as the test sends have come, then answers them all, and tells on which of its
//! connections each one came.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provbench::ldap::{Directory, Endpoint};
use tokio::io::AsyncWriteExt;

use super::bounds_ldap::{Writer, ber, ldap_message, read_ber};

/// An add held until `n` have come: the connection it came on, its message id, where to answer.
type Held = Arc<Mutex<Vec<(usize, Vec<u8>, Writer)>>>;

/// A directory that takes anonymous requests and answers adds only once `n` are held, all at
/// once; the connection each add came on (numbered as accepted) is in the returned list.
async fn holding_directory(n: usize) -> (u16, Arc<Mutex<Vec<usize>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let held: Held = Arc::default();
    let seen_by_server = seen.clone();
    tokio::spawn(async move {
        for conn in 0usize.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (mut r, w) = stream.into_split();
            let w: Writer = Arc::new(tokio::sync::Mutex::new(w));
            let (held, seen) = (held.clone(), seen_by_server.clone());
            tokio::spawn(async move {
                while let Some((_, message)) = read_ber(&mut r).await {
                    let id = message[2..2 + message[1] as usize].to_vec();
                    // Only adds (AddRequest, [APPLICATION 8]) are held and answered.
                    if message[2 + id.len()] != 0x68 {
                        continue;
                    }
                    seen.lock().unwrap().push(conn);
                    let ready = {
                        let mut held = held.lock().unwrap();
                        held.push((conn, id, w.clone()));
                        match held.len() >= n {
                            true => std::mem::take(&mut *held),
                            false => Vec::new(),
                        }
                    };
                    let ok = [ber(0x0a, &[0]), ber(0x04, b""), ber(0x04, b"")].concat();
                    for (_, id, w) in ready {
                        let _ = w.lock().await.write_all(&ldap_message(&id, ber(0x69, &ok))).await;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Four adds at once on a pool of four connections go on one of them (round robin put one on
/// each: every answer then needed a read and a wake-up of its own); all four are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_operations_at_once_are_pipelined_on_one_connection() {
    let (port, seen) = holding_directory(4).await;
    let endpoint = Endpoint {
        url: format!("ldap://127.0.0.1:{port}"),
        starttls: false,
        ca_file: None,
        bind_dn: None,
        password: None,
        timeout: Duration::from_secs(30),
    };
    let dir = Directory::connect(&endpoint, 4).await.unwrap();
    let add = |i: u32| {
        let dir = &dir;
        async move {
            let dn = format!("cn=e{i},ou=people,dc=example,dc=test");
            dir.add(&dn, vec![("objectClass", HashSet::from(["person"]))]).await
        }
    };
    let (a, b, c, d) = tokio::join!(add(0), add(1), add(2), add(3));
    for r in [a, b, c, d] {
        r.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.iter().all(|c| *c == seen[0]),
        "the adds came on connections {seen:?}, not pipelined on one"
    );
}
