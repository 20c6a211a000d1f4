//! The state store: each contact's state as an opaque, versioned blob, and the
//! contacts' durable timers ([`TimerStore`]), written together with the states.
//!
//! The engine owns the state's encoding; the store only keeps the newest version
//! per contact. A version is the input offset that produced the state, so a
//! replayed event can be recognised and state is never overwritten by an older one.

#[cfg(feature = "cql")]
mod cql;
#[cfg(feature = "cql")]
mod cql_timers;
mod file;
mod file_timers;
mod memory;
mod timers;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::try_join_all;

use crate::{Error, Result};

#[cfg(feature = "cql")]
pub use cql::CqlStore;
#[cfg(feature = "cql")]
pub use cql_timers::{BUCKET_MS, CqlTimerStore, GRACE, SUB_SHARDS};
pub use file::FileStore;
pub use memory::MemoryStore;
pub use timers::{TimerChanges, TimerEntry, TimerId, TimerStore};

/// Identifies one contact of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactKey {
    /// The tenant.
    pub tenant: String,
    /// The contact within the tenant.
    pub contact_id: String,
}

impl ContactKey {
    /// A key from its parts.
    pub fn new(tenant: impl Into<String>, contact_id: impl Into<String>) -> Self {
        ContactKey {
            tenant: tenant.into(),
            contact_id: contact_id.into(),
        }
    }
}

impl std::fmt::Display for ContactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.contact_id)
    }
}

/// A contact's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// The input position that produced this state; writes never go backwards.
    pub version: i64,
    /// The engine's encoding of the state.
    pub data: Bytes,
}

/// Keeps each contact's newest state.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The contact's state, or `None` for a contact never seen.
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>>;

    /// The states of many contacts, in the order of `keys`; lookups are pipelined.
    async fn load_many(&self, keys: &[ContactKey]) -> Result<Vec<Option<StoredState>>> {
        try_join_all(keys.iter().map(|key| self.load(key))).await
    }

    /// Stores a batch of states, one per contact, and returns once all are durable.
    /// A state whose version is older than the stored one is ignored.
    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()>;
}

/// Connects to the store a URL names: `memory://`, `file:///path/to/db.redb` or
/// `cql://host:port[,host:port]/keyspace[?replication_factor=N]`. A CQL store's
/// keyspace and tables are created or migrated first.
pub async fn connect(url: &str) -> Result<Arc<dyn StateStore>> {
    let (scheme, _) = url
        .split_once("://")
        .ok_or_else(|| Error::config(url, "expected memory:// or cql://host:port/keyspace"))?;
    match scheme {
        "memory" => Ok(Arc::new(MemoryStore::default())),
        "file" => {
            let path = url.trim_start_matches("file://");
            if path.is_empty() {
                return Err(Error::config(url, "expected file:///path/to/sluice.redb"));
            }
            Ok(Arc::new(FileStore::open(path)?))
        }
        #[cfg(feature = "cql")]
        "cql" => {
            let cql = crate::cql::Cql::connect(&crate::cql::CqlConfig::from_url(url)?).await?;
            Ok(Arc::new(CqlStore::new(cql).await?))
        }
        #[cfg(not(feature = "cql"))]
        "cql" => Err(Error::NotCompiled {
            scheme: scheme.to_owned(),
            feature: "cql",
        }),
        other => Err(Error::config(
            url,
            format!("unknown store scheme {other:?}; expected memory or cql"),
        )),
    }
}

/// Connects to a store that also keeps timers (see [`connect`] for the URLs).
/// `partitions` is the events topic's partition count: a CQL store shards timers by it.
pub async fn connect_timers(url: &str, partitions: i32) -> Result<Arc<dyn TimerStore>> {
    let (scheme, _) = url.split_once("://").ok_or_else(|| {
        Error::config(
            url,
            "expected memory://, file:// or cql://host:port/keyspace",
        )
    })?;
    match scheme {
        "memory" => Ok(Arc::new(MemoryStore::default())),
        "file" => {
            let path = url.trim_start_matches("file://");
            if path.is_empty() {
                return Err(Error::config(url, "expected file:///path/to/sluice.redb"));
            }
            Ok(Arc::new(FileStore::open(path)?))
        }
        #[cfg(feature = "cql")]
        "cql" => {
            let cql = crate::cql::Cql::connect(&crate::cql::CqlConfig::from_url(url)?).await?;
            Ok(Arc::new(CqlTimerStore::new(cql, partitions).await?))
        }
        #[cfg(not(feature = "cql"))]
        "cql" => {
            let _ = partitions;
            Err(Error::NotCompiled {
                scheme: scheme.to_owned(),
                feature: "cql",
            })
        }
        other => Err(Error::config(
            url,
            format!("unknown store scheme {other:?}; expected memory, file or cql"),
        )),
    }
}
