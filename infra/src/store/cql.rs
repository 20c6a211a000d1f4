//! The CQL state store: ScyllaDB in production, any CQL cluster (Cassandra in
//! tests), with prepared statements, pipelined.
//!
//! [`load_many`](StateStore::load_many) issues one prepared lookup per contact,
//! all in flight together (up to [`IN_FLIGHT`]), and [`save`](StateStore::save)
//! one write per contact, likewise.
//!
//! Newest-version-wins without lightweight transactions: every write carries
//! `USING TIMESTAMP <version>`, so the cluster's last-write-wins keeps the state
//! with the highest version whatever order the writes arrive in.

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, future::try_join_all, stream};
use scylla::statement::prepared::PreparedStatement;

use super::{ContactKey, StateStore, StoredState};
use crate::{
    Result,
    cql::{Cql, cql_error, execution_error},
};

/// Lookups of one `load_many` in flight at once (the driver pipelines them over
/// its connections).
const IN_FLIGHT: usize = 1_024;

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
        try_join_all(batch.iter().map(|(key, state)| async move {
            self.cql
                .session()
                .execute_unpaged(
                    &self.save,
                    (
                        &key.tenant,
                        &key.contact_id,
                        state.version,
                        state.data.as_ref(),
                        state.version,
                    ),
                )
                .await
                .map_err(execution_error(format!(
                    "saving {}.contact_state for {key}",
                    self.cql.keyspace()
                )))
        }))
        .await?;
        Ok(())
    }
}
