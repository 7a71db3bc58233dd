//! provbench's copy of hdrhistogram 7.6.0 (`vendor/hdrhistogram`) clears, copies and merges a
//! histogram's counts only up to its highest one, and takes a new histogram's counts zeroed from
//! the allocator. The oracle is the crate's own equality, which compares every count (and the
//! total, minimum and maximum): a histogram taken through any sequence of the operations the
//! registry and the interval writer use (records, merges into an empty or a filled histogram,
//! resets, including values at 0, past the highest trackable value, and in every bucket) equals a
//! new one holding the same values. A count left behind by a reset or missed by a merge fails it.

use hdrhistogram::Histogram;
use proptest::prelude::*;
use provbench::metrics::series::{MAX_MICROS, SeriesData};

#[derive(Debug, Clone)]
enum Step {
    Record(u64),
    /// A merge of a histogram holding these values (into this one, empty or not).
    Add(Vec<u64>),
    Reset,
}

/// Values across the whole range: 0 (below the lowest discernible value), single-unit buckets,
/// every power-of-two bucket up to the highest trackable value, and past it (clamped).
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        1u64..4_096,
        (0u32..32).prop_flat_map(|shift| (1u64 << shift)..(2u64 << shift)),
        Just(MAX_MICROS),
        MAX_MICROS..MAX_MICROS * 4,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => value().prop_map(Step::Record),
        2 => prop::collection::vec(value(), 0..20).prop_map(Step::Add),
        1 => Just(Step::Reset),
    ]
}

fn holding(sigfig: u8, values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, MAX_MICROS, sigfig).expect("valid bounds");
    for &v in values {
        h.saturating_record(v);
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of records, merges and resets leaves exactly the values recorded since the
    /// last reset, count for count.
    #[test]
    fn a_histogram_holds_exactly_what_was_recorded_since_its_reset(
        sigfig in 2u8..=3,
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let mut h = holding(sigfig, &[]);
        let mut held: Vec<u64> = Vec::new();
        for step in &steps {
            match step {
                Step::Record(v) => {
                    h.saturating_record(*v);
                    held.push(*v);
                }
                Step::Add(values) => {
                    h.add(holding(sigfig, values)).expect("same bounds");
                    held.extend(values);
                }
                Step::Reset => {
                    h.reset();
                    held.clear();
                }
            }
            let expected = holding(sigfig, &held);
            prop_assert!(h == expected, "after {:?}: {} values held, {} expected", step, h.len(), expected.len());
        }
    }

    /// The registry's series, taken interval after interval into the same (reused) interval and
    /// added into a cumulative one, hold what was recorded, wherever the values fell.
    #[test]
    fn reused_series_hold_what_each_interval_recorded(
        intervals in prop::collection::vec(prop::collection::vec(value(), 0..30), 1..6),
    ) {
        let mut shard = SeriesData::default();
        let mut interval = SeriesData::default();
        let mut cumulative = SeriesData::default();
        let mut all = Vec::new();
        for values in &intervals {
            interval.reset();
            for &v in values {
                shard.record(v);
            }
            interval.take_from(&mut shard);
            cumulative.add(&interval);
            // `SeriesData::record` records 0 as 1.
            let recorded: Vec<u64> = values.iter().map(|v| (*v).max(1)).collect();
            all.extend(recorded.iter().copied());
            prop_assert!(interval.histogram() == &holding(3, &recorded));
            prop_assert!(shard.histogram().is_empty());
            prop_assert!(shard.histogram() == &holding(3, &[]));
        }
        prop_assert!(cumulative.histogram() == &holding(3, &all));
    }
}
