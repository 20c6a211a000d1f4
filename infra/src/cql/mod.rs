//! The CQL connection every service shares: one `scylla` session per process
//! (token- and shard-aware routing is the driver's default), and the schema's
//! migrations, run idempotently before anything else touches the keyspace.

mod migrations;

use std::{sync::Arc, time::Duration};

use scylla::{
    client::{session::Session, session_builder::SessionBuilder},
    errors::ExecutionError,
};

use migrations::SCHEMA_MIGRATIONS_TABLE;
pub use migrations::{MIGRATIONS, Migration};

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

/// A session connected to the cluster, with the keyspace created, migrated and in use.
#[derive(Clone)]
pub struct Cql {
    session: Arc<Session>,
    keyspace: String,
}

impl std::fmt::Debug for Cql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cql")
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

impl Cql {
    /// Connects, then creates or migrates the keyspace (see [`MIGRATIONS`]).
    pub async fn connect(config: &CqlConfig) -> Result<Self> {
        let session = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .map_err(|e| cql_error(format!("connecting to {}", config.nodes.join(",")), e, true))?;
        migrate(&session, config).await?;
        Ok(Cql {
            session: Arc::new(session),
            keyspace: config.keyspace.clone(),
        })
    }

    /// The driver session, for preparing and running statements.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The keyspace in use.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// The versions recorded in `schema_migrations`, ascending.
    pub async fn applied_migrations(&self) -> Result<Vec<i32>> {
        applied_migrations(&self.session, &self.keyspace).await
    }
}

pub(crate) fn cql_error(
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

pub(crate) fn execution_error(
    operation: impl Into<String>,
) -> impl FnOnce(ExecutionError) -> Error {
    let operation = operation.into();
    move |error| {
        let retryable = !matches!(error, ExecutionError::BadQuery(_));
        cql_error(operation, error, retryable)
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
