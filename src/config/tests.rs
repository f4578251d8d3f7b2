//! The configuration's tests: resolution order, the status view, errors named by flag
//! and file key, the docs' table against the settings, `listen` and the cwd key.
use super::*;

#[test]
fn flags_win_over_file_and_file_over_defaults() {
    let dir = std::env::temp_dir().join(format!("cc-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.json");
    std::fs::write(
        &file,
        r#"{"queueSize": 3, "model": "from-file", "turnTimeoutMs": 7}"#,
    )
    .unwrap();
    let args = ConfigArgs {
        model: Some("from-flag".into()),
        cwd: Some(dir.clone()),
        ..ConfigArgs::default()
    };
    let config = Config::resolve(&args, Some(&file)).unwrap();
    assert_eq!(config.model.as_deref(), Some("from-flag"));
    assert_eq!(config.queue_size, 3);
    assert_eq!(config.turn_timeout_ms, 7);
    assert_eq!(config.backoff_max_ms, 60_000);
    assert_eq!(config.claude_bin, "claude");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_status_config_is_the_config_as_it_serialises_masked() {
    let dir = std::env::temp_dir().join(format!("cc-config-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let args = ConfigArgs {
        claude_args: vec!["--verbose".into()],
        model: Some("sonnet".into()),
        permission_mode: Some(PermissionMode::AcceptEdits),
        allow_tools: vec!["Bash(git diff:*)".into()],
        cwd: Some(dir.clone()),
        session_budget_usd: Some(0.5),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        listen_token: Some("hunter2-hunter2-hunter2".parse().unwrap()),
        max_sessions: Some(2),
        ..ConfigArgs::default()
    };
    let config = Config::resolve(&args, None).unwrap();
    let mut expected = serde_json::to_value(&config).unwrap();
    crate::redact::redact_value(&mut expected);
    let status = config.status_config();
    // The same JSON, key for key and in the same order.
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        expected.to_string()
    );
    assert_eq!(
        serde_json::from_value::<StatusConfig>(expected).unwrap(),
        status
    );
    assert_eq!(status.listen_token.as_deref(), Some("(set)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_file_keys_and_bad_cwd_are_errors() {
    let dir = std::env::temp_dir().join(format!("cc-config-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.json");
    std::fs::write(&file, r#"{"queueSzie": 3}"#).unwrap();
    let err = Config::resolve(&ConfigArgs::default(), Some(&file)).unwrap_err();
    assert!(err.to_string().contains("queueSzie"), "{err}");
    let args = ConfigArgs {
        cwd: Some(dir.join("missing")),
        ..ConfigArgs::default()
    };
    let err = Config::resolve(&args, Some(Path::new("/nonexistent/cc.json"))).unwrap_err();
    assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    std::fs::write(&file, "{}").unwrap();
    let err = Config::resolve(&args, Some(&file)).unwrap_err();
    assert!(matches!(err, ConfigError::BadCwd { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_invalid_setting_is_named_by_its_flag_and_its_file_key() {
    let args = ConfigArgs {
        max_sessions: Some(0),
        cwd: Some(std::env::temp_dir()),
        ..ConfigArgs::default()
    };
    let err = Config::resolve(&args, None);
    let err = err.map(|_| ()).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid --max-sessions (maxSessions in a config file): "),
        "{err}"
    );
    // A list's flag is singular: the message names the flag there is.
    let args = ConfigArgs {
        allow_dirs: vec![std::env::temp_dir().join("claude-coded-no-such-dir")],
        cwd: Some(std::env::temp_dir()),
        ..ConfigArgs::default()
    };
    let err = Config::resolve(&args, None);
    let err = err.map(|_| ()).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid --allow-dir (allowDirs in a config file): "),
        "{err}"
    );
}

/// The rows of docs/reference.md's command-line table: flag (`--queue-size`), variable, default.
fn readme_rows() -> Vec<(String, String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md"))
        .expect("docs/reference.md");
    readme
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let flag = cells[1]
                .trim_matches('`')
                .split_whitespace()
                .next()
                .unwrap();
            let env = cells[2].split('`').nth(1).unwrap_or_default();
            (flag.to_string(), env.to_string(), cells[3].replace('`', ""))
        })
        .collect()
}

#[test]
fn the_readme_table_shows_every_setting_with_its_variable_and_default() {
    let rows = readme_rows();
    for setting in SETTINGS {
        let flag = setting.flag();
        let row = rows.iter().find(|(f, _, _)| *f == flag);
        let (_, env, default) = row.unwrap_or_else(|| panic!("docs/reference.md lacks {flag}"));
        assert_eq!(env, setting.env, "{flag}");
        if let Some(shown) = setting.default {
            assert_eq!(
                default.split_whitespace().next(),
                Some(shown),
                "{flag}: docs/reference.md says {default:?}"
            );
        }
    }
}

#[test]
fn every_flag_in_the_readme_table_exists() {
    use clap::CommandFactory;
    let command = crate::cli::Cli::command();
    let longs: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    for (flag, _, _) in readme_rows() {
        assert!(
            longs.contains(&flag),
            "docs/reference.md documents {flag}, which the CLI lacks"
        );
    }
}

#[test]
fn the_defaults_shown_are_the_defaults_used() {
    let dir = std::env::temp_dir();
    let args = ConfigArgs {
        cwd: Some(dir.clone()),
        ..ConfigArgs::default()
    };
    let missing = dir.join(format!("cc-no-config-{}.json", std::process::id()));
    std::fs::write(&missing, "{}").unwrap();
    let config = serde_json::to_value(Config::resolve(&args, Some(&missing)).unwrap()).unwrap();
    std::fs::remove_file(&missing).unwrap();
    for setting in SETTINGS {
        let Some(shown) = setting.default else {
            continue;
        };
        let key = setting.file_key();
        let value = match &config[&key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(value, shown, "{key}");
    }
}

#[test]
fn every_example_is_a_value_a_config_file_may_give() {
    for setting in SETTINGS {
        let Some(example) = setting.example else {
            continue;
        };
        let file = format!("{{\"{}\": {example}}}", setting.file_key());
        if let Err(err) = serde_json::from_str::<ConfigArgs>(&file) {
            panic!("{}: example {example}: {err}", setting.name);
        }
    }
}

#[test]
fn a_list_variable_that_is_not_a_json_array_is_named() {
    let err = list_from_env::<String>("PATH").unwrap_err().to_string();
    assert!(
        err.starts_with("invalid PATH: must be a JSON array of strings"),
        "{err}"
    );
}

#[test]
fn listen_takes_an_ip_address_or_localhost_and_nothing_else() {
    let parsed = |s: &str| s.parse::<ListenAddr>().map(|ListenAddr(a)| a.to_string());
    assert_eq!(parsed("localhost:8700").unwrap(), "127.0.0.1:8700");
    assert_eq!(parsed("LocalHost:0").unwrap(), "127.0.0.1:0");
    assert_eq!(parsed("[::1]:9").unwrap(), "[::1]:9");
    assert_eq!(parsed("0.0.0.0:80").unwrap(), "0.0.0.0:80");
    for bad in [
        "localhost",
        "localhost:65536",
        "example.com:80",
        "localhost.evil:1",
        ":80",
    ] {
        assert!(parsed(bad).unwrap_err().contains("localhost:PORT"), "{bad}");
    }
    let file: ConfigArgs = serde_json::from_str(r#"{"listen": "localhost:1"}"#).unwrap();
    assert_eq!(
        file.listen,
        Some(ListenAddr(SocketAddr::from(([127, 0, 0, 1], 1))))
    );
    assert!(serde_json::from_str::<ConfigArgs>(r#"{"listen": "nowhere:1"}"#).is_err());
}

#[test]
fn cwd_key_is_stable_and_distinct() {
    let a = cwd_key(Path::new("/home/u/project"));
    assert_eq!(a, cwd_key(Path::new("/home/u/project")));
    assert_ne!(a, cwd_key(Path::new("/home/v/project")));
    assert!(a.starts_with("project-"));
}
