//! ACP sessions: each is one named session of ours (`acp-<uuid>`, its own warm CLI and
//! conversation), with what the client chose for it: the permission mode (within the
//! user's ceiling) and the model, the uses it rejected for good, and how its messages
//! are being translated. Also the session's setup: its MCP servers and added directories
//! as the CLI's arguments.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agent_client_protocol_schema::v1::{
    McpServer, SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption,
    SessionMode, SessionModeState,
};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::updates::Updates;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::permissions::PermissionMode;
use crate::sync::lock;

/// The prefix of the names of our sessions that ACP sessions are.
pub(super) const PREFIX: &str = "acp-";
/// The config option ids.
pub(super) const MODE: &str = "mode";
pub(super) const MODEL: &str = "model";
/// The model value that means the configured one.
const DEFAULT_MODEL: &str = "default";
/// Model aliases the CLI takes, offered besides the configured one.
const MODEL_ALIASES: [&str; 3] = ["opus", "sonnet", "haiku"];

/// One ACP session's state on this connection.
pub(super) struct Session {
    /// Our session's name (the ACP id, for a session made here).
    pub(super) name: String,
    pub(super) mode: Option<PermissionMode>,
    pub(super) model: Option<String>,
    /// "Reject always" choices: tool and rule (see `permission::rejection_key`).
    pub(super) rejected: HashSet<String>,
    pub(super) updates: Arc<Mutex<Updates>>,
    /// Bumped by `session/cancel`: each prompt of the session watches it.
    pub(super) cancel: watch::Sender<u64>,
}

impl Session {
    pub(super) fn new(name: String) -> Session {
        Session {
            name,
            mode: None,
            model: None,
            rejected: HashSet::new(),
            updates: Arc::new(Mutex::new(Updates::default())),
            cancel: watch::Sender::new(0),
        }
    }
}

/// The sessions of one connection, by ACP session id (= our session name).
pub(super) type Sessions = Arc<Mutex<HashMap<String, Session>>>;

/// A new ACP session id.
pub(super) fn new_id() -> String {
    format!("{PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// Our session name for ACP session `id`: the id itself for a session made here, and
/// `acp-<hex>` for a conversation the CLI saved under the UUID `id` (another Claude Code
/// agent's thread); `None` for anything else.
pub(super) fn name_for(id: &str) -> Option<String> {
    if is_ours(id) {
        return Some(id.to_string());
    }
    crate::state_dir::is_canonical_uuid(id).then(|| format!("{PREFIX}{}", id.replace('-', "")))
}

/// Whether `id` may name one of our ACP sessions.
pub(super) fn is_ours(id: &str) -> bool {
    id.starts_with(PREFIX) && crate::sessions::check_name(id).is_ok()
}

/// The mode a session runs in now.
pub(super) fn current_mode(config: &Config, chosen: Option<PermissionMode>) -> PermissionMode {
    chosen
        .or(config.permission_mode)
        .unwrap_or(PermissionMode::Default)
}

/// The modes a client may choose: those within the user's ceiling.
fn modes_within(config: &Config) -> Vec<PermissionMode> {
    use PermissionMode::*;
    [Plan, DontAsk, Default, AcceptEdits, Auto, BypassPermissions]
        .into_iter()
        .filter(|mode| mode.within(config.permission_ceiling))
        .collect()
}

fn mode_description(mode: PermissionMode) -> &'static str {
    match mode {
        PermissionMode::Plan => "Read-only planning: no edits, no commands",
        PermissionMode::DontAsk => "Denies what is not pre-approved, asks nothing",
        PermissionMode::Default => "Asks before edits and commands",
        PermissionMode::AcceptEdits => "Accepts file edits without asking",
        PermissionMode::Auto => "A classifier approves what it judges safe",
        PermissionMode::BypassPermissions => "Everything is allowed",
    }
}

/// The modes, as `session/new` and `session/load` answer them.
pub(super) fn mode_state(config: &Config, chosen: Option<PermissionMode>) -> SessionModeState {
    let modes = modes_within(config)
        .into_iter()
        .map(|mode| {
            SessionMode::new(mode.as_str(), mode.as_str()).description(mode_description(mode))
        })
        .collect();
    SessionModeState::new(current_mode(config, chosen).as_str(), modes)
}

/// The mode `id` names, if the client may choose it.
pub(super) fn mode_named(config: &Config, id: &str) -> Result<PermissionMode, String> {
    let mode = modes_within(config)
        .into_iter()
        .find(|mode| mode.as_str() == id);
    mode.ok_or_else(|| {
        format!(
            "`{id}` is not a mode this agent offers: the user's ceiling is `{}` (only the \
             user can raise it, with --permission-ceiling)",
            config.permission_ceiling
        )
    })
}

/// The config options (mode and model) with their current values.
pub(super) fn config_options(
    config: &Config,
    mode: Option<PermissionMode>,
    model: Option<&str>,
) -> Vec<SessionConfigOption> {
    let modes = modes_within(config)
        .into_iter()
        .map(|m| {
            SessionConfigSelectOption::new(m.as_str(), m.as_str()).description(mode_description(m))
        })
        .collect::<Vec<_>>();
    let configured = config.model.as_deref().unwrap_or("the CLI's default");
    let mut models = vec![SessionConfigSelectOption::new(
        DEFAULT_MODEL,
        format!("Default ({configured})"),
    )];
    models.extend(
        MODEL_ALIASES
            .iter()
            .map(|alias| SessionConfigSelectOption::new(*alias, *alias)),
    );
    vec![
        SessionConfigOption::select(
            MODE,
            "Permission mode",
            current_mode(config, mode).as_str(),
            modes,
        )
        .category(SessionConfigOptionCategory::Mode),
        SessionConfigOption::select(
            MODEL,
            "Model",
            model.unwrap_or(DEFAULT_MODEL).to_string(),
            models,
        )
        .category(SessionConfigOptionCategory::Model),
    ]
}

/// The model `value` names: `None` for the configured one.
pub(super) fn model_named(value: &str) -> Result<Option<String>, String> {
    match value {
        DEFAULT_MODEL => Ok(None),
        alias if MODEL_ALIASES.contains(&alias) => Ok(Some(alias.to_string())),
        other => Err(format!(
            "`{other}` is not a model this agent offers ({DEFAULT_MODEL}, {})",
            MODEL_ALIASES.join(", ")
        )),
    }
}

/// The CLI's arguments for a session's MCP servers and added directories. The servers
/// go in a file of the state directory readable by the user alone (their headers and
/// environment may hold secrets, which a command line would show every local user);
/// the directories are confined like the session's own.
pub(super) fn cli_args(
    daemon: &Daemon,
    name: &str,
    servers: &[McpServer],
    directories: &[PathBuf],
) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for dir in directories {
        let real = daemon
            .confine(&dir.to_string_lossy())
            .map_err(|err| format!("additionalDirectories: {err}"))?;
        args.push("--add-dir".to_string());
        args.push(real.display().to_string());
    }
    if servers.is_empty() {
        return Ok(args);
    }
    let Some(root) = daemon.state_root() else {
        return Err("mcpServers need the state directory, which is not usable".into());
    };
    let path = root.join(format!("{name}.mcp.json"));
    write_private(&path, &mcp_config(servers)?)?;
    args.push("--mcp-config".to_string());
    args.push(path.display().to_string());
    Ok(args)
}

/// ACP's MCP servers in the CLI's `--mcp-config` form.
fn mcp_config(servers: &[McpServer]) -> Result<Value, String> {
    let pairs = |list: Option<&Value>| -> Map<String, Value> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let name = pair.get("name")?.as_str()?;
                Some((
                    name.to_string(),
                    pair.get("value").cloned().unwrap_or(Value::Null),
                ))
            })
            .collect()
    };
    let mut config = Map::new();
    for server in servers {
        let value = serde_json::to_value(server).map_err(|err| err.to_string())?;
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let entry = match value.get("type").and_then(Value::as_str) {
            Some(kind @ ("http" | "sse")) => json!({"type": kind, "url": value.get("url"),
                "headers": pairs(value.get("headers"))}),
            Some(other) => return Err(format!("mcpServers: `{other}` servers are not supported")),
            None => json!({"type": "stdio", "command": value.get("command"),
                "args": value.get("args").cloned().unwrap_or(json!([])),
                "env": pairs(value.get("env"))}),
        };
        config.insert(name.to_string(), entry);
    }
    Ok(json!({ "mcpServers": config }))
}

fn write_private(path: &Path, value: &Value) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(value.to_string().as_bytes())
    };
    write().map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// Removes a closed session's MCP file, if it had one.
pub(super) fn forget_files(daemon: &Daemon, name: &str) {
    if let Some(root) = daemon.state_root() {
        let _ = std::fs::remove_file(root.join(format!("{name}.mcp.json")));
    }
}

/// Runs `f` on session `id`, if this connection knows it.
pub(super) fn with<T>(
    sessions: &Sessions,
    id: &str,
    f: impl FnOnce(&mut Session) -> T,
) -> Option<T> {
    lock(sessions).get_mut(id).map(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_servers_become_the_clis_config() {
        let servers: Vec<McpServer> = serde_json::from_value(json!([
            {"name": "fs", "command": "/bin/fs", "args": ["-v"], "env": [{"name": "K", "value": "v"}]},
            {"type": "http", "name": "web", "url": "http://127.0.0.1:9/mcp",
             "headers": [{"name": "Authorization", "value": "Bearer t"}]}]))
        .unwrap();
        let config = mcp_config(&servers).unwrap();
        assert_eq!(
            config["mcpServers"]["fs"],
            json!({"type": "stdio", "command": "/bin/fs", "args": ["-v"], "env": {"K": "v"}})
        );
        assert_eq!(
            config["mcpServers"]["web"]["headers"]["Authorization"],
            "Bearer t"
        );
    }

    #[test]
    fn models_are_the_configured_one_or_an_alias() {
        assert_eq!(model_named("default").unwrap(), None);
        assert_eq!(model_named("opus").unwrap().as_deref(), Some("opus"));
        assert!(model_named("--dangerous").is_err());
        assert!(is_ours(&new_id()));
        assert!(!is_ours("default"));
        assert!(!is_ours("acp-../x"));
        let cli = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
        assert_eq!(
            name_for(cli).as_deref(),
            Some("acp-0b1c2d3e4f5046178899aabbccddeeff")
        );
        assert_eq!(name_for("acp-abc").as_deref(), Some("acp-abc"));
        assert!(name_for("../etc").is_none());
    }
}
