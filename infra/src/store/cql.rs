//! The CQL state store: ScyllaDB in production, any CQL cluster (Cassandra in
//! tests), with prepared statements, pipelined.
//!
//! [`load_many`](StateStore::load_many) issues one prepared lookup per contact,
//! all in flight together (up to [`IN_FLIGHT`]). [`save`](StateStore::save) groups
//! the writes by the replica that owns them (the driver's token map) and sends each
//! group as unlogged batches of up to [`BATCH_STATEMENTS`] writes and
//! [`BATCH_BYTES`] of state, all in flight together: one request per batch instead
//! of one per contact, each applied by a replica of every partition it writes. An
//! unlogged batch is not atomic, and needs not be: every write stands alone
//! (versioned, below), exactly as when sent one by one.
//!
//! Newest-version-wins without lightweight transactions: every write carries
//! `USING TIMESTAMP <version>`, so the cluster's last-write-wins keeps the state
//! with the highest version whatever order the writes arrive in.

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, future::try_join_all, stream};
use scylla::statement::{
    batch::{Batch, BatchType},
    prepared::PreparedStatement,
};

use super::{ContactKey, StateStore, StoredState};
use crate::{
    Result,
    cql::{Cql, cql_error, execution_error},
};

/// Lookups of one `load_many` in flight at once (the driver pipelines them over
/// its connections).
const IN_FLIGHT: usize = 1_024;
/// Most writes in one unlogged batch.
const BATCH_STATEMENTS: usize = 64;
/// Most state bytes in one unlogged batch (Cassandra refuses batches over 50 KiB
/// by default, and warns over `batch_size_warn_threshold`; ScyllaDB's limits are
/// higher).
const BATCH_BYTES: usize = 16 * 1024;

/// A [`StateStore`] on a CQL cluster.
pub struct CqlStore {
    cql: Cql,
    load: PreparedStatement,
    save: PreparedStatement,
}

impl std::fmt::Debug for CqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlStore")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

impl CqlStore {
    /// Prepares the store's statements on a connected, migrated session.
    pub async fn new(cql: Cql) -> Result<Self> {
        let keyspace = cql.keyspace();
        let load = cql
            .session()
            .prepare(format!(
                "SELECT version, state FROM {keyspace}.contact_state WHERE tenant = ? AND contact_id = ?"
            ))
            .await
            .map_err(|e| cql_error("preparing contact_state select", e, true))?;
        let save = cql
            .session()
            .prepare(format!(
                "INSERT INTO {keyspace}.contact_state (tenant, contact_id, version, state) \
                 VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await
            .map_err(|e| cql_error("preparing contact_state insert", e, true))?;
        Ok(CqlStore { cql, load, save })
    }
}

#[async_trait]
impl StateStore for CqlStore {
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>> {
        let operation = || format!("loading {}.contact_state for {key}", self.cql.keyspace());
        let rows = self
            .cql
            .session()
            .execute_unpaged(&self.load, (&key.tenant, &key.contact_id))
            .await
            .map_err(execution_error(operation()))?
            .into_rows_result()
            .map_err(|e| cql_error(operation(), e, false))?;
        let row = rows
            .maybe_first_row::<(i64, Vec<u8>)>()
            .map_err(|e| cql_error(operation(), e, false))?;
        Ok(row.map(|(version, data)| StoredState {
            version,
            data: Bytes::from(data),
        }))
    }

    async fn load_many(&self, keys: &[ContactKey]) -> Result<Vec<Option<StoredState>>> {
        // `load` futures (boxed by `async_trait`), made up front: a closure inside the
        // stream would not be `Send` for every lifetime.
        let lookups: Vec<_> = keys.iter().map(|key| self.load(key)).collect();
        stream::iter(lookups)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        let groups = self.by_replica(batch);
        try_join_all(groups.iter().map(|group| self.save_group(group))).await?;
        Ok(())
    }
}

/// A replica: its host id and shard.
type Replica = (u128, u32);

/// One state write's bound values, in the order of the insert's markers.
type Write<'a> = (&'a str, &'a str, i64, &'a [u8], i64);

fn write<'a>(key: &'a ContactKey, state: &'a StoredState) -> Write<'a> {
    (
        &key.tenant,
        &key.contact_id,
        state.version,
        state.data.as_ref(),
        state.version,
    )
}

/// Splits writes of the given state sizes into runs of at most [`BATCH_STATEMENTS`]
/// writes and [`BATCH_BYTES`] (a larger state goes alone).
fn chunks(sizes: impl Iterator<Item = usize>) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes, mut end) = (0, 0, 0);
    for (i, size) in sizes.enumerate() {
        if i > start && (i - start == BATCH_STATEMENTS || bytes + size > BATCH_BYTES) {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
        end = i + 1;
    }
    if start < end {
        chunks.push(start..end);
    }
    chunks
}

impl CqlStore {
    /// The writes of `batch` in groups owned by one replica (node and shard) each,
    /// in batch order within a group; one group when the token map is unknown.
    fn by_replica<'a>(&self, batch: &'a [(ContactKey, StoredState)]) -> Vec<Vec<Write<'a>>> {
        let cluster = self.cql.session().get_cluster_state();
        let mut groups: Vec<(Option<Replica>, Vec<Write<'a>>)> = Vec::new();
        for (key, state) in batch {
            let values = write(key, state);
            let owner = self
                .save
                .calculate_token(&values)
                .ok()
                .flatten()
                .and_then(|token| {
                    cluster
                        .get_token_endpoints(self.cql.keyspace(), "contact_state", token)
                        .first()
                        .map(|(node, shard)| (node.host_id.as_u128(), *shard))
                });
            match groups.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, writes)) => writes.push(values),
                None => groups.push((owner, vec![values])),
            }
        }
        groups.into_iter().map(|(_, writes)| writes).collect()
    }

    /// Sends one replica's writes as unlogged batches, all in flight together.
    async fn save_group(&self, writes: &[Write<'_>]) -> Result<()> {
        let chunks = chunks(writes.iter().map(|values| values.3.len()))
            .into_iter()
            .map(|range| &writes[range]);
        try_join_all(chunks.map(|chunk| async move {
            let operation = || {
                format!(
                    "saving {} states in {}.contact_state",
                    chunk.len(),
                    self.cql.keyspace()
                )
            };
            if let [single] = chunk {
                return self
                    .cql
                    .session()
                    .execute_unpaged(&self.save, single)
                    .await
                    .map(drop)
                    .map_err(execution_error(operation()));
            }
            let batch = Batch::new_with_statements(
                BatchType::Unlogged,
                vec![self.save.clone().into(); chunk.len()],
            );
            self.cql
                .session()
                .batch(&batch, chunk)
                .await
                .map(drop)
                .map_err(execution_error(operation()))
        }))
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_split_by_count_and_by_bytes() {
        assert!(chunks(std::iter::empty()).is_empty());
        assert_eq!(
            chunks(std::iter::repeat_n(10, 130)),
            vec![0..64, 64..128, 128..130]
        );
        let third = BATCH_BYTES / 3;
        assert_eq!(
            chunks([third, third, third, third, 1].into_iter()),
            vec![0..3, 3..5]
        );
        assert_eq!(
            chunks([1, BATCH_BYTES * 2, 1].into_iter()),
            vec![0..1, 1..2, 2..3],
            "a state larger than a batch goes alone"
        );
    }
}
