//! The host's project, from its MCP roots: a server started by an editor or a desktop app
//! works in the project the host has open, not only where the host happened to start it.
//!
//! A client that declares `roots` is asked for them (`roots/list`): up to 2025-11-25 once
//! it is initialized and again on `notifications/roots/list_changed`; on 2026-07-28, which
//! has no requests outside a call, as the first `ask`'s round (`input_required` with a
//! `roots/list` request, answered on the retry). Its first `file://` root becomes where
//! sessions made without a `cwd` work ([`Daemon::set_project`]), within `--allow-dir`: a
//! root outside it is refused and logged, and nothing changes.

// Roots are deprecated by SEP-2577 (rmcp 3.11 marks them so), but the hosts this serves
// still declare them (Claude Code 2.1.332, Gemini CLI 0.61.0): while they do, they are
// how a host says which project it has open.
#![allow(deprecated)]

use std::collections::BTreeMap;

use rmcp::model::{InputRequest, InputRequests, ListRootsRequest, ListRootsResult, Root};
use rmcp::{Peer, RoleServer};
use serde_json::Value;

use crate::daemon::Daemon;

/// The key of the `roots/list` input request, and the request state of its round.
pub(super) const ROUND: &str = "claude-coded-roots";

/// Asks the client for its roots and applies them.
pub(super) async fn follow(peer: Peer<RoleServer>, daemon: Daemon) {
    match peer.list_roots().await {
        Ok(result) => apply(&daemon, &result.roots),
        Err(err) => tracing::warn!(%err, "the client declared roots but did not list them"),
    }
}

/// The round that asks a 2026-07-28 client for its roots.
pub(super) fn round() -> InputRequests {
    let mut requests = BTreeMap::new();
    requests.insert(
        ROUND.to_string(),
        InputRequest::ListRoots(ListRootsRequest::default()),
    );
    requests
}

/// Applies the roots a round's retry carries; whether it carried any.
pub(super) fn apply_round(daemon: &Daemon, responses: &BTreeMap<String, Value>) -> bool {
    let Some(listed) = responses.get(ROUND) else {
        return false;
    };
    match serde_json::from_value::<ListRootsResult>(listed.clone()) {
        Ok(result) => apply(daemon, &result.roots),
        Err(err) => tracing::warn!(%err, "the client's roots were not understood"),
    }
    true
}

/// Makes the first `file://` root the project.
pub(super) fn apply(daemon: &Daemon, roots: &[Root]) {
    let Some(dir) = roots.iter().find_map(|root| file_path(&root.uri)) else {
        tracing::info!("the client's roots name no local directory; the project stays");
        return;
    };
    if let Err(err) = daemon.set_project(&dir) {
        tracing::warn!(%err, root = %dir, "the client's root is not a directory sessions may use");
    }
}

/// The path of a `file://` URI (`file:///p/a%20b` is `/p/a b`); `None` for anything else.
fn file_path(uri: &str) -> Option<String> {
    let path = uri
        .strip_prefix("file://")
        .map(|rest| rest.strip_prefix("localhost").unwrap_or(rest))?;
    if !path.starts_with('/') {
        return None;
    }
    percent_decoded(path)
}

fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_uri_is_a_path_and_nothing_else_is() {
        assert_eq!(
            file_path("file:///home/me/my%20repo").as_deref(),
            Some("/home/me/my repo")
        );
        assert_eq!(
            file_path("file://localhost/srv/x").as_deref(),
            Some("/srv/x")
        );
        assert_eq!(file_path("https://example.com/x"), None);
        assert_eq!(file_path("file://host/x"), None);
        assert_eq!(file_path("file:///bad%zz"), None);
    }
}
