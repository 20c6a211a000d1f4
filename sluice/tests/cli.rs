//! The binary's own surface: version, help, usage errors, and `engine migrate`
//! against the real CQL server.

use std::process::{Command, Output};

use sluice_infra::testing;

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("SLUICE_BUS")
        .env_remove("SLUICE_STORE")
        .output()
        .expect("running sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_and_help() {
    let version = sluice(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        text(&version.stdout).trim(),
        format!("sluice {}", env!("CARGO_PKG_VERSION"))
    );

    let help = sluice(&["--help"]);
    assert!(help.status.success());
    let help = text(&help.stdout);
    for command in ["dev", "engine", "ingest", "actions", "flow"] {
        assert!(
            help.contains(&format!("\n  {command}")),
            "--help lists {command}:\n{help}"
        );
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let output = sluice(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unrecognized subcommand"));
}

#[test]
fn engine_migrate_creates_the_keyspace_idempotently() {
    let Some(node) = testing::cql() else {
        return;
    };
    let keyspace = testing::unique_name("sluice_cli").to_lowercase();
    let keyspace = &keyspace[..keyspace.len().min(48)];
    let store = format!("cql://{node}/{keyspace}?replication_factor=1");
    for run in 0..2 {
        let output = sluice(&["engine", "--store", &store, "migrate"]);
        assert!(
            output.status.success(),
            "run {run}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stderr).contains("CQL schema is current"));
    }
}

#[test]
fn bad_store_url_names_the_problem() {
    let output = sluice(&["engine", "--store", "cql://h/bad-name", "migrate"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("keyspace \"bad-name\""),
        "{}",
        text(&output.stderr)
    );
}
