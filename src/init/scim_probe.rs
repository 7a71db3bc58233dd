//! The SCIM write probe (`--write-probe` only): one marked test user through its whole life.

use super::Context;
use super::draft::Draft;

pub async fn probe(cx: &Context<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    let _ = cx;
    draft.heard("SCIM write probe: not written yet");
    Ok(())
}
