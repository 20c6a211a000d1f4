//! Private Kafka and Cassandra instances for tests that stop and restart their
//! servers: `deploy/local/servers.sh` with `SLUICE_SERVERS_RUN` set to a temporary
//! directory and every port picked free, run from the same cached jars as the shared
//! servers on 9092/9042, which are never touched.

use std::{
    path::Path,
    process::{Command, Output},
    time::Instant,
};

use sluice_infra::testing;

use super::free_port;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/servers.sh");

/// A server `servers.sh` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Kafka (KRaft, one node).
    Kafka,
    /// Cassandra (one node).
    Cassandra,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Kafka => "kafka",
            Server::Cassandra => "cassandra",
        }
    }
}

/// Private servers, stopped (and their data deleted) on drop.
pub struct PrivateServers {
    dir: tempfile::TempDir,
    ports: Vec<(&'static str, u16)>,
    kafka: u16,
    cql: u16,
}

impl PrivateServers {
    /// Starts Kafka and Cassandra together and waits until both serve. `None` (after
    /// saying so) when they cannot start and servers are not required
    /// (`SLUICE_REQUIRE_SERVERS`, `CI`); a panic when they are.
    pub fn start() -> Option<PrivateServers> {
        Self::start_only(&[Server::Kafka, Server::Cassandra])
    }

    /// Starts `servers` only (the others' addresses are reserved but not served), like
    /// [`start`](Self::start).
    pub fn start_only(wanted: &[Server]) -> Option<PrivateServers> {
        let port = || free_port().port();
        let (kafka, cql) = (port(), port());
        let servers = PrivateServers {
            dir: tempfile::Builder::new()
                .prefix("sluice-servers-")
                .tempdir()
                .expect("a temporary directory"),
            ports: vec![
                ("SLUICE_KAFKA_PORT", kafka),
                ("SLUICE_KAFKA_CONTROLLER_PORT", port()),
                ("SLUICE_CQL_PORT", cql),
                ("SLUICE_CASSANDRA_STORAGE_PORT", port()),
                ("SLUICE_CASSANDRA_JMX_PORT", port()),
            ],
            kafka,
            cql,
        };
        let output = servers.run("start", wanted);
        if output.status.success() {
            return Some(servers);
        }
        let message = format!(
            "private {:?} did not start ({SCRIPT} start):\n{}",
            wanted,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!testing::servers_required(), "{message}");
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED: {message}");
        }
        None
    }

    /// Kafka's bootstrap address.
    pub fn kafka(&self) -> String {
        format!("127.0.0.1:{}", self.kafka)
    }

    /// The CQL contact point.
    pub fn cql(&self) -> String {
        format!("127.0.0.1:{}", self.cql)
    }

    /// Stops `server` (SIGTERM, then SIGKILL after a timeout); its data stays.
    pub fn stop(&self, server: Server) {
        self.expect("stop", server);
    }

    /// Starts `server` again and waits until it serves.
    pub fn start_again(&self, server: Server) {
        self.expect("start", server);
    }

    /// Copies the servers' logs (`kafka-server.log`, `cassandra-system.log`, …) into
    /// `into`, for a failed test's post-mortem; returns whether every copy succeeded.
    pub fn keep_logs(&self, into: &Path) -> bool {
        [Server::Kafka, Server::Cassandra].iter().all(|server| {
            let logs = self.dir.path().join(server.name()).join("logs");
            // A server this test did not start has no logs.
            std::fs::read_dir(logs).map_or(true, |entries| {
                entries.flatten().all(|entry| {
                    let name = format!("{}-{}", server.name(), entry.file_name().to_string_lossy());
                    std::fs::copy(entry.path(), into.join(name)).is_ok()
                })
            })
        })
    }

    fn expect(&self, command: &str, server: Server) {
        let t0 = Instant::now();
        let output = self.run(command, &[server]);
        assert!(
            output.status.success(),
            "{SCRIPT} {command} {} failed:\n{}",
            server.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "private {}: {command} took {:.1} s",
                server.name(),
                t0.elapsed().as_secs_f64()
            );
        }
    }

    fn run(&self, command: &str, servers: &[Server]) -> Output {
        Command::new(SCRIPT)
            .arg(command)
            .args(servers.iter().map(|s| s.name()))
            .env("SLUICE_SERVERS_RUN", self.dir.path())
            .envs(self.ports.iter().map(|(k, v)| (*k, v.to_string())))
            .output()
            .unwrap_or_else(|e| panic!("running {SCRIPT} {command}: {e}"))
    }
}

impl Drop for PrivateServers {
    fn drop(&mut self) {
        let _ = self.run("stop", &[Server::Kafka, Server::Cassandra]);
    }
}
