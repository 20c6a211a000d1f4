//! The embedded durable store for `sluice dev`: one `redb` database file on local
//! disk (ACID, crash-safe, no server). Each `save` is one write transaction, so a
//! batch becomes durable all together or not at all.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{ContactKey, StateStore, StoredState};
use crate::{Error, Result};

/// `(tenant, contact_id)` → version (8 bytes, big-endian) followed by the state.
const CONTACT_STATE: TableDefinition<'_, (&str, &str), &[u8]> =
    TableDefinition::new("contact_state");

/// The page cache `redb` may keep in memory (its default is 1 GiB): enough for a
/// development machine's contacts and timers, and it bounds resident memory however
/// many timers are pending.
const CACHE_BYTES: usize = 128 * 1024 * 1024;

/// A [`StateStore`] (and [`TimerStore`](super::TimerStore), see `file_timers.rs`)
/// in a `redb` file.
#[derive(Clone)]
pub struct FileStore {
    pub(super) db: Arc<Database>,
    pub(super) path: String,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(super) fn file_error(path: &str, operation: &str) -> impl FnOnce(redb::Error) -> Error {
    let operation = format!("{operation} {path}");
    move |error| Error::File {
        operation,
        message: error.to_string(),
    }
}

impl FileStore {
    /// Opens the database file, creating it (and its tables) when missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::File {
                operation: format!("creating directory {}", parent.display()),
                message: e.to_string(),
            })?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| file_error(&name, "opening")(e.into()))?;
        let txn = db
            .begin_write()
            .map_err(|e| file_error(&name, "initialising")(e.into()))?;
        txn.open_table(CONTACT_STATE)
            .map_err(|e| file_error(&name, "initialising")(e.into()))?;
        super::file_timers::create_tables(&txn)
            .map_err(|e| file_error(&name, "initialising")(e))?;
        txn.commit()
            .map_err(|e| file_error(&name, "initialising")(e.into()))?;
        Ok(FileStore {
            db: Arc::new(db),
            path: name,
        })
    }

    fn load_blocking(&self, keys: &[ContactKey]) -> Result<Vec<Option<StoredState>>> {
        let fail = || file_error(&self.path, "reading");
        let txn = self.db.begin_read().map_err(|e| fail()(e.into()))?;
        let table = txn
            .open_table(CONTACT_STATE)
            .map_err(|e| fail()(e.into()))?;
        let mut states = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(value) = table
                .get((key.tenant.as_str(), key.contact_id.as_str()))
                .map_err(|e| fail()(e.into()))?
            else {
                states.push(None);
                continue;
            };
            let bytes = value.value();
            let (version, data) = bytes.split_at_checked(8).ok_or_else(|| Error::File {
                operation: format!("reading {} for {key}", self.path),
                message: format!("corrupt record of {} bytes", bytes.len()),
            })?;
            let version = i64::from_be_bytes(version.try_into().unwrap_or_default());
            states.push(Some(StoredState {
                version,
                data: Bytes::copy_from_slice(data),
            }));
        }
        Ok(states)
    }

    fn save_blocking(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        let fail = || file_error(&self.path, "writing");
        let txn = self.db.begin_write().map_err(|e| fail()(e.into()))?;
        save_states(&txn, batch).map_err(|e| fail()(e))?;
        txn.commit().map_err(|e| fail()(e.into()))
    }
}

/// Writes states within a write transaction, skipping any older than the stored one.
pub(super) fn save_states(
    txn: &WriteTransaction,
    batch: &[(ContactKey, StoredState)],
) -> Result<(), redb::Error> {
    let mut table = txn.open_table(CONTACT_STATE)?;
    let mut record = Vec::new();
    for (key, state) in batch {
        let id = (key.tenant.as_str(), key.contact_id.as_str());
        let stored_version = table.get(id)?.and_then(|v| {
            v.value()
                .get(..8)
                .map(|b| i64::from_be_bytes(b.try_into().unwrap_or_default()))
        });
        if stored_version.is_some_and(|stored| stored > state.version) {
            continue;
        }
        record.clear();
        record.extend_from_slice(&state.version.to_be_bytes());
        record.extend_from_slice(&state.data);
        table.insert(id, record.as_slice())?;
    }
    Ok(())
}

#[async_trait]
impl StateStore for FileStore {
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>> {
        Ok(self
            .load_many(std::slice::from_ref(key))
            .await?
            .pop()
            .flatten())
    }

    /// All lookups in one read transaction.
    async fn load_many(&self, keys: &[ContactKey]) -> Result<Vec<Option<StoredState>>> {
        let store = self.clone();
        let keys = keys.to_vec();
        tokio::task::spawn_blocking(move || store.load_blocking(&keys))
            .await
            .map_err(|e| Error::File {
                operation: format!("reading {}", self.path),
                message: e.to_string(),
            })?
    }

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        let store = self.clone();
        let batch = batch.to_vec();
        tokio::task::spawn_blocking(move || store.save_blocking(&batch))
            .await
            .map_err(|e| Error::File {
                operation: format!("writing {}", self.path),
                message: e.to_string(),
            })?
    }
}
