//! Where submitted flow versions are recorded: every version of every flow of every
//! tenant, kept forever (runs stay pinned to the version they started on, and the
//! compacted topic keeps only the newest record per flow).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use futures::TryStreamExt as _;
use scylla::{statement::prepared::PreparedStatement, value::CqlTimestamp};
use serde_json::{Value, json};
use sluice_infra::cql::Cql;

use crate::{
    Error, Result,
    flow::{ARTIFACT_FORMAT, CompiledFlow, canonical_json},
};

/// One recorded version of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlow {
    /// The tenant that owns it.
    pub tenant: String,
    /// The flow's id.
    pub flow_id: String,
    /// The version.
    pub version: u32,
    /// BLAKE3 of the canonical JSON of the source, hex.
    pub content_hash: String,
    /// The source, as canonical JSON.
    pub source: String,
    /// When it was submitted, milliseconds since the Unix epoch.
    pub submitted_at_ms: i64,
}

impl StoredFlow {
    /// The record for a compiled flow of a tenant, submitted at `submitted_at_ms`.
    pub fn new(tenant: &str, flow: &CompiledFlow, submitted_at_ms: i64) -> Self {
        StoredFlow {
            tenant: tenant.to_owned(),
            flow_id: flow.id.clone(),
            version: flow.version,
            content_hash: flow.content_hash.clone(),
            source: canonical_json(&flow.source),
            submitted_at_ms,
        }
    }

    /// The artifact this record stands for, for [`from_artifact`](crate::flow::from_artifact),
    /// which recompiles the source and checks the hash.
    pub fn artifact(&self) -> Result<Value> {
        let source: Value = serde_json::from_str(&self.source).map_err(|e| Error::FlowRefused {
            tenant: self.tenant.clone(),
            flow_id: self.flow_id.clone(),
            version: self.version,
            reason: format!("the recorded source is not JSON: {e}"),
        })?;
        Ok(json!({
            "format": ARTIFACT_FORMAT,
            "id": self.flow_id,
            "version": self.version,
            "content_hash": self.content_hash,
            "source": source,
        }))
    }
}

/// Records flow versions. Implementations: [`MemoryFlowStore`] (tests, `sluice dev`)
/// and [`CqlFlowStore`] (the `flows` table).
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// One version of a flow, if recorded.
    async fn get(&self, tenant: &str, flow_id: &str, version: u32) -> Result<Option<StoredFlow>>;

    /// The newest recorded version of a flow.
    async fn newest(&self, tenant: &str, flow_id: &str) -> Result<Option<StoredFlow>>;

    /// Records a version unless that version is already recorded (then the stored one
    /// is kept; read it back to compare).
    async fn insert_if_absent(&self, flow: &StoredFlow) -> Result<()>;

    /// Every recorded version of every flow of every tenant.
    async fn all(&self) -> Result<Vec<StoredFlow>>;
}

type MemoryKey = (String, String, u32);

/// An in-memory [`FlowStore`]. Clones share the same records.
#[derive(Debug, Clone, Default)]
pub struct MemoryFlowStore {
    flows: Arc<Mutex<BTreeMap<MemoryKey, StoredFlow>>>,
}

impl MemoryFlowStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryFlowStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<MemoryKey, StoredFlow>> {
        // Every critical section is one insert or a read: a panic cannot leave it torn.
        self.flows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl FlowStore for MemoryFlowStore {
    async fn get(&self, tenant: &str, flow_id: &str, version: u32) -> Result<Option<StoredFlow>> {
        Ok(self
            .lock()
            .get(&(tenant.to_owned(), flow_id.to_owned(), version))
            .cloned())
    }

    async fn newest(&self, tenant: &str, flow_id: &str) -> Result<Option<StoredFlow>> {
        let from = (tenant.to_owned(), flow_id.to_owned(), 0);
        let to = (tenant.to_owned(), flow_id.to_owned(), u32::MAX);
        Ok(self
            .lock()
            .range(from..=to)
            .next_back()
            .map(|(_, f)| f.clone()))
    }

    async fn insert_if_absent(&self, flow: &StoredFlow) -> Result<()> {
        self.lock()
            .entry((flow.tenant.clone(), flow.flow_id.clone(), flow.version))
            .or_insert_with(|| flow.clone());
        Ok(())
    }

    async fn all(&self) -> Result<Vec<StoredFlow>> {
        Ok(self.lock().values().cloned().collect())
    }
}

/// A [`FlowStore`] on the CQL `flows` table (partition per tenant and flow, versions
/// newest first). A new version is inserted with a lightweight transaction
/// (`IF NOT EXISTS`): submits are rare, and two submits of one version with different
/// content must not both win.
pub struct CqlFlowStore {
    cql: Cql,
    get: PreparedStatement,
    newest: PreparedStatement,
    insert: PreparedStatement,
    all: PreparedStatement,
}

impl std::fmt::Debug for CqlFlowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlFlowStore")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "tenant, flow_id, version, source, content_hash, submitted_at";

type Row = (String, String, i32, String, String, CqlTimestamp);

fn cql_error(operation: String, error: impl std::fmt::Display, retryable: bool) -> Error {
    Error::Store(sluice_infra::Error::Cql {
        operation,
        message: error.to_string(),
        retryable,
    })
}

fn from_row((tenant, flow_id, version, source, content_hash, at): Row) -> StoredFlow {
    StoredFlow {
        tenant,
        flow_id,
        // Written from a u32 through `column_version`, so never negative.
        version: u32::try_from(version).unwrap_or_default(),
        content_hash,
        source,
        submitted_at_ms: at.0,
    }
}

fn column_version(tenant: &str, flow_id: &str, version: u32) -> Result<i32> {
    i32::try_from(version).map_err(|_| Error::FlowRefused {
        tenant: tenant.to_owned(),
        flow_id: flow_id.to_owned(),
        version,
        reason: format!("versions above {} cannot be recorded", i32::MAX),
    })
}

impl CqlFlowStore {
    /// Prepares the statements on a connected, migrated session.
    pub async fn new(cql: Cql) -> Result<Self> {
        let keyspace = cql.keyspace().to_owned();
        let prepare = |text: String| {
            let cql = cql.clone();
            async move {
                cql.session()
                    .prepare(text.clone())
                    .await
                    .map_err(|e| cql_error(format!("preparing {text:?}"), e, true))
            }
        };
        let get = prepare(format!(
            "SELECT {COLUMNS} FROM {keyspace}.flows WHERE tenant = ? AND flow_id = ? AND version = ?"
        ))
        .await?;
        let newest = prepare(format!(
            "SELECT {COLUMNS} FROM {keyspace}.flows WHERE tenant = ? AND flow_id = ? LIMIT 1"
        ))
        .await?;
        let insert = prepare(format!(
            "INSERT INTO {keyspace}.flows ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        ))
        .await?;
        let all = prepare(format!("SELECT {COLUMNS} FROM {keyspace}.flows")).await?;
        Ok(CqlFlowStore {
            cql,
            get,
            newest,
            insert,
            all,
        })
    }

    async fn one(
        &self,
        statement: &PreparedStatement,
        values: (&str, &str, Option<i32>),
        what: String,
    ) -> Result<Option<StoredFlow>> {
        let result = match values.2 {
            Some(version) => {
                self.cql
                    .session()
                    .execute_unpaged(statement, (values.0, values.1, version))
                    .await
            }
            None => {
                self.cql
                    .session()
                    .execute_unpaged(statement, (values.0, values.1))
                    .await
            }
        };
        let rows = result
            .map_err(|e| cql_error(what.clone(), e, true))?
            .into_rows_result()
            .map_err(|e| cql_error(what.clone(), e, false))?;
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|e| cql_error(what, e, false))?;
        Ok(row.map(from_row))
    }
}

#[async_trait]
impl FlowStore for CqlFlowStore {
    async fn get(&self, tenant: &str, flow_id: &str, version: u32) -> Result<Option<StoredFlow>> {
        let column = column_version(tenant, flow_id, version)?;
        let what = format!(
            "reading {}.flows for {tenant}/{flow_id} v{version}",
            self.cql.keyspace()
        );
        self.one(&self.get, (tenant, flow_id, Some(column)), what)
            .await
    }

    async fn newest(&self, tenant: &str, flow_id: &str) -> Result<Option<StoredFlow>> {
        let what = format!(
            "reading the newest {}.flows row of {tenant}/{flow_id}",
            self.cql.keyspace()
        );
        self.one(&self.newest, (tenant, flow_id, None), what).await
    }

    async fn insert_if_absent(&self, flow: &StoredFlow) -> Result<()> {
        let version = column_version(&flow.tenant, &flow.flow_id, flow.version)?;
        self.cql
            .session()
            .execute_unpaged(
                &self.insert,
                (
                    &flow.tenant,
                    &flow.flow_id,
                    version,
                    &flow.source,
                    &flow.content_hash,
                    CqlTimestamp(flow.submitted_at_ms),
                ),
            )
            .await
            .map_err(|e| {
                cql_error(
                    format!(
                        "recording {}/{} v{} in {}.flows",
                        flow.tenant,
                        flow.flow_id,
                        flow.version,
                        self.cql.keyspace()
                    ),
                    e,
                    true,
                )
            })?;
        Ok(())
    }

    async fn all(&self) -> Result<Vec<StoredFlow>> {
        let what = || format!("reading {}.flows", self.cql.keyspace());
        self.cql
            .session()
            .execute_iter(self.all.clone(), ())
            .await
            .map_err(|e| cql_error(what(), e, true))?
            .rows_stream::<Row>()
            .map_err(|e| cql_error(what(), e, false))?
            .map_ok(from_row)
            .try_collect()
            .await
            .map_err(|e| cql_error(what(), e, true))
    }
}
