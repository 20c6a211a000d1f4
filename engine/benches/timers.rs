//! Memory of the timer service's in-memory tier ([`TimerWheel`]) holding 10M pending
//! timers for 1M contacts (10 each) — the worst case, where every pending timer falls
//! within the horizon — measured as resident memory from `/proc/self/status`, plus
//! insert and fire throughput.
//!
//! ```sh
//! cargo bench -p sluice-engine --bench timers
//! SLUICE_BENCH_TIMERS=1000000 cargo bench -p sluice-engine --bench timers   # smaller
//! SLUICE_BENCH_TIMER_STORE=file cargo bench -p sluice-engine --bench timers  # two tiers
//! ```
//!
//! With `SLUICE_BENCH_TIMER_STORE=file` it measures the normal two-tier case instead:
//! the timers written to the `redb` timer store (`sluice dev --data`) and one partition
//! loading its horizon from it.

#![allow(clippy::print_stdout)]

use std::{sync::Arc, time::Instant};

use sluice_engine::{
    eval::FlowSet,
    runtime::{Partition, Processor, TimerConfig, TimerWheel},
};
use sluice_infra::{
    bus::MemoryBus,
    store::{ContactKey, FileStore, TimerChanges, TimerEntry, TimerStore},
};

const START_MS: i64 = 1_767_225_600_000;
const MONTH_MS: i64 = 30 * 86_400_000;

/// The `i`-th of `timers` pending timers for `contacts` contacts.
fn timer(i: usize, contacts: usize) -> TimerEntry {
    TimerEntry {
        due_at: START_MS + (i as i64).wrapping_mul(7_919) % MONTH_MS,
        contact: ContactKey::new("acme", format!("contact-{:08}", i % contacts)),
        run: (i / contacts) as u64 + 1,
        token: 1,
    }
}

/// Two tiers: every timer in the `redb` store, one partition's horizon in memory.
fn store_mode(timers: usize, contacts: usize) {
    let dir = std::env::temp_dir().join(format!("sluice-bench-timers-{}", std::process::id()));
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let before = rss_kib();
    let store = Arc::new(FileStore::open(dir.join("sluice.redb")).expect("open the store"));
    let started = Instant::now();
    rt.block_on(async {
        for from in (0..timers).step_by(200_000) {
            let set = (from..(from + 200_000).min(timers))
                .map(|i| timer(i, contacts))
                .collect();
            let changes = TimerChanges {
                set,
                cancel: Vec::new(),
            };
            store.commit(&[], &changes).await.expect("commit");
        }
    });
    let insert = started.elapsed();
    let written = rss_kib();
    let processor = Processor::new(Arc::new(FlowSet::new()), store, Arc::new(MemoryBus::new(1)));
    let mut partition = Partition::new(0, 1, processor, TimerConfig::default());
    let started = Instant::now();
    rt.block_on(async { while !partition.refill(START_MS).await.expect("load") {} });
    let load = started.elapsed();
    let loaded = rss_kib();
    let size = std::fs::metadata(dir.join("sluice.redb")).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(&dir);
    println!("timer store (redb) + wheel: {timers} pending timers for {contacts} contacts");
    println!(
        "  written in {:.1} s ({:.2} M timers/s), file {:.0} MiB; resident after writing: {:.1} MiB above baseline",
        insert.as_secs_f64(),
        timers as f64 / insert.as_secs_f64() / 1e6,
        size as f64 / 1_048_576.0,
        written.saturating_sub(before) as f64 / 1024.0
    );
    println!(
        "  one partition loads its 60 s horizon in {:.1} ms: {} timers in memory; resident {:.1} MiB above baseline",
        load.as_secs_f64() * 1e3,
        partition.in_memory(),
        loaded.saturating_sub(before) as f64 / 1024.0
    );
    println!(
        "  reproduce: SLUICE_BENCH_TIMER_STORE=file cargo bench -p sluice-engine --bench timers"
    );
}

/// Resident set size in KiB (`VmRSS`), 0 where `/proc` is missing.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let timers: usize = std::env::var("SLUICE_BENCH_TIMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let contacts = (timers / 10).max(1);
    if std::env::var("SLUICE_BENCH_TIMER_STORE").as_deref() == Ok("file") {
        store_mode(timers, contacts);
        return;
    }

    let before = rss_kib();
    let mut wheel = TimerWheel::default();
    let started = Instant::now();
    for i in 0..timers {
        wheel.insert(&timer(i, contacts));
    }
    let insert = started.elapsed();
    let after = rss_kib();
    let resident = after.saturating_sub(before);

    let started = Instant::now();
    let mut fired = 0usize;
    let mut last = i64::MIN;
    while let Some(timer) = wheel.pop_due(i64::MAX) {
        assert!(timer.due_at >= last, "timers fire in due order");
        last = timer.due_at;
        fired += 1;
    }
    let fire = started.elapsed();
    assert_eq!(fired, timers);

    println!("timer wheel: {timers} pending timers for {contacts} contacts");
    println!(
        "  resident: {:.1} MiB above the baseline ({:.1} MiB total), {:.0} bytes per timer",
        resident as f64 / 1024.0,
        after as f64 / 1024.0,
        resident as f64 * 1024.0 / timers as f64
    );
    println!(
        "  insert: {:.2} s ({:.2} M timers/s); fire all in order: {:.2} s ({:.2} M timers/s)",
        insert.as_secs_f64(),
        timers as f64 / insert.as_secs_f64() / 1e6,
        fire.as_secs_f64(),
        timers as f64 / fire.as_secs_f64() / 1e6
    );
    println!("  reproduce: cargo bench -p sluice-engine --bench timers");
}
