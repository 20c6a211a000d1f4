//! The CQL state store: ScyllaDB in production, any CQL cluster (Cassandra in
//! tests) through the `scylla` driver, with prepared statements and token-aware
//! routing (the driver's default policy).
//!
//! Newest-version-wins without lightweight transactions: every write carries
//! `USING TIMESTAMP <version>`, so the cluster's last-write-wins keeps the state
//! with the highest version whatever order the writes arrive in.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::try_join_all;
use scylla::{
    client::{session::Session, session_builder::SessionBuilder},
    errors::ExecutionError,
    statement::prepared::PreparedStatement,
};

use super::{
    ContactKey, StateStore, StoredState,
    migrations::{MIGRATIONS, SCHEMA_MIGRATIONS_TABLE},
};
use crate::{Error, Result};

/// How to reach the CQL cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Keyspace holding Sluice's tables.
    pub keyspace: String,
    /// Replication factor used when the keyspace is created (default 3).
    pub replication_factor: u32,
}

impl CqlConfig {
    /// Parses `cql://host:port[,host:port]/keyspace[?replication_factor=N]`.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("cql://")
            .ok_or_else(|| Error::config(url, "expected cql://host:port/keyspace"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (nodes, keyspace) = rest.split_once('/').unwrap_or((rest, "sluice"));
        let keyspace = if keyspace.is_empty() {
            "sluice"
        } else {
            keyspace
        };
        if !keyspace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || keyspace.len() > 48
        {
            return Err(Error::config(
                url,
                format!("keyspace {keyspace:?} must be 1-48 letters, digits or underscores"),
            ));
        }
        let nodes: Vec<String> = nodes
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if nodes.is_empty() {
            return Err(Error::config(url, "no contact points"));
        }
        let mut replication_factor = 3;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "replication_factor" => {
                    replication_factor =
                        value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                            Error::config(
                                url,
                                format!("replication_factor {value:?} is not a positive integer"),
                            )
                        })?;
                }
                other => return Err(Error::config(url, format!("unknown option {other:?}"))),
            }
        }
        Ok(CqlConfig {
            nodes,
            keyspace: keyspace.to_owned(),
            replication_factor,
        })
    }
}

/// A [`StateStore`] on a CQL cluster.
pub struct CqlStore {
    session: Session,
    keyspace: String,
    load: PreparedStatement,
    save: PreparedStatement,
}

impl std::fmt::Debug for CqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlStore")
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

fn cql_error(
    operation: impl Into<String>,
    error: impl std::fmt::Display,
    retryable: bool,
) -> Error {
    Error::Cql {
        operation: operation.into(),
        message: error.to_string(),
        retryable,
    }
}

fn execution_error(operation: impl Into<String>) -> impl FnOnce(ExecutionError) -> Error {
    let operation = operation.into();
    move |error| {
        let retryable = !matches!(error, ExecutionError::BadQuery(_));
        cql_error(operation, error, retryable)
    }
}

impl CqlStore {
    /// Connects, creates or migrates the keyspace, and prepares the statements.
    pub async fn connect(config: CqlConfig) -> Result<Self> {
        let session = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .map_err(|e| cql_error(format!("connecting to {}", config.nodes.join(",")), e, true))?;
        migrate(&session, &config).await?;
        let keyspace = &config.keyspace;
        let load = session
            .prepare(format!(
                "SELECT version, state FROM {keyspace}.contact_state WHERE tenant = ? AND contact_id = ?"
            ))
            .await
            .map_err(|e| cql_error("preparing contact_state select", e, true))?;
        let save = session
            .prepare(format!(
                "INSERT INTO {keyspace}.contact_state (tenant, contact_id, version, state) \
                 VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await
            .map_err(|e| cql_error("preparing contact_state insert", e, true))?;
        Ok(CqlStore {
            session,
            keyspace: config.keyspace,
            load,
            save,
        })
    }

    /// The versions recorded in `schema_migrations`, ascending.
    pub async fn applied_migrations(&self) -> Result<Vec<i32>> {
        applied_migrations(&self.session, &self.keyspace).await
    }
}

async fn applied_migrations(session: &Session, keyspace: &str) -> Result<Vec<i32>> {
    let operation = format!("reading {keyspace}.schema_migrations");
    let rows = session
        .query_unpaged(
            format!("SELECT version FROM {keyspace}.schema_migrations"),
            (),
        )
        .await
        .map_err(execution_error(operation.clone()))?
        .into_rows_result()
        .map_err(|e| cql_error(operation.clone(), e, false))?;
    let mut versions = rows
        .rows::<(i32,)>()
        .map_err(|e| cql_error(operation.clone(), e, false))?
        .map(|row| row.map(|(v,)| v))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|e| cql_error(operation, e, false))?;
    versions.sort_unstable();
    Ok(versions)
}

/// Creates the keyspace and runs the migrations it has not seen yet.
async fn migrate(session: &Session, config: &CqlConfig) -> Result<()> {
    let keyspace = &config.keyspace;
    let ddl = |statement: String, what: String| async move {
        session
            .query_unpaged(statement, ())
            .await
            .map_err(execution_error(what))?;
        session
            .await_schema_agreement()
            .await
            .map_err(|e| cql_error("awaiting schema agreement", e, true))
            .map(|_| ())
    };
    ddl(
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'NetworkTopologyStrategy', 'replication_factor': {}}}",
            config.replication_factor
        ),
        format!("creating keyspace {keyspace}"),
    )
    .await?;
    session
        .use_keyspace(keyspace, false)
        .await
        .map_err(|e| cql_error(format!("using keyspace {keyspace}"), e, true))?;
    ddl(
        SCHEMA_MIGRATIONS_TABLE.to_owned(),
        format!("creating {keyspace}.schema_migrations"),
    )
    .await?;
    let applied = applied_migrations(session, keyspace).await?;
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        for statement in migration.statements {
            ddl(
                (*statement).to_owned(),
                format!(
                    "migration {} ({})",
                    migration.version, migration.description
                ),
            )
            .await?;
        }
        session
            .query_unpaged(
                "INSERT INTO schema_migrations (version, description, applied_at) \
                 VALUES (?, ?, toTimestamp(now()))",
                (migration.version, migration.description),
            )
            .await
            .map_err(execution_error(format!(
                "recording migration {}",
                migration.version
            )))?;
        tracing::info!(
            keyspace,
            version = migration.version,
            description = migration.description,
            "applied CQL migration"
        );
    }
    Ok(())
}

#[async_trait]
impl StateStore for CqlStore {
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>> {
        let operation = || format!("loading {}.contact_state for {key}", self.keyspace);
        let rows = self
            .session
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

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        try_join_all(batch.iter().map(|(key, state)| async move {
            self.session
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
                    self.keyspace
                )))
        }))
        .await?;
        Ok(())
    }
}
