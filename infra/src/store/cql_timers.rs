//! [`TimerStore`] on CQL: the contacts' states in [`CqlStore`], their timers in
//! rows bucketed by `(shard, bucket)` that expire whole by TTL.
//!
//! - **Layout.** `timers` is partitioned by `(shard, bucket)`: `shard` is the
//!   contact's Kafka partition times [`SUB_SHARDS`] plus a sub-shard from the
//!   contact's hash, so many timers on one instant spread over several CQL
//!   partitions, and a partition worker reads only its own shards; `bucket` is the
//!   due time in [`BUCKET_MS`] windows. `timer_buckets` lists the buckets a shard
//!   has written, so reading a window never probes empty ones.
//! - **No deletes.** A queue that deletes fired rows makes every later read scan
//!   tombstones. Here nothing is deleted: a cancelled, moved or fired timer's row
//!   is overwritten with `cancelled = true`, and its id's entry in `timer_ids`
//!   with a sentinel due time. Every row carries a TTL of its due time plus
//!   [`GRACE`], so whole buckets expire together and time-window compaction drops
//!   them as files. The marker (rather than relying only on the state's wait
//!   token) keeps the wheel from reloading timers that already fired; the engine's
//!   stale-timer guard is the second line of defence.
//! - **Commit without LWT.** Prepared statements, pipelined. A commit first reads
//!   the current due times of the ids it touches, then writes the new timers (a
//!   bucket's index entry once per commit, however many of its timers it sets),
//!   then — once those are durable — the states, and only after those are durable
//!   marks the cancelled ones. A failure part way leaves at worst an extra timer
//!   the state no longer waits for (ignored when it fires, and the input is
//!   replayed anyway because its offset was not committed) — never a state whose
//!   timer is missing: a replayed input that the state records as applied is a
//!   duplicate and sets no timer again.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use futures::future::try_join_all;
use scylla::statement::prepared::PreparedStatement;

use super::{
    ContactKey, CqlStore, StateStore, StoredState,
    timers::{TimerChanges, TimerEntry, TimerId, TimerStore},
};
use crate::{
    Result,
    bus::{murmur2, partition_for},
    cql::{Cql, cql_error, execution_error},
};

/// Sub-shards per Kafka partition.
pub const SUB_SHARDS: i32 = 8;
/// Width of a time bucket, in milliseconds.
pub const BUCKET_MS: i64 = 60_000;
/// How long a timer row outlives its due time, in seconds (a timer not fired
/// within this much of being due — the engine down for a week — is dropped).
pub const GRACE: i64 = 7 * 24 * 3600;
/// Cassandra's largest TTL (20 years).
const MAX_TTL: i64 = 630_720_000;
/// `timer_ids.due_at` of a timer that no longer exists.
const GONE: i64 = i64::MIN;

/// A [`TimerStore`] on a CQL cluster.
pub struct CqlTimerStore {
    states: CqlStore,
    cql: Cql,
    partitions: i32,
    insert_timer: PreparedStatement,
    mark_cancelled: PreparedStatement,
    insert_bucket: PreparedStatement,
    set_id: PreparedStatement,
    get_id: PreparedStatement,
    buckets: PreparedStatement,
    page: PreparedStatement,
}

impl std::fmt::Debug for CqlTimerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlTimerStore")
            .field("keyspace", &self.cql.keyspace())
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

/// Maps `u64` onto `i64` keeping the order (CQL compares bigints signed).
fn ordered_run(run: u64) -> i64 {
    i64::from_ne_bytes((run ^ (1 << 63)).to_ne_bytes())
}

fn run_from(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes()) ^ (1 << 63)
}

/// Maps `u32` onto `i32` keeping the order.
fn ordered_token(token: u32) -> i32 {
    i32::from_ne_bytes((token ^ (1 << 31)).to_ne_bytes())
}

fn token_from(value: i32) -> u32 {
    u32::from_ne_bytes(value.to_ne_bytes()) ^ (1 << 31)
}

fn bucket(due_at: i64) -> i64 {
    due_at.div_euclid(BUCKET_MS)
}

fn ttl(due_at: i64) -> i32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let seconds = (due_at.saturating_sub(now) / 1000).max(0);
    i32::try_from(seconds.saturating_add(GRACE).min(MAX_TTL)).unwrap_or(i32::MAX)
}

type Row = (i64, String, String, i64, i32, Option<bool>);

impl CqlTimerStore {
    /// Prepares the statements on a connected, migrated session. `partitions` is
    /// the partition count of the events topic: timers are sharded by it.
    pub async fn new(cql: Cql, partitions: i32) -> Result<Self> {
        let keyspace = cql.keyspace().to_owned();
        let prepare = |text: String| {
            let cql = cql.clone();
            async move {
                cql.session()
                    .prepare(text.clone())
                    .await
                    .map_err(|e| cql_error(format!("preparing {text}"), e, true))
            }
        };
        Ok(CqlTimerStore {
            states: CqlStore::new(cql.clone()).await?,
            partitions: partitions.max(1),
            insert_timer: prepare(format!(
                "INSERT INTO {keyspace}.timers (shard, bucket, due_at, tenant, contact_id, run, wait_token, cancelled) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, false) USING TTL ?"
            ))
            .await?,
            mark_cancelled: prepare(format!(
                "INSERT INTO {keyspace}.timers (shard, bucket, due_at, tenant, contact_id, run, wait_token, cancelled) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, true) USING TTL ?"
            ))
            .await?,
            insert_bucket: prepare(format!(
                "INSERT INTO {keyspace}.timer_buckets (shard, bucket) VALUES (?, ?) USING TTL ?"
            ))
            .await?,
            set_id: prepare(format!(
                "INSERT INTO {keyspace}.timer_ids (tenant, contact_id, run, wait_token, due_at) \
                 VALUES (?, ?, ?, ?, ?) USING TTL ?"
            ))
            .await?,
            get_id: prepare(format!(
                "SELECT due_at FROM {keyspace}.timer_ids \
                 WHERE tenant = ? AND contact_id = ? AND run = ? AND wait_token = ?"
            ))
            .await?,
            buckets: prepare(format!(
                "SELECT bucket FROM {keyspace}.timer_buckets WHERE shard = ? AND bucket >= ? AND bucket <= ?"
            ))
            .await?,
            page: prepare(format!(
                "SELECT due_at, tenant, contact_id, run, wait_token, cancelled FROM {keyspace}.timers \
                 WHERE shard = ? AND bucket = ? AND (due_at, tenant, contact_id, run, wait_token) > (?, ?, ?, ?, ?) \
                 LIMIT ?"
            ))
            .await?,
            cql,
        })
    }

    fn shard(&self, contact: &ContactKey) -> i32 {
        let key = contact.to_string();
        let partition = partition_for(key.as_bytes(), self.partitions);
        let sub = (murmur2(key.as_bytes()) >> 8).rem_euclid(SUB_SHARDS);
        partition * SUB_SHARDS + sub
    }

    async fn current_due(&self, id: &TimerId) -> Result<Option<i64>> {
        let operation = || {
            format!(
                "reading {}.timer_ids for {}",
                self.cql.keyspace(),
                id.contact
            )
        };
        let rows = self
            .cql
            .session()
            .execute_unpaged(
                &self.get_id,
                (
                    &id.contact.tenant,
                    &id.contact.contact_id,
                    ordered_run(id.run),
                    ordered_token(id.token),
                ),
            )
            .await
            .map_err(execution_error(operation()))?
            .into_rows_result()
            .map_err(|e| cql_error(operation(), e, false))?;
        let row = rows
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(|e| cql_error(operation(), e, false))?;
        Ok(row.and_then(|(due,)| due).filter(|&due| due != GONE))
    }

    /// Writes a timer's row and its id's entry (`cancelled`: marks both as gone).
    /// A new timer's bucket goes into `timer_buckets` separately ([`Self::index`]).
    async fn write_timer(&self, timer: &TimerEntry, cancelled: bool) -> Result<()> {
        let shard = self.shard(&timer.contact);
        let ttl = ttl(timer.due_at);
        let statement = if cancelled {
            &self.mark_cancelled
        } else {
            &self.insert_timer
        };
        let operation = || {
            format!(
                "writing {}.timers for {}",
                self.cql.keyspace(),
                timer.contact
            )
        };
        let session = self.cql.session();
        let row = session.execute_unpaged(
            statement,
            (
                shard,
                bucket(timer.due_at),
                timer.due_at,
                &timer.contact.tenant,
                &timer.contact.contact_id,
                ordered_run(timer.run),
                ordered_token(timer.token),
                ttl,
            ),
        );
        let id_due = if cancelled { GONE } else { timer.due_at };
        let id = session.execute_unpaged(
            &self.set_id,
            (
                &timer.contact.tenant,
                &timer.contact.contact_id,
                ordered_run(timer.run),
                ordered_token(timer.token),
                id_due,
                ttl,
            ),
        );
        let (row, id) = futures::join!(row, id);
        row.map_err(execution_error(operation()))?;
        id.map_err(execution_error(operation()))?;
        Ok(())
    }

    /// Lists the buckets of new timers in `timer_buckets`: each `(shard, bucket)`
    /// once, with the longest TTL of its timers.
    async fn index(&self, timers: &[TimerEntry]) -> Result<()> {
        let mut buckets: HashMap<(i32, i64), i32> = HashMap::new();
        for timer in timers {
            let ttl = ttl(timer.due_at);
            let entry = buckets
                .entry((self.shard(&timer.contact), bucket(timer.due_at)))
                .or_insert(ttl);
            *entry = (*entry).max(ttl);
        }
        let operation = || format!("writing {}.timer_buckets", self.cql.keyspace());
        try_join_all(buckets.into_iter().map(|((shard, bucket), ttl)| {
            self.cql
                .session()
                .execute_unpaged(&self.insert_bucket, (shard, bucket, ttl))
        }))
        .await
        .map_err(execution_error(operation()))?;
        Ok(())
    }

    /// Up to `limit` pending timers of one shard, in order, after `after` and before `before`.
    async fn due_in_shard(
        &self,
        shard: i32,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        let keyspace = self.cql.keyspace();
        let low = after.map_or(i64::MIN, |a| bucket(a.due_at));
        let high = bucket(before.saturating_sub(1));
        let operation = || format!("reading {keyspace}.timer_buckets of shard {shard}");
        let rows = self
            .cql
            .session()
            .execute_unpaged(&self.buckets, (shard, low, high))
            .await
            .map_err(execution_error(operation()))?
            .into_rows_result()
            .map_err(|e| cql_error(operation(), e, false))?;
        let buckets = rows
            .rows::<(i64,)>()
            .map_err(|e| cql_error(operation(), e, false))?
            .map(|row| row.map(|(b,)| b))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(|e| cql_error(operation(), e, false))?;
        let fetch = i32::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000);
        let mut found = Vec::new();
        let mut cursor: (i64, String, String, i64, i32) = match after {
            Some(a) => (
                a.due_at,
                a.contact.tenant.clone(),
                a.contact.contact_id.clone(),
                ordered_run(a.run),
                ordered_token(a.token),
            ),
            None => (i64::MIN, String::new(), String::new(), i64::MIN, i32::MIN),
        };
        let operation = || format!("reading {keyspace}.timers of shard {shard}");
        for bucket in buckets {
            loop {
                let rows = self
                    .cql
                    .session()
                    .execute_unpaged(
                        &self.page,
                        (
                            shard, bucket, cursor.0, &cursor.1, &cursor.2, cursor.3, cursor.4,
                            fetch,
                        ),
                    )
                    .await
                    .map_err(execution_error(operation()))?
                    .into_rows_result()
                    .map_err(|e| cql_error(operation(), e, false))?;
                let rows: Vec<Row> = rows
                    .rows::<Row>()
                    .map_err(|e| cql_error(operation(), e, false))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| cql_error(operation(), e, false))?;
                let complete = rows.len() < fetch.unsigned_abs() as usize;
                for (due_at, tenant, contact_id, run, token, cancelled) in rows {
                    if due_at >= before {
                        return Ok(found);
                    }
                    cursor = (due_at, tenant, contact_id, run, token);
                    if cancelled != Some(true) {
                        found.push(TimerEntry {
                            due_at,
                            contact: ContactKey::new(cursor.1.clone(), cursor.2.clone()),
                            run: run_from(run),
                            token: token_from(token),
                        });
                        if found.len() >= limit {
                            return Ok(found);
                        }
                    }
                }
                if complete {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn due_in_shards(
        &self,
        shards: std::ops::Range<i32>,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        if limit == 0 || after.is_some_and(|a| a.due_at >= before) {
            return Ok(Vec::new());
        }
        let pages =
            try_join_all(shards.map(|shard| self.due_in_shard(shard, after, before, limit)))
                .await?;
        let mut all: Vec<TimerEntry> = pages.into_iter().flatten().collect();
        all.sort_unstable();
        all.truncate(limit);
        Ok(all)
    }
}

#[async_trait]
impl StateStore for CqlTimerStore {
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>> {
        self.states.load(key).await
    }

    async fn load_many(&self, keys: &[ContactKey]) -> Result<Vec<Option<StoredState>>> {
        self.states.load_many(keys).await
    }

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        self.states.save(batch).await
    }
}

#[async_trait]
impl TimerStore for CqlTimerStore {
    async fn commit(
        &self,
        states: &[(ContactKey, StoredState)],
        timers: &TimerChanges,
    ) -> Result<()> {
        // Where each touched id is now.
        let mut ids: Vec<TimerId> = timers.cancel.clone();
        ids.extend(timers.set.iter().map(TimerEntry::id));
        ids.sort_unstable();
        ids.dedup();
        let current = try_join_all(ids.iter().map(|id| self.current_due(id))).await?;
        // The new timers, then the states that wait for them.
        let (sets, indexed) = futures::join!(
            try_join_all(timers.set.iter().map(|t| self.write_timer(t, false))),
            self.index(&timers.set)
        );
        sets?;
        indexed?;
        self.states.save(states).await?;
        // Then retire the old rows: cancelled ids, and the old due time of moved ones.
        let mut retire = Vec::new();
        for (id, due) in ids.iter().zip(current) {
            let Some(due_at) = due else { continue };
            let new = timers.set.iter().find(|t| t.id() == *id);
            if new.is_some_and(|t| t.due_at == due_at) {
                continue;
            }
            let old = TimerEntry {
                due_at,
                contact: id.contact.clone(),
                run: id.run,
                token: id.token,
            };
            let still_set = new.is_some();
            retire.push((old, still_set));
        }
        try_join_all(retire.iter().map(|(old, still_set)| async move {
            if *still_set {
                // Moved: the id now points at the new row; only mark the old row.
                self.mark_row(old).await
            } else {
                self.write_timer(old, true).await
            }
        }))
        .await?;
        Ok(())
    }

    async fn due(
        &self,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        self.due_in_shards(0..self.partitions * SUB_SHARDS, after, before, limit)
            .await
    }

    async fn due_in(
        &self,
        partition: i32,
        partitions: i32,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        if partitions != self.partitions || !(0..partitions).contains(&partition) {
            return self.due(after, before, limit).await;
        }
        let first = partition * SUB_SHARDS;
        self.due_in_shards(first..first + SUB_SHARDS, after, before, limit)
            .await
    }

    async fn contains(&self, timer: &TimerEntry) -> Result<bool> {
        Ok(self.current_due(&timer.id()).await? == Some(timer.due_at))
    }
}

impl CqlTimerStore {
    async fn mark_row(&self, old: &TimerEntry) -> Result<()> {
        self.cql
            .session()
            .execute_unpaged(
                &self.mark_cancelled,
                (
                    self.shard(&old.contact),
                    bucket(old.due_at),
                    old.due_at,
                    &old.contact.tenant,
                    &old.contact.contact_id,
                    ordered_run(old.run),
                    ordered_token(old.token),
                    ttl(old.due_at),
                ),
            )
            .await
            .map_err(execution_error(format!(
                "marking a moved timer of {} in {}.timers",
                old.contact,
                self.cql.keyspace()
            )))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_preserving_maps_round_trip() {
        for run in [0, 1, 7, u64::MAX / 2, u64::MAX / 2 + 1, u64::MAX] {
            assert_eq!(run_from(ordered_run(run)), run);
        }
        assert!(ordered_run(u64::MAX / 2) < ordered_run(u64::MAX / 2 + 1));
        assert!(ordered_token(0) < ordered_token(u32::MAX));
        for token in [0, 1, u32::MAX] {
            assert_eq!(token_from(ordered_token(token)), token);
        }
        assert_eq!(bucket(-5), -1);
        assert_eq!(bucket(59_999), 0);
    }
}
