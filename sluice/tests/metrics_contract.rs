//! The contract between the code and deploy/: every `sluice_*` metric that an alert
//! rule in the Kustomize base (deploy/kubernetes/base/kustomization.yaml) or the
//! Grafana dashboard (deploy/grafana/sluice.json) refers to is exported by a running
//! `sluice ingest`, `sluice engine` or `sluice actions`, scraped from its `/metrics`
//! with the real Kafka and CQL servers.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sluice_infra::testing;

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address")
}

/// `GET path` over plain HTTP/1.0; `None` while the server is not up.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// Scrapes `/metrics` once `/readyz` answers 200 (the engine registers its metrics
/// once its flows are loaded), waiting for the process to start.
fn scrape(name: &str, service: &mut Service, addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = service.0.try_wait().expect("polling the service") {
            panic!("sluice {name} exited early: {status}");
        }
        if let Some((200, _)) = get(addr, "/readyz") {
            let (status, body) = get(addr, "/metrics").expect("scraping /metrics");
            assert_eq!(status, 200, "sluice {name} /metrics answered {status}");
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "sluice {name} did not turn ready on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Names of the exported samples (`x_bucket`, `x_sum`, `x_count` for histograms) and
/// of their metric families (`# TYPE x histogram`), so either spelling matches.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            names.extend(family.split_whitespace().next().map(str::to_owned));
        } else if !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            if end > 0 {
                names.insert(line[..end].to_owned());
            }
        }
    }
    names
}

/// Every `sluice_[a-z0-9_]+` token in `text`, outside `#` comment lines.
fn referenced_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("sluice_") {
            let preceded_by_word = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if !preceded_by_word {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

/// The rule files the base's kustomization includes: listed resources holding a
/// `PrometheusRule`.
fn included_rule_files(base: &Path) -> Vec<PathBuf> {
    let kustomization =
        std::fs::read_to_string(base.join("kustomization.yaml")).expect("reading kustomization");
    kustomization
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .map(|file| base.join(file.trim()))
        .filter(|path| {
            std::fs::read_to_string(path).is_ok_and(|text| text.contains("kind: PrometheusRule"))
        })
        .collect()
}

fn start(args: &[&str], metrics: SocketAddr, secrets: &[&str]) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--metrics-addr", &metrics.to_string()])
        .envs(secrets.iter().map(|name| (name, "test-secret")))
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting sluice");
    Service(child)
}

#[test]
fn unit_helpers_read_names() {
    let exposition = "# HELP a_seconds x\n# TYPE sluice_a_seconds histogram\n\
        sluice_a_seconds_bucket{le=\"1\"} 0\nsluice_b_total 3\n";
    let names = exported_names(exposition);
    assert!(names.contains("sluice_a_seconds") && names.contains("sluice_a_seconds_bucket"));
    assert!(names.contains("sluice_b_total"));
    let refs = referenced_names(
        "# sluice_in_comment\nexpr: rate(sluice_x_total{a=\"sluice-y\"}[5m]) / my_sluice_z\n",
    );
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["sluice_x_total"]);
}

#[test]
fn every_metric_in_alerts_and_dashboard_is_exported() {
    let (Some(kafka), Some(cql)) = (testing::kafka(), testing::cql()) else {
        return;
    };
    let root = repository();
    let base = root.join("deploy/kubernetes/base");
    let mut referenced: Vec<(String, PathBuf)> = Vec::new();
    let rule_files = included_rule_files(&base);
    assert!(!rule_files.is_empty(), "no PrometheusRule in {base:?}");
    let dashboard = root.join("deploy/grafana/sluice.json");
    for file in rule_files.iter().chain([&dashboard]) {
        let text = std::fs::read_to_string(file).expect("reading a rule file or the dashboard");
        referenced.extend(
            referenced_names(&text)
                .into_iter()
                .map(|n| (n, file.clone())),
        );
    }
    assert!(
        referenced.len() > 5,
        "too few metric references found: {referenced:?}"
    );

    let unique = testing::unique_name("contract").to_lowercase();
    // The production overlay's tenants file, so that it is proven to load too.
    let tenants = root.join("deploy/kubernetes/overlays/production/ingest-tenants.yaml");
    let secrets = [
        "ACME_TG_SECRET",
        "ACME_META_APP_SECRET",
        "ACME_META_VERIFY",
        "ACME_STRIPE_SECRET",
        "ACME_EVENTS_SECRET",
    ];
    let bus = format!("kafka://{kafka}");
    let keyspace: String = format!("ks_{unique}").chars().take(48).collect();
    let store = format!("cql://{cql}/{keyspace}?replication_factor=1");

    let ingest_metrics = free_port();
    let listen = free_port().to_string();
    let mut ingest = start(
        &[
            "ingest",
            "--bus",
            &bus,
            "--config",
            tenants.to_str().expect("a UTF-8 path"),
            "--listen",
            &listen,
        ],
        ingest_metrics,
        &secrets,
    );
    let actions_metrics = free_port();
    let group = format!("{unique}_group");
    let actions_topic = format!("{unique}_actions");
    let events_topic = format!("{unique}_events");
    let dlq_topic = format!("{unique}_dlq");
    let mut actions = start(
        &[
            "actions",
            "--bus",
            &bus,
            "--store",
            &store,
            "--group",
            &group,
            "--actions-topic",
            &actions_topic,
            "--events-topic",
            &events_topic,
            "--dlq-topic",
            &dlq_topic,
            "--create-topics",
            "1",
        ],
        actions_metrics,
        &[],
    );

    let engine_metrics = free_port();
    let mut engine = start(
        &[
            "engine",
            "--bus",
            &bus,
            "--store",
            &store,
            "--group",
            &format!("{unique}_engine"),
            "--events-topic",
            &events_topic,
            "--actions-topic",
            &actions_topic,
            "--flows-topic",
            &format!("{unique}_flows"),
            "--dlq-topic",
            &dlq_topic,
            "--create-topics",
            "--partitions-hint",
            "2",
        ],
        engine_metrics,
        &[],
    );

    let mut exported = exported_names(&scrape("ingest", &mut ingest, ingest_metrics));
    exported.extend(exported_names(&scrape(
        "engine",
        &mut engine,
        engine_metrics,
    )));
    exported.extend(exported_names(&scrape(
        "actions",
        &mut actions,
        actions_metrics,
    )));
    let missing: Vec<String> = referenced
        .iter()
        .filter(|(name, _)| !exported.contains(name))
        .map(|(name, file)| format!("{name} (in {})", file.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics referenced by deploy/ but exported by none of sluice ingest, engine and actions:\n  {}\nexported: {exported:?}",
        missing.join("\n  ")
    );
}
