//! Invariant 6 for directories, malformed answers: a lying LDAP server on raw TCP answers the
//! bind with one hand-made message, and `provbench cleanup` must end with the bind refused as
//! an error, at once: neither a panic in the connection's task nor a wait for bytes that could
//! never complete the message.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::bounds_ldap::{ber, cleanup, read_ber};

/// An answer made from the request's message id.
type Answer = fn(&[u8]) -> Vec<u8>;

/// A directory that answers every request with `answer(message id)`, then keeps the
/// connection open (a hostile peer that stalls rather than closes).
async fn answering_directory(answer: Answer) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (mut r, mut w) = stream.into_split();
            tokio::spawn(async move {
                while let Some((_, message)) = read_ber(&mut r).await {
                    let id = message[2..2 + message[1] as usize].to_vec();
                    if w.write_all(&answer(&id)).await.is_err() {
                        return;
                    }
                }
                // Held open until the client goes: closing would end the wait either way.
                let _keep = Arc::new(w);
                std::future::pending::<()>().await;
            });
        }
    });
    port
}

/// A BindResponse whose ENUMERATED result code says 5 bytes where its complete parent holds 1:
/// lber 0.5.1 read it as "incomplete", so ldap3 waited for bytes that no later byte could
/// supply (the parent's length is fixed), the bind hanging to its timeout and the connection
/// stuck behind it for good. The vendored decoder reads it as malformed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_longer_than_its_complete_parent_is_an_error_not_a_wait() {
    let port = answering_directory(|id| {
        let mut content = ber(0x02, id);
        content.extend(ber(0x61, &[0x0a, 0x05, 0x00]));
        ber(0x30, &content)
    })
    .await;
    let (code, said) = cleanup(port, "20s").await;
    assert!(code.is_some_and(|c| c != 0), "{code:?}: {said}");
    assert!(said.contains(&format!("binding to ldap://127.0.0.1:{port}")), "{said}");
    assert!(
        !said.to_ascii_lowercase().contains("timeout"),
        "refused, not waited for: {said}"
    );
    assert!(
        !said.to_ascii_lowercase().contains("timed out"),
        "refused, not waited for: {said}"
    );
}

/// LDAPMessages without their message id or operation (an empty SEQUENCE, one element, a
/// message id that is not an INTEGER), and a BindResponse without its result code: ldap3
/// 0.12.1 `expect`ed each (`protocol.rs` in its connection task, `result.rs` in the caller's),
/// and the 4th panicked the main thread of `provbench cleanup` (exit 101, nothing cleaned up).
/// provbench's copy refuses each in its codec (`vendor/ldap3/src/shape.rs`): the connection
/// ends with an error, and the bind fails with it (the reason said, not "channel closed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_its_id_is_an_error_not_a_panic() {
    let answers: [Answer; 4] = [
        |_| vec![0x30, 0x00],
        |_| ber(0x30, &ber(0x02, &[1])),
        |_| {
            ber(
                0x30,
                &[ber(0x04, b"x"), ber(0x61, &[0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])].concat(),
            )
        },
        |id| super::bounds_ldap::ldap_message(id, ber(0x61, &[])),
    ];
    let mut wrong = Vec::new();
    for (n, answer) in answers.into_iter().enumerate() {
        let port = answering_directory(answer).await;
        let (code, said) = cleanup(port, "20s").await;
        let refused =
            said.contains(&format!("binding to ldap://127.0.0.1:{port}")) && said.contains("malformed answer");
        if code != Some(2) && code != Some(1) || said.contains("panicked") || !refused {
            wrong.push(format!("answer {n}: exit {code:?}: {said}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Well-formed messages of another operation answering the bind: a SearchResultReference and a
/// SearchResultEntry. The codec cannot know which operation a message answers; ldap3 0.12.1
/// read each as an LDAPResult with `expect`s (`result.rs`) and panicked the caller. provbench's
/// copy reads them as result code 80, "malformed answer".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_another_operation_is_an_error_not_a_panic() {
    let answers: [Answer; 2] = [
        |id| super::bounds_ldap::ldap_message(id, ber(0x73, &ber(0x04, b"ldap://elsewhere/"))),
        |id| super::bounds_ldap::ldap_message(id, ber(0x64, &[ber(0x04, b"cn=x"), ber(0x30, &[])].concat())),
    ];
    let mut wrong = Vec::new();
    for (n, answer) in answers.into_iter().enumerate() {
        let port = answering_directory(answer).await;
        let (code, said) = cleanup(port, "20s").await;
        let refused =
            said.contains(&format!("ldap://127.0.0.1:{port} refused the bind")) && said.contains("malformed answer");
        if code != Some(2) && code != Some(1) || said.contains("panicked") || !refused {
            wrong.push(format!("answer {n}: exit {code:?}: {said}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
