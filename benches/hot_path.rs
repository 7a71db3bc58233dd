//! The per-request work provbench adds on top of the HTTP call: recording a latency into the
//! per-thread histogram shard, and rendering a payload template into a reused buffer.
//! `cargo bench --bench hot_path`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use provbench::metrics::{MetricKey, Registry};
use provbench::workload::template::{Template, Vars};
use serde_json::json;

fn record(c: &mut Criterion) {
    let registry = Registry::new();
    let series = registry.series(MetricKey::new("api_latency").tag("op", "create_user"));
    let mut v = 1u64;
    c.bench_function("registry.record (per-thread shard)", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1);
            registry.record(black_box(series), 100 + (v >> 44));
        })
    });
    c.bench_function("registry.take_interval (1 series)", |b| {
        b.iter(|| black_box(registry.take_interval()))
    });
}

fn render(c: &mut Criterion) {
    let template = Template::compile(
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "{run_id}-{seq}@example.test",
                "externalId": "{run_id}-{seq}", "name": {"givenName": "{first}", "familyName": "{last}", "formatted": "{first} {last}"},
                "emails": [{"value": "{run_id}-{seq}@example.test", "type": "work", "primary": true}], "active": true}),
        &BTreeMap::new(),
    )
    .unwrap();
    let mut buf = String::with_capacity(1024);
    let mut seq = 0;
    c.bench_function("template.render_into (user body)", |b| {
        b.iter(|| {
            seq += 1;
            template.render_into(
                &Vars {
                    run_id: "pb-1a2b3c4d",
                    seq,
                    admin: 3,
                },
                &mut buf,
            );
            black_box(buf.len())
        })
    });
}

criterion_group!(benches, record, render);
criterion_main!(benches);
