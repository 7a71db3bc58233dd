//! Invariant 4's token match (`RunId::marks`, the one check of ownership) against the
//! implementation it replaced, kept here as the oracle: over generated run ids and names built
//! around them (case changed, neighbours that are and are not token characters, repeats that
//! overlap, non-ASCII), the two agree on every name.

use proptest::prelude::*;
use provbench::ledger::RunId;

/// `RunId::marks` before it compared bytes in place: lowercase the name, then `match_indices`.
fn marks_before(id: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let token = |b: u8| b.is_ascii_alphanumeric();
    let bytes = name.as_bytes();
    name.match_indices(id).any(|(at, _)| {
        let end = at + id.len();
        (at == 0 || !token(bytes[at - 1])) && (end == bytes.len() || !token(bytes[end]))
    })
}

fn run_ids() -> impl Strategy<Value = RunId> {
    prop_oneof![
        "pb-[a-z0-9]{8,12}".prop_map(|t| RunId::parse(&t).expect("a run id")),
        // Forced markers may repeat themselves (`ab-ab`), so matches can overlap.
        "[a-zA-Z0-9_-]{0,3}(ab-ab|aaaa|a-a-a)[a-z0-9_-]{0,2}".prop_map(|t| RunId::forced(&t).expect("a marker")),
    ]
}

/// Pieces of a name: the id itself, its case changed or cut short, and what may stand beside it.
fn names(id: String) -> impl Strategy<Value = String> {
    let cut = id[..id.len() - 1].to_string();
    let piece = prop_oneof![
        Just(id.clone()),
        Just(id.to_ascii_uppercase()),
        Just(cut),
        Just(id[..id.len() / 2].to_string()),
        // A tail that makes a repeat overlapping the id (`ab-ab` then `-ab`).
        Just(id[id.len() / 2..].to_string()),
        "[a-zA-Z0-9]{1,2}",
        "[-_.@ /,=]",
        any::<char>().prop_map(String::from),
        Just("é".to_string()),
    ];
    prop::collection::vec(piece, 0..7).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn the_marker_matches_as_it_did((id, name) in run_ids().prop_flat_map(|id| {
        let text = id.as_str().to_string();
        (Just(id), names(text))
    })) {
        prop_assert_eq!(id.marks(&name), marks_before(id.as_str(), &name), "{} in {:?}", id, name);
    }
}
