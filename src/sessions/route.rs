//! Where an ask goes, read from its params once: the session's name, the conversation it
//! picks (its own, a new one, a saved one continued or branched), its directory, and the
//! checks of the names and ids that reach the CLI's command line.

use crate::api::AskParams;
use crate::error::DaemonError;
use crate::supervisor::{DEFAULT_SESSION, Origin};

/// Longest session name.
const MAX_NAME: usize = 64;

/// Where an ask goes, read from its params once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    pub(crate) name: String,
    /// A new conversation (`newSession`), a saved one (`resume`), or a branch (`fork`):
    /// `None` keeps the session's own.
    pub(crate) origin: Option<Pick>,
    pub(crate) cwd: Option<String>,
    /// The ask's own budget (`maxBudgetUsd`): a session started for the ask starts its
    /// first child under it, instead of replacing a child started under the session's.
    pub(crate) ask_budget: Option<f64>,
    /// More arguments for a child this route starts (an ACP session's MCP servers and
    /// added directories), after the configured ones; already checked by the caller.
    pub(crate) extra_args: Vec<String>,
}

/// The conversation an ask picks for its session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pick {
    /// A known start: new, or a given saved session continued or branched.
    Given(Origin),
    /// A branch of the session's own conversation, known once the session is found.
    ForkOwn,
}

impl Route {
    /// The route of `params`, or which field is wrong.
    pub(crate) fn of(params: &AskParams) -> Result<Route, DaemonError> {
        let name = params.session.clone().unwrap_or(DEFAULT_SESSION.into());
        check_name(&name)?;
        let origin = match (&params.resume, params.fork, params.new_session) {
            (Some(_), _, true) => {
                return Err(invalid("newSession", "cannot be combined with resume"));
            }
            (Some(id), fork, false) => {
                check_session_id(id)?;
                Some(Pick::Given(if fork {
                    Origin::Fork(id.clone())
                } else {
                    Origin::Resume(id.clone())
                }))
            }
            (None, true, true) => {
                return Err(invalid("fork", "cannot be combined with newSession"));
            }
            (None, true, false) => Some(Pick::ForkOwn),
            (None, false, true) => Some(Pick::Given(Origin::Fresh)),
            (None, false, false) => None,
        };
        Ok(Route {
            name,
            origin,
            cwd: params.cwd.clone(),
            ask_budget: params.max_budget_usd,
            extra_args: Vec::new(),
        })
    }
}

pub(super) fn invalid(field: &'static str, reason: &str) -> DaemonError {
    DaemonError::InvalidParams {
        field,
        reason: reason.to_string(),
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), DaemonError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "session",
            "must be 1 to 64 letters, digits, `.`, `_` or `-`",
        ))
    }
}

/// A Claude Code session id is a UUID as the CLI writes it (lowercase, hyphenated);
/// anything else would reach the CLI's command line, and the braced, hyphenless,
/// uppercase and `urn:uuid:` forms a UUID parser takes are ones the CLI mishandles.
fn check_session_id(id: &str) -> Result<(), DaemonError> {
    match crate::state_dir::is_canonical_uuid(id) {
        true => Ok(()),
        false => Err(invalid(
            "resume",
            "must be a Claude Code session id as `sessionId` of an earlier answer gives it \
             (a lowercase, hyphenated UUID)",
        )),
    }
}
