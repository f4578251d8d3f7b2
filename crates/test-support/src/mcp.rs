//! Harness for the MCP tests that use rmcp's client: spawn `claude-coded` (over the CLI
//! double) as a child process and record every notification the client receives.

#![allow(deprecated)] // rmcp marks MCP logging deprecated (SEP-2577); the bridge still serves it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientRequest,
    CustomNotification, ElicitRequestParams, ElicitResult, ElicitationAction, Implementation,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion, Request,
    ServerResult, TASKS_EXTENSION_ID,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, PeerRequestOptions, RequestHandle,
    RunningService,
};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::bridge::{Options, READ_TIMEOUT, wait_gone};
use crate::temp_dir::TempDir;

/// Everything the client was sent besides responses.
#[derive(Clone, Default)]
pub struct Seen {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    pub custom: Arc<Mutex<Vec<CustomNotification>>>,
    /// Forms the server put to this client (elicitations, direct or in rounds).
    pub forms: Arc<Mutex<Vec<ElicitRequestParams>>>,
    /// How the next forms are answered, in order (declined when none is left).
    pub answers: Arc<Mutex<std::collections::VecDeque<ElicitResult>>>,
}

impl Seen {
    pub fn progress(&self) -> MutexGuard<'_, Vec<ProgressNotificationParam>> {
        self.progress.lock().unwrap()
    }
    pub fn logs(&self) -> MutexGuard<'_, Vec<LoggingMessageNotificationParam>> {
        self.logs.lock().unwrap()
    }
    pub fn custom(&self) -> MutexGuard<'_, Vec<CustomNotification>> {
        self.custom.lock().unwrap()
    }
    pub fn forms(&self) -> MutexGuard<'_, Vec<ElicitRequestParams>> {
        self.forms.lock().unwrap()
    }
    /// Answers the next form with `content` (accepted).
    pub fn answer_next(&self, content: Value) {
        let result = ElicitResult::new(ElicitationAction::Accept).with_content(content);
        self.answers.lock().unwrap().push_back(result);
    }
}

pub struct TestClient {
    info: ClientConfig,
    seen: Seen,
    /// The roots it lists (`file://` URIs), when it declares them.
    roots: Vec<String>,
}

impl ClientHandler for TestClient {
    #[allow(deprecated)] // Roots (SEP-2577): hosts still declare them, so the tests do.
    async fn list_roots(
        &self,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, rmcp::ErrorData> {
        let roots = self
            .roots
            .iter()
            .map(|uri| rmcp::model::Root::new(uri.clone()))
            .collect();
        Ok(rmcp::model::ListRootsResult::new(roots))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        self.seen.forms().push(request);
        let next = self.seen.answers.lock().unwrap().pop_front();
        Ok(next.unwrap_or_else(|| ElicitResult::new(ElicitationAction::Decline)))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.seen.progress().push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.seen.logs().push(params);
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        self.seen.custom().push(notification);
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

/// How to connect.
#[derive(Default)]
pub struct Connect {
    /// Offered in `initialize`; rmcp's default is its newest (2026-07-28).
    pub version: Option<ProtocolVersion>,
    /// Declare `experimental: {"claude-coded/events": {}}`.
    pub raw_events: bool,
    /// Declare form elicitation (permission questions come to `Seen::forms`).
    pub elicitation: bool,
    /// Use `server/discover` and per-request `_meta` (2026-07-28) instead of `initialize`.
    pub discover: bool,
    /// Declare the tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663).
    pub tasks: bool,
    pub args: Vec<String>,
    /// The child program given as `--claude-bin` (default: the CLI double).
    pub claude_bin: Option<String>,
    /// Added to claude-coded's environment, which it passes on to the child.
    pub env: Vec<(String, String)>,
    /// Declare `roots` and list these (`file://` URIs).
    pub roots: Vec<String>,
    /// Start claude-coded with only `PATH` from the test's environment (plus `HOME`,
    /// `RUST_LOG` and `env`), so a real CLI child sees nothing of the developer's shell.
    pub clean_env: bool,
}

pub struct McpBridge {
    pub client: RunningService<RoleClient, TestClient>,
    pub seen: Seen,
    pub dir: TempDir,
    pub pid: i32,
}

impl McpBridge {
    pub async fn start() -> McpBridge {
        McpBridge::connect(Connect::default()).await
    }

    pub async fn connect(options: Connect) -> McpBridge {
        let dir = TempDir::new("mcp");
        let transport =
            TokioChildProcess::new(bridge_command(&dir, &options)).expect("spawn claude-coded");
        let pid = transport.id().expect("a pid") as i32;
        let seen = Seen::default();
        let handler = TestClient {
            info: client_config(&options),
            seen: seen.clone(),
            roots: options.roots.clone(),
        };
        let serving = async {
            if options.discover {
                let lifecycle = ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                };
                handler
                    .serve_with_lifecycle(transport, lifecycle)
                    .await
                    .expect("discover")
            } else {
                handler.serve(transport).await.expect("initialize")
            }
        };
        let client = tokio::time::timeout(READ_TIMEOUT, serving)
            .await
            .expect("handshake timed out");
        McpBridge {
            client,
            seen,
            dir,
            pid,
        }
    }

    /// Calls a tool and waits for its result (a JSON-RPC error panics).
    /// A tool call whose `input_required` rounds (2026-07-28) the client drives, answering
    /// the forms from `Seen::answers`.
    pub async fn call_in_rounds(&self, tool: &str, arguments: Value) -> CallToolResult {
        let call = self.client.call_tool(call_params(tool, arguments));
        tokio::time::timeout(READ_TIMEOUT, call)
            .await
            .expect("tool call timed out")
            .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let params = call_params(tool, arguments);
        let call = self.client.peer().call_tool(params);
        tokio::time::timeout(READ_TIMEOUT, call)
            .await
            .expect("tool call timed out")
            .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
    }

    /// Starts a tool call that the test may cancel.
    pub async fn start_call(&self, tool: &str, arguments: Value) -> RequestHandle<RoleClient> {
        let request = ClientRequest::CallToolRequest(Request::new(call_params(tool, arguments)));
        self.client
            .peer()
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .expect("send tools/call")
    }

    /// The complete status (`full: true`), as the plain surface's `status` gives it.
    pub async fn status(&self) -> Value {
        structured(&self.call("status", json!({"full": true})).await)["full"].clone()
    }

    /// A ping round trip: whatever the server wrote before its answer has been read and
    /// handled by then, so an absence checked afterwards is not a message merely late.
    pub async fn round_trip(&self) {
        let request = ClientRequest::PingRequest(Default::default());
        let response = self.client.peer().send_request(request).await;
        assert!(
            matches!(response, Ok(ServerResult::EmptyResult(_))),
            "ping: {response:?}"
        );
    }

    /// Waits until `status` satisfies `pred`, or panics with the last one.
    pub async fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
        loop {
            let status = self.status().await;
            if pred(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last status: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `pred` holds for what the client has seen.
    pub async fn wait_seen(&self, what: &str, pred: impl Fn(&Seen) -> bool) {
        let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
        while !pred(&self.seen) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes the client's side (stdin EOF for the bridge) and waits for the bridge to exit,
    /// so its state directory is removed only after it is done with it.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
        assert!(
            wait_gone(self.pid, READ_TIMEOUT).await,
            "claude-coded did not exit after stdin closed"
        );
    }
}

/// The result of a cancellable call.
pub async fn call_result(handle: RequestHandle<RoleClient>) -> CallToolResult {
    let response = tokio::time::timeout(READ_TIMEOUT, handle.await_response())
        .await
        .expect("tool call timed out")
        .expect("tool call failed");
    match response {
        ServerResult::CallToolResult(result) => result,
        other => panic!("not a tool result: {other:?}"),
    }
}

pub fn structured(result: &CallToolResult) -> Value {
    result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structured content in {result:?}"))
}

pub fn texts(result: &CallToolResult) -> Vec<String> {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

fn call_params(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object");
    };
    CallToolRequestParams::new(tool.to_string()).with_arguments(arguments)
}

fn client_config(options: &Connect) -> ClientConfig {
    let mut capabilities = ClientCapabilities::default();
    if options.raw_events {
        let mut experimental = std::collections::BTreeMap::new();
        experimental.insert("claude-coded/events".to_string(), serde_json::Map::new());
        capabilities.experimental = Some(experimental);
    }
    if options.elicitation {
        capabilities.elicitation =
            Some(serde_json::from_value(json!({"form": {}})).expect("an elicitation capability"));
    }
    if !options.roots.is_empty() {
        capabilities.roots =
            Some(serde_json::from_value(json!({"listChanged": true})).expect("a roots capability"));
    }
    if options.tasks {
        capabilities
            .extensions
            .get_or_insert_with(Default::default)
            .insert(TASKS_EXTENSION_ID.to_string(), serde_json::Map::new());
    }
    let mut config =
        ClientConfig::new(capabilities, Implementation::new("claude-coded-tests", "0"));
    if let Some(version) = &options.version {
        config.protocol_version = version.clone();
    }
    config
}

fn bridge_command(dir: &TempDir, options: &Connect) -> Command {
    let options = Options {
        args: options.args.clone(),
        env: options.env.clone(),
        claude_bin: options.claude_bin.clone(),
        clean_env: options.clean_env,
        ..Options::default()
    };
    crate::bridge::bridge_command(dir.path(), &options)
}
