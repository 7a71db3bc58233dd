//! The LDAP write probe (`--write-probe` only): one marked test entry through its whole life.

use super::Context;
use super::draft::Draft;

pub async fn probe(cx: &Context<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    let _ = cx;
    draft.heard("LDAP write probe: not written yet");
    Ok(())
}
