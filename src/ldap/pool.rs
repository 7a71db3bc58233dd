//! Which of a directory's bound connections an operation goes on: operations are pipelined, several
//! in flight on one connection (LDAP message ids tell their answers apart), before the next
//! connection is used.
//!
//! Round robin put one operation on each connection at a time (4 admins, 4 connections: one
//! each), so every answer was a wake-up and a read of its own, on both sides. Filled in order,
//! one connection carries several operations: a read brings several answers and a wake-up serves
//! them all, which is what a directory's own bulk clients do; the next connection takes over once
//! one carries [`DEPTH`], so a large run still spreads over all of them.

use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::Ldap;

/// Operations one connection carries at once before the next connection is used.
pub const DEPTH: usize = 8;

/// A bound connection and the operations in flight on it.
pub struct Pooled {
    ldap: Ldap,
    in_flight: AtomicUsize,
}

impl Pooled {
    pub fn new(ldap: Ldap) -> Pooled {
        Pooled {
            ldap,
            in_flight: AtomicUsize::new(0),
        }
    }
}

/// The connection for the next operation, given each one's operations in flight: the first
/// carrying fewer than `depth`, else the least busy (the first of those). `None` for no
/// connection.
pub fn pick(in_flight: impl IntoIterator<Item = usize>, depth: usize) -> Option<usize> {
    let mut least: Option<(usize, usize)> = None;
    for (i, n) in in_flight.into_iter().enumerate() {
        if n < depth {
            return Some(i);
        }
        if least.is_none_or(|(_, m)| n < m) {
            least = Some((i, n));
        }
    }
    least.map(|(i, _)| i)
}

/// One operation's use of a connection: a handle of its own (ldap3 runs each cloned handle's
/// request side by side with the others), counted in flight until it is dropped, answered or
/// not (a timeout, an interrupted step).
pub struct Lease<'a> {
    pub ldap: Ldap,
    in_flight: &'a AtomicUsize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A lease on the connection [`pick`] chooses among `conns` (at least one).
pub fn lease(conns: &[Pooled]) -> Lease<'_> {
    let i = pick(conns.iter().map(|c| c.in_flight.load(Ordering::Relaxed)), DEPTH).unwrap_or(0);
    let conn = &conns[i];
    conn.in_flight.fetch_add(1, Ordering::Relaxed);
    Lease {
        ldap: conn.ldap.clone(),
        in_flight: &conn.in_flight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connections_fill_in_order() {
        assert_eq!(pick([], 8), None);
        assert_eq!(pick([0, 0, 0, 0], 8), Some(0));
        assert_eq!(pick([7, 0, 0, 0], 8), Some(0));
        assert_eq!(pick([8, 0, 0, 0], 8), Some(1));
        assert_eq!(pick([8, 8, 8, 3], 8), Some(3));
        assert_eq!(pick([9, 8, 12, 8], 8), Some(1));
    }

    proptest! {
        /// The pick is the first connection under the depth; with none, one of the least busy,
        /// the first of them; always a connection of the pool.
        #[test]
        fn the_pick_is_the_first_under_depth_else_the_least_busy(
            loads in proptest::collection::vec(0usize..20, 1..10),
            depth in 1usize..12,
        ) {
            let i = pick(loads.iter().copied(), depth).unwrap();
            prop_assert!(i < loads.len());
            match loads.iter().position(|&n| n < depth) {
                Some(first) => prop_assert_eq!(i, first),
                None => {
                    let min = *loads.iter().min().unwrap();
                    prop_assert_eq!(loads[i], min);
                    prop_assert_eq!(loads.iter().position(|&n| n == min), Some(i));
                }
            }
        }
    }
}
