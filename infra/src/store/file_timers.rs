//! [`TimerStore`] for the embedded `redb` file: timers live in the same database
//! file as the contacts' states, and a commit writes both in one transaction.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableDatabase, TableDefinition, WriteTransaction};

use super::{
    ContactKey, FileStore, StoredState,
    file::{file_error, save_states},
    timers::{TimerChanges, TimerEntry, TimerId, TimerStore},
};
use crate::{Error, Result};

/// Pending timers in firing order: `(due_at, tenant, contact_id, run, token)`.
const TIMERS: TableDefinition<'_, (i64, &str, &str, u64, u32), ()> = TableDefinition::new("timers");

/// Each pending timer's due time by id: `(tenant, contact_id, run, token)`.
const TIMER_DUE: TableDefinition<'_, (&str, &str, u64, u32), i64> =
    TableDefinition::new("timer_due");

type Key<'a> = (i64, &'a str, &'a str, u64, u32);

fn key(timer: &TimerEntry) -> Key<'_> {
    (
        timer.due_at,
        timer.contact.tenant.as_str(),
        timer.contact.contact_id.as_str(),
        timer.run,
        timer.token,
    )
}

/// Creates the timer tables when missing.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(TIMERS)?;
    txn.open_table(TIMER_DUE)?;
    Ok(())
}

fn apply(txn: &WriteTransaction, changes: &TimerChanges) -> Result<(), redb::Error> {
    let mut timers = txn.open_table(TIMERS)?;
    let mut due = txn.open_table(TIMER_DUE)?;
    let mut cancel = |id: &TimerId| -> Result<(), redb::Error> {
        let id_key = (
            id.contact.tenant.as_str(),
            id.contact.contact_id.as_str(),
            id.run,
            id.token,
        );
        let removed = due.remove(id_key)?.map(|v| v.value());
        if let Some(due_at) = removed {
            timers.remove((due_at, id_key.0, id_key.1, id.run, id.token))?;
        }
        Ok(())
    };
    for id in &changes.cancel {
        cancel(id)?;
    }
    for timer in &changes.set {
        cancel(&timer.id())?;
    }
    for timer in &changes.set {
        let k = key(timer);
        due.insert((k.1, k.2, k.3, k.4), timer.due_at)?;
        timers.insert(k, ())?;
    }
    Ok(())
}

impl FileStore {
    fn commit_blocking(
        &self,
        states: &[(ContactKey, StoredState)],
        timers: &TimerChanges,
    ) -> Result<()> {
        let fail = || file_error(&self.path, "writing");
        let txn = self.db.begin_write().map_err(|e| fail()(e.into()))?;
        save_states(&txn, states).map_err(|e| fail()(e))?;
        apply(&txn, timers).map_err(|e| fail()(e))?;
        txn.commit().map_err(|e| fail()(e.into()))
    }

    fn due_blocking(
        &self,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        let fail = || file_error(&self.path, "reading timers from");
        let txn = self.db.begin_read().map_err(|e| fail()(e.into()))?;
        let table = txn.open_table(TIMERS).map_err(|e| fail()(e.into()))?;
        let lower = match after {
            Some(cursor) => Bound::Excluded(key(cursor)),
            None => Bound::Unbounded,
        };
        let upper: Bound<Key<'_>> = Bound::Excluded((before, "", "", 0, 0));
        let mut out = Vec::new();
        for row in table
            .range::<Key<'_>>((lower, upper))
            .map_err(|e| fail()(e.into()))?
            .take(limit)
        {
            let (k, _) = row.map_err(|e| fail()(e.into()))?;
            let (due_at, tenant, contact_id, run, token) = k.value();
            out.push(TimerEntry {
                due_at,
                contact: ContactKey::new(tenant, contact_id),
                run,
                token,
            });
        }
        Ok(out)
    }

    fn contains_blocking(&self, timer: &TimerEntry) -> Result<bool> {
        let fail = || file_error(&self.path, "reading timers from");
        let txn = self.db.begin_read().map_err(|e| fail()(e.into()))?;
        let table = txn.open_table(TIMERS).map_err(|e| fail()(e.into()))?;
        Ok(table
            .get(key(timer))
            .map_err(|e| fail()(e.into()))?
            .is_some())
    }
}

fn join_error(path: &str) -> impl FnOnce(tokio::task::JoinError) -> Error {
    let operation = format!("using {path}");
    move |e| Error::File {
        operation,
        message: e.to_string(),
    }
}

#[async_trait]
impl TimerStore for FileStore {
    async fn commit(
        &self,
        states: &[(ContactKey, StoredState)],
        timers: &TimerChanges,
    ) -> Result<()> {
        let store = self.clone();
        let (states, timers) = (states.to_vec(), timers.clone());
        tokio::task::spawn_blocking(move || store.commit_blocking(&states, &timers))
            .await
            .map_err(join_error(&self.path))?
    }

    async fn due(
        &self,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        let store = self.clone();
        let after = after.cloned();
        tokio::task::spawn_blocking(move || store.due_blocking(after.as_ref(), before, limit))
            .await
            .map_err(join_error(&self.path))?
    }

    async fn contains(&self, timer: &TimerEntry) -> Result<bool> {
        let store = self.clone();
        let timer = timer.clone();
        tokio::task::spawn_blocking(move || store.contains_blocking(&timer))
            .await
            .map_err(join_error(&self.path))?
    }
}
