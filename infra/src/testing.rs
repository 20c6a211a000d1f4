//! Helpers for tests that need the real servers the test harness starts
//! (`deploy/local/servers.sh`): Kafka on `SLUICE_TEST_KAFKA` (default
//! `127.0.0.1:9092`) and CQL on `SLUICE_TEST_CQL` (default `127.0.0.1:9042`).
//!
//! When a server is unreachable, a test is skipped with a loud message on a
//! developer's machine, and fails under CI (`CI` set) or when
//! `SLUICE_REQUIRE_SERVERS=1` — the test command sets it.

use std::{net::TcpStream, time::Duration};

/// Whether missing servers must fail tests instead of skipping them.
pub fn servers_required() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("SLUICE_REQUIRE_SERVERS")
}

fn require(what: &str, variable: &str, default: &str) -> Option<String> {
    let addr = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    let reachable = addr
        .parse()
        .ok()
        .is_some_and(|socket| TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(addr);
    }
    let message = format!(
        "{what} is not reachable on {addr} (set {variable}, or start it with deploy/local/servers.sh start)"
    );
    assert!(!servers_required(), "{message}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: {message}");
    }
    None
}

/// The Kafka bootstrap address, or `None` (after saying so) when it is down and
/// servers are not required.
pub fn kafka() -> Option<String> {
    require("Kafka", "SLUICE_TEST_KAFKA", "127.0.0.1:9092")
}

/// The CQL contact point, or `None` (after saying so) when it is down and servers
/// are not required.
pub fn cql() -> Option<String> {
    require("the CQL server", "SLUICE_TEST_CQL", "127.0.0.1:9042")
}

/// A name no earlier test run used, for topics, groups and keyspaces.
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}
