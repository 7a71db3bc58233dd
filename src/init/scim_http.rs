//! `init --kind http`: an API that is not SCIM. No SCIM discovery; one GET of the base URL
//! (its status and content type), a health operation and a journey of it, and a commented
//! create/delete pair to start the API's own operations from. Every built-in step is left out:
//! they speak SCIM.

use super::draft::{Draft, Entry};
use super::scim_lists::{Connections, get};
use crate::http::HttpClient;
use crate::workload::step::STEP_NAMES;

const EXAMPLE: [&str; 16] = [
    "Your API's own operations, a create and the delete that undoes it (see the custom operations",
    "chapter); add them to the journey's steps once the paths and bodies are yours:",
    "",
    "[operations.create]",
    "method = \"POST\"",
    "path = \"/users\"",
    "body = { username = \"{run_id}-{seq}\", enabled = true }",
    "expect = [201]",
    "extract = { user_id = \"/id\" }",
    "cleanup = \"delete\"          # undone at cleanup if the journey does not run it",
    "",
    "[operations.delete]",
    "method = \"DELETE\"",
    "path = \"/users/{user_id}\"",
    "expect = [204]",
    "",
];

pub async fn discover(client: &HttpClient, draft: &mut Draft, conns: &mut Connections) -> anyhow::Result<()> {
    let path = "/";
    let reply = get(client, path, conns).await.map_err(anyhow::Error::msg)?;
    let status = reply.status.as_u16();
    let content_type = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(reqwest::header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(80).collect::<String>())
        .unwrap_or_else(|| "none".into());
    draft.heard(format!(
        "GET of the base URL answered HTTP {status} (content type {content_type}); no SCIM discovery for --kind http"
    ));
    // Every built-in step (none of them is an HTTP API's), by the name journeys use.
    for step in STEP_NAMES.iter().map(|s| s.split(':').next().unwrap_or(s)) {
        draft.unsupported(step, "an HTTP API takes custom operations only (--kind http)");
    }
    let mut lines: Vec<String> = EXAMPLE.iter().map(|l| l.to_string()).collect();
    lines.push("A GET of the base URL, as init read it.".into());
    draft.comment(
        "operations.health",
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    draft.set("operations.health", Entry::new("method", "GET"));
    draft.set("operations.health", Entry::new("path", path));
    match status {
        200..=299 => {
            draft.set(
                "operations.health",
                Entry::new("expect", vec![i64::from(status)]).why(format!("GET of the base URL answered {status}")),
            );
        }
        _ => {
            draft.set(
                "operations.health",
                Entry::new("expect", vec![i64::from(status)]).why(format!(
                    "GET of the base URL answered {status}: point path at an endpoint that answers 2xx"
                )),
            );
        }
    }
    draft.push(
        "journey",
        vec!["Reads the base URL: replace with your API's operations.".into()],
        vec![
            Entry::new("name", "health"),
            Entry::new("weight", 1),
            Entry::new("steps", vec!["health"]),
        ],
    );
    Ok(())
}
