//! Read-only discovery of a SCIM 2.0 target (and of a plain HTTP API, `--kind http`).

use super::draft::Draft;
use super::{Context, Kind};

/// Reads what the target publishes and how its lists behave, writing what it learnt into `draft`.
pub async fn discover(cx: &Context<'_>, kind: Kind, draft: &mut Draft) -> anyhow::Result<()> {
    let _ = (cx, kind);
    draft.heard("SCIM discovery: not written yet");
    Ok(())
}
