//! The run ledger: every user and group a run created and has not deleted, recorded as it goes,
//! so that cleanup finds them even when a later phase fails or the run is interrupted.
//! Shared by the engine, the checks and cleanup; imports nothing from the crate.

use std::sync::Arc;

use parking_lot::Mutex;

/// A user or group the run created and has not deleted (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    User { id: String, user_name: String },
    Group { id: String },
}

/// A shared, append-only record of [`Created`] items (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<Created>>>);

impl Ledger {
    pub fn record(&self, item: Created) {
        self.0.lock().push(item);
    }

    pub fn record_all(&self, items: impl IntoIterator<Item = Created>) {
        self.0.lock().extend(items);
    }

    /// Everything recorded so far, leaving the ledger empty.
    pub fn take(&self) -> Vec<Created> {
        std::mem::take(&mut *self.0.lock())
    }
}
