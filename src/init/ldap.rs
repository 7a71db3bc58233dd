//! Read-only discovery of an LDAP directory.

use super::Context;
use super::draft::Draft;

pub async fn discover(cx: &Context<'_>, draft: &mut Draft) -> anyhow::Result<()> {
    let _ = cx;
    draft.heard("LDAP discovery: not written yet");
    Ok(())
}
