//! Shared by the process tests: `sluice` processes started with their environment and
//! stopped with SIGTERM or SIGKILL, private Kafka and Cassandra instances that a test
//! may stop and restart ([`servers`]), a fake provider that records what the action
//! workers execute ([`provider`]), and waiting helpers.

#![allow(dead_code, unreachable_pub)]

pub mod provider;
pub mod servers;

use std::{
    fs::File,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sluice_infra::bus::{Delivered, Subscription};

/// A `sluice` command with no environment of ours set yet.
pub fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

/// A running `sluice` process, its stderr in a log file. Dropping it kills it (SIGKILL).
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdout discarded and stderr appended to `DIR/NAME.log`.
    pub fn spawn(name: &str, mut command: Command, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let child = command
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Its name, as given to [`spawn`](Self::spawn).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its log, headed by its name.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("----- {} ({}):\n{tail}", self.name, self.log.display())
    }

    /// Panics, with its log, when it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("checking a process") {
            panic!(
                "{} exited unexpectedly with {status}\n{}",
                self.name,
                self.log_tail(60)
            );
        }
    }

    /// SIGKILL, and waits for it to be gone (its log stays readable).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (up to 60 s) for a clean exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a process") {
                assert!(
                    status.success(),
                    "{} exited with {status} on SIGTERM\n{}",
                    self.name,
                    self.log_tail(40)
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 60 s of SIGTERM\n{}",
                self.name,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, checking every 100 ms; panics with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads a topic until `done` says so or the time is up.
pub async fn read_until(
    subscription: &mut Box<dyn Subscription>,
    seen: &mut Vec<Delivered>,
    within: Duration,
    done: impl Fn(&[Delivered]) -> bool,
) {
    let deadline = Instant::now() + within;
    while !done(seen) && Instant::now() < deadline {
        match subscription.poll(1000, Duration::from_millis(300)).await {
            Ok(batch) => seen.extend(batch),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// A local port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address")
}

/// `GET path` over plain HTTP/1.0: status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).expect("connecting");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("writing");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reading");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// The value of an unlabelled counter or gauge in Prometheus text, 0 when absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
