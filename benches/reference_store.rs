//! The embedded reference service's store: what one write and one list page cost, since the
//! default target's own overhead lands in what users measure.
//! `cargo bench --bench reference_store`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use provbench::reference::filter::Filter;
use provbench::reference::store::Store;
use serde_json::{Value, json};

fn user(i: u64) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("user-{i}@example.test"),
           "externalId": format!("ext-{i}"), "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
           "displayName": "Ada Lovelace", "emails": [{"value": format!("user-{i}@example.test"), "type": "work", "primary": true}],
           "active": true, "roles": [{"value": "employee"}]})
}

fn writes(c: &mut Criterion) {
    let store = Store::new(1, "http://127.0.0.1/scim/v2".into());
    let allow = |_: Option<&Value>, _: Option<&Value>| Ok(());
    for i in 0..5_000 {
        store.create_user(user(i), &allow).unwrap();
    }
    // A create and a delete each time, so the store keeps its size.
    c.bench_function("store.create_user + delete_user", |b| {
        b.iter(|| {
            black_box(store.create_user(user(u64::MAX), &allow).unwrap());
            let id = store
                .user_id_by_name(&format!("user-{}@example.test", u64::MAX))
                .unwrap();
            black_box(store.delete_user(&id, None, &allow).unwrap());
        })
    });
    store.create_user(user(u64::MAX), &allow).unwrap();
    let id = store
        .user_id_by_name(&format!("user-{}@example.test", u64::MAX))
        .unwrap();
    c.bench_function("store.update_user (replace title)", |b| {
        b.iter(|| {
            let change = |r: &Value| {
                let mut r = r.clone();
                r["title"] = json!("Engineer");
                Ok(r)
            };
            black_box(store.update_user(&id, None, &change, &allow).unwrap());
        })
    });
}

fn lists(c: &mut Criterion) {
    let store = Store::new(1, "http://127.0.0.1/scim/v2".into());
    let allow = |_: Option<&Value>, _: Option<&Value>| Ok(());
    for i in 0..5_000 {
        store.create_user(user(i), &allow).unwrap();
    }
    c.bench_function("store.list (page of 10 of 5000)", |b| {
        b.iter(|| black_box(store.list(false, None, 1, 10)))
    });
    let filter = Filter::parse("userName sw \"user-1\"").unwrap();
    c.bench_function("store.list (filter matching 1111, page of 10)", |b| {
        b.iter(|| black_box(store.list(false, Some(&filter), 1, 10)))
    });
}

criterion_group!(benches, writes, lists);
criterion_main!(benches);
