//! The stores the workers keep: dedupe claims, the contact profile (system of
//! record) and the support desk's forum topics — in memory or in CQL, chosen by
//! URL like every backend (`memory://`, `cql://host:port/keyspace`).

use std::sync::Arc;

use sluice_infra::cql::{Cql, CqlConfig};

use crate::{
    Error, Result,
    connectors::{
        desk::{CqlTopics, MemoryTopics, TopicStore},
        profile::{CqlProfiles, MemoryProfiles, ProfileStore},
    },
    dedupe::{CqlDedupe, DedupeStore, MemoryDedupe},
};

/// The three stores, shared by every task of a worker.
#[derive(Clone)]
pub struct Stores {
    /// Once-only claims.
    pub dedupe: Arc<dyn DedupeStore>,
    /// Contact profile fields and tags.
    pub profiles: Arc<dyn ProfileStore>,
    /// Telegram forum topic per contact.
    pub topics: Arc<dyn TopicStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// Everything in memory: `sluice dev`, tests, benchmarks.
    pub fn memory() -> Self {
        Stores {
            dedupe: Arc::new(MemoryDedupe::new()),
            profiles: Arc::new(MemoryProfiles::default()),
            topics: Arc::new(MemoryTopics::default()),
        }
    }

    /// The CQL tables of migration 2, on one shared session.
    pub async fn cql(cql: Cql) -> Result<Self> {
        Ok(Stores {
            dedupe: Arc::new(CqlDedupe::new(cql.clone()).await?),
            profiles: Arc::new(CqlProfiles::new(cql.clone()).await?),
            topics: Arc::new(CqlTopics::new(cql).await?),
        })
    }

    /// Connects to the stores `url` names: `memory://` or
    /// `cql://host:port[,host:port]/keyspace[?replication_factor=N]` (migrated first).
    pub async fn connect(url: &str) -> Result<Self> {
        match url.split_once("://") {
            Some(("memory", _)) => Ok(Self::memory()),
            Some(("cql", _)) => {
                let cql = Cql::connect(&CqlConfig::from_url(url)?).await?;
                Self::cql(cql).await
            }
            _ => Err(Error::Config(format!(
                "store {url:?}: expected memory:// or cql://host:port/keyspace"
            ))),
        }
    }
}
