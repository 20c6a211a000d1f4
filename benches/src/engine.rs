//! A real `sluice engine` process for the benchmark: its flow submitted with
//! `sluice flow submit`, its own topics, consumer group and CQL keyspace, its
//! `/metrics` read over HTTP and its CPU time from `/proc`.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use sluice_infra::cql::{Cql, CqlConfig};

/// The benchmark flow: every received message is answered with one message whose
/// text is the event id, which is how the tracker matches actions to events.
pub const FLOW: &str = r#"{
  "id": "bench_echo",
  "name": "Benchmark echo",
  "version": 1,
  "kind": "event",
  "description": "Answers every received message with one message naming the event (the load generator matches actions to events by it).",
  "triggers": [ { "event": "message.received", "reentry": "always" } ],
  "nodes": [ { "id": "answer", "type": "send_message", "text": "{{ event.id }}" } ]
}
"#;

/// Where one engine run reads, writes and keeps state.
#[derive(Debug, Clone)]
pub struct EngineSetup {
    /// The `sluice` binary (a release build).
    pub binary: PathBuf,
    /// `kafka://…` URL of the bus.
    pub bus: String,
    /// `cql://…/keyspace?replication_factor=1` URL of the store.
    pub store: String,
    /// The tenant of the flow and the events.
    pub tenant: String,
    /// Consumer group.
    pub group: String,
    /// Events topic.
    pub events_topic: String,
    /// Actions topic.
    pub actions_topic: String,
    /// Flows topic.
    pub flows_topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Where the engine serves `/metrics` and `/readyz`.
    pub metrics_addr: SocketAddr,
    /// The engine's `--log` filter.
    pub log: String,
}

/// The running engine process.
#[derive(Debug)]
pub struct EngineProcess {
    child: Child,
    metrics_addr: SocketAddr,
}

impl EngineSetup {
    /// Writes the benchmark flow to `dir` and submits it (creating the keyspace).
    pub fn submit_flow(&self, dir: &Path) -> anyhow::Result<()> {
        let file = dir.join("bench_echo.json");
        std::fs::write(&file, FLOW).with_context(|| format!("writing {}", file.display()))?;
        let output = Command::new(&self.binary)
            .args(["--log", &self.log, "flow", "submit"])
            .arg(&file)
            .args([
                "--tenant",
                &self.tenant,
                "--bus",
                &self.bus,
                "--store",
                &self.store,
            ])
            .args(["--flows-topic", &self.flows_topic])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} flow submit", self.binary.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "sluice flow submit failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Starts `sluice engine`; its logs go to `log_file`.
    pub fn spawn(&self, log_file: &Path) -> anyhow::Result<EngineProcess> {
        let log = std::fs::File::create(log_file)
            .with_context(|| format!("creating {}", log_file.display()))?;
        let child = Command::new(&self.binary)
            .args(["--log", &self.log, "engine"])
            .args(["--bus", &self.bus, "--store", &self.store])
            .args(["--group", &self.group])
            .args(["--events-topic", &self.events_topic])
            .args(["--actions-topic", &self.actions_topic])
            .args(["--flows-topic", &self.flows_topic])
            .args(["--dlq-topic", &self.dlq_topic])
            .args(["--metrics-addr", &self.metrics_addr.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} engine", self.binary.display()))?;
        Ok(EngineProcess {
            child,
            metrics_addr: self.metrics_addr,
        })
    }

    /// Drops the run's keyspace.
    pub async fn drop_keyspace(&self) -> anyhow::Result<()> {
        let config = CqlConfig::from_url(&self.store)?;
        let cql = Cql::connect(&config).await?;
        cql.session()
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", config.keyspace), ())
            .await
            .with_context(|| format!("dropping keyspace {}", config.keyspace))?;
        Ok(())
    }
}

impl EngineProcess {
    /// Waits until `/readyz` answers 200 (the flow catalog is loaded).
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("sluice engine exited before it was ready: {status}");
            }
            if http_get(self.metrics_addr, "/readyz").is_ok_and(|(code, _)| code == 200) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "sluice engine was not ready within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails if the process has exited.
    pub fn check(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => anyhow::bail!("sluice engine exited: {status}"),
            None => Ok(()),
        }
    }

    /// The engine's `/metrics` text.
    pub fn metrics(&self) -> anyhow::Result<String> {
        let (code, body) = http_get(self.metrics_addr, "/metrics")?;
        anyhow::ensure!(code == 200, "/metrics answered {code}");
        Ok(body)
    }

    /// CPU seconds (user + system) the process used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.child.id())
    }

    /// Stops it with SIGTERM (it finishes, commits and leaves the group) and waits.
    pub fn stop(mut self, timeout: Duration) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill()?;
        self.child.wait()?;
        anyhow::bail!("sluice engine did not stop within {timeout:?} of SIGTERM; killed")
    }
}

/// CPU seconds (user + system) process `pid` used, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("parsing /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A plain HTTP/1.0 GET; returns the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP status line")?;
    Ok((code, body.to_owned()))
}

/// Sum and count of histogram `name` (its `_sum` and `_count` samples) whose labels
/// contain `label` (e.g. `operation="load"`; empty for any).
pub fn histogram_totals(metrics: &str, name: &str, label: &str) -> (f64, f64) {
    let value = |suffix: &str| -> f64 {
        let sample = format!("{name}{suffix}");
        metrics
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let bare = series.split('{').next()?;
                (bare == sample && series.contains(label)).then(|| value.parse::<f64>().ok())?
            })
            .sum()
    };
    (value("_sum"), value("_count"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_totals_pick_the_series() {
        let metrics = "# HELP x\n\
            sluice_engine_store_seconds_sum{operation=\"load\"} 1.5\n\
            sluice_engine_store_seconds_count{operation=\"load\"} 3\n\
            sluice_engine_store_seconds_sum{operation=\"commit\"} 2.5\n\
            sluice_engine_store_seconds_count{operation=\"commit\"} 5\n\
            sluice_engine_processing_seconds_sum 9\n\
            sluice_engine_processing_seconds_count 4\n";
        let totals = histogram_totals(metrics, "sluice_engine_store_seconds", "operation=\"load\"");
        assert_eq!(totals, (1.5, 3.0));
        assert_eq!(
            histogram_totals(metrics, "sluice_engine_processing_seconds", ""),
            (9.0, 4.0)
        );
        assert_eq!(
            histogram_totals(metrics, "sluice_engine_store_seconds", ""),
            (4.0, 8.0)
        );
    }

    #[test]
    fn the_flow_compiles_without_a_diagnostic() {
        use sluice_engine::flow::{SourceFormat, compile_str};
        let compilation = compile_str(FLOW, SourceFormat::Json);
        assert!(
            compilation.diagnostics.is_empty(),
            "{:?}",
            compilation.diagnostics
        );
        assert!(compilation.flow.is_some());
    }

    #[test]
    fn cpu_time_of_this_process_is_readable() {
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }
}
