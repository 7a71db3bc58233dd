//! Before sign-in: the token endpoint's metadata (OIDC discovery, RFC 8414), which client
//! authentication it takes.

use std::time::Duration;

use super::draft::Draft;

/// `target`: the `[target]` table being written (or the checked workload's).
pub async fn discover(target: &toml::Table, timeout: Duration, draft: &mut Draft) -> anyhow::Result<()> {
    let _ = (target, timeout, draft);
    Ok(())
}
