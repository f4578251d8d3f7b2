//! One module per subject; each module's doc says what it covers. A helper only one
//! subject uses lives beside it (`e2e_real_host/host_support.rs`); what several share is
//! in `crates/test-support`.

mod acp;
mod backpressure;
mod bad_input;
mod capture_cli;
mod config_roundtrip;
mod daemon_cli;
mod doc_flags;
mod double_shapes;
mod e2e_other_hosts;
mod e2e_real_cli;
mod e2e_real_cli_acp;
mod e2e_real_cli_daemon;
mod e2e_real_cli_sessions;
mod e2e_real_host;
mod faults_child;
mod faults_host;
mod hostile_clients;
mod http_limits;
mod http_listen;
mod http_mcp;
mod install;
mod layers;
mod mcp_background;
mod mcp_plain_parity;
mod mcp_rmcp_client;
mod mcp_roots;
mod mcp_tasks;
mod mcp_wire;
mod nesting;
mod package;
mod permissions;
mod plain_ask;
mod plain_background;
mod plain_faults;
mod plain_lifecycle;
mod plain_protocol;
mod schemas;
mod sessions;
mod soak_short;
mod spares;
mod state_security;
mod terminal;
