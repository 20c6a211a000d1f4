//! The ceiling: a raw Kafka consume→produce loop on the same broker, shaped like
//! a batching engine without the engine. A consumer-group member polls a batch
//! from the input topic, produces every record (key, value and headers) to the
//! output topic with an idempotent `acks=all` producer — all of them enqueued
//! before any acknowledgement is awaited — waits for the batch's
//! acknowledgements, and only then stores the batch's offsets (committed in the
//! background). No state, no evaluation.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context as _;
use futures::future::join_all;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};

use crate::kafka::{future_producer, group_member};

/// Records polled and forwarded per batch at most.
const MAX_BATCH: usize = 2_000;

/// A running passthrough.
#[derive(Debug)]
pub struct Passthrough {
    stop: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Passthrough {
    /// Starts forwarding `input` to `output` as consumer group `group`.
    pub fn start(bootstrap: &str, group: &str, input: &str, output: &str) -> anyhow::Result<Self> {
        let consumer = group_member(bootstrap, group, input)?;
        let producer = future_producer(bootstrap)?;
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, forwarded, output) =
                (Arc::clone(&stop), Arc::clone(&forwarded), output.to_owned());
            std::thread::spawn(move || forward(&consumer, &producer, &output, &stop, &forwarded))
        };
        Ok(Passthrough {
            stop,
            forwarded,
            thread: Some(thread),
        })
    }

    /// Records forwarded and acknowledged so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Stops after the batch in hand; returns the loop's error, if it failed.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => anyhow::bail!("the passthrough thread panicked"),
            None => Ok(()),
        }
    }
}

fn forward(
    consumer: &BaseConsumer,
    producer: &FutureProducer,
    output: &str,
    stop: &AtomicBool,
    forwarded: &AtomicU64,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let mut deliveries = Vec::new();
        let mut next_offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut wait = Duration::from_millis(100);
        while deliveries.len() < MAX_BATCH {
            let message = match consumer.poll(wait) {
                None => break,
                Some(message) => message.context("consuming the passthrough's input")?,
            };
            wait = Duration::ZERO;
            let mut record = FutureRecord::to(output)
                .key(message.key().unwrap_or_default())
                .payload(message.payload().unwrap_or_default());
            if let Some(headers) = message.headers() {
                record = record.headers(headers.detach());
            }
            let delivery = loop {
                match producer.send_result(record) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((error, _)) => return Err(error).context(format!("producing to {output}")),
                }
            };
            deliveries.push(delivery);
            next_offsets.insert(
                (message.topic().to_owned(), message.partition()),
                message.offset() + 1,
            );
        }
        if deliveries.is_empty() {
            continue;
        }
        let count = deliveries.len() as u64;
        for report in futures::executor::block_on(join_all(deliveries)) {
            match report {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    return Err(error).context(format!("delivering to {output}"));
                }
                Err(_canceled) => {
                    anyhow::bail!("the producer shut down before delivering to {output}")
                }
            }
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in next_offsets {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        }
        consumer
            .store_offsets(&offsets)
            .context("storing the passthrough's offsets")?;
        forwarded.fetch_add(count, Ordering::Relaxed);
    }
    consumer.unsubscribe();
    Ok(())
}
