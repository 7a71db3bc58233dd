//! The login shape at a login URL: password grant or not, one page or identifier-first, CSRF
//! fields, consent.

use super::Context;
use super::draft::Draft;

pub async fn discover(cx: &Context<'_>, login_url: &str, draft: &mut Draft) -> anyhow::Result<()> {
    let _ = (cx, login_url);
    draft.heard("login discovery: not written yet");
    Ok(())
}
