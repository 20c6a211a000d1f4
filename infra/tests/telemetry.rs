//! The operations endpoint, over real HTTP.

use std::time::Duration;

use sluice_infra::telemetry::Telemetry;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn serves_metrics_health_and_readiness() {
    let telemetry = Telemetry::new("test").unwrap();
    let counter = prometheus::IntCounter::new("sluice_test_things_total", "Things.").unwrap();
    telemetry
        .registry()
        .register(Box::new(counter.clone()))
        .unwrap();
    counter.inc_by(3);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = telemetry
        .serve("127.0.0.1:0".parse().unwrap(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();

    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/readyz").await, (503, "not ready\n".to_owned()));
    telemetry.set_ready(true);
    assert_eq!(get(addr, "/readyz").await, (200, "ready\n".to_owned()));
    let (status, metrics) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("sluice_test_things_total 3"), "{metrics}");
    assert!(
        metrics.contains("sluice_build_info{service=\"test\""),
        "{metrics}"
    );

    stop.send(()).unwrap();
    server.await.unwrap();
}
