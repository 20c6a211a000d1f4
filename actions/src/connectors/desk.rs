//! Telegram support desk: one forum topic per contact in the managers'
//! supergroup. `message.send` on channel type `telegram_desk` mirrors a message
//! into the contact's topic (created on first use with `createForumTopic`, titled
//! `❗️ <name>`); session actions set the title's status with `editForumTopic`:
//! ❗️ new, 📝 in progress (assigned), 🏁 resolved (closed). A manager's reply in
//! the topic reaches the contact through ingest and the engine: ingest publishes
//! `support.manager_reply` for the topic's URN (`telegram-topic:<chat>:<thread>`),
//! and after creating a topic the worker emits `contact.link_identity` with that
//! URN for the contact, which makes the topic's contact an alias that forwards the
//! reply to the contact's flows (README, "Identity linking").
//!
//! The topic of each contact is remembered in `telegram_forum_topics`. If a worker
//! dies between `createForumTopic` and that write, the retry creates a second
//! topic: Telegram has no idempotency key for it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use scylla::statement::prepared::PreparedStatement;
use serde_json::json;
use sluice_infra::cql::Cql;
use sluice_schemas::identity::telegram_topic_urn;

use super::{CallError, OutMessage, telegram::Telegram};
use crate::{Error, Result, dedupe::cql::prepare};

/// A contact's forum topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// `message_thread_id`.
    pub thread_id: i64,
    /// The title without its status emoji.
    pub title: String,
}

/// Where forum topics are remembered, by tenant, contact and supergroup.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// The contact's topic in `chat_id`, if it has one.
    async fn get(&self, tenant: &str, contact_id: &str, chat_id: i64) -> Result<Option<Topic>>;
    /// Remembers the contact's topic in `chat_id`.
    async fn put(&self, tenant: &str, contact_id: &str, chat_id: i64, topic: &Topic) -> Result<()>;
}

/// Topics in memory.
#[derive(Debug, Default)]
pub struct MemoryTopics(Mutex<HashMap<(String, String, i64), Topic>>);

#[async_trait]
impl TopicStore for MemoryTopics {
    async fn get(&self, tenant: &str, contact_id: &str, chat_id: i64) -> Result<Option<Topic>> {
        let topics = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(topics
            .get(&(tenant.to_owned(), contact_id.to_owned(), chat_id))
            .cloned())
    }

    async fn put(&self, tenant: &str, contact_id: &str, chat_id: i64, topic: &Topic) -> Result<()> {
        let mut topics = self.0.lock().unwrap_or_else(|p| p.into_inner());
        topics.insert(
            (tenant.to_owned(), contact_id.to_owned(), chat_id),
            topic.clone(),
        );
        Ok(())
    }
}

/// Topics in the `telegram_forum_topics` table.
#[derive(Debug, Clone)]
pub struct CqlTopics {
    cql: Cql,
    select: PreparedStatement,
    insert: PreparedStatement,
}

impl CqlTopics {
    /// Prepares the statements.
    pub async fn new(cql: Cql) -> Result<Self> {
        let session = cql.session();
        Ok(CqlTopics {
            select: prepare(
                session,
                "SELECT thread_id, title FROM telegram_forum_topics \
                 WHERE tenant = ? AND contact_id = ? AND chat_id = ?",
            )
            .await?,
            insert: prepare(
                session,
                "INSERT INTO telegram_forum_topics (tenant, contact_id, chat_id, thread_id, title) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .await?,
            cql,
        })
    }
}

#[async_trait]
impl TopicStore for CqlTopics {
    async fn get(&self, tenant: &str, contact_id: &str, chat_id: i64) -> Result<Option<Topic>> {
        let operation = || format!("reading telegram_forum_topics for {tenant}/{contact_id}");
        let rows = self
            .cql
            .session()
            .execute_unpaged(&self.select, (tenant, contact_id, chat_id))
            .await
            .map_err(|e| Error::cql(operation(), e))?
            .into_rows_result()
            .map_err(|e| Error::cql(operation(), e))?;
        let row = rows
            .maybe_first_row::<(i64, Option<String>)>()
            .map_err(|e| Error::cql(operation(), e))?;
        Ok(row.map(|(thread_id, title)| Topic {
            thread_id,
            title: title.unwrap_or_default(),
        }))
    }

    async fn put(&self, tenant: &str, contact_id: &str, chat_id: i64, topic: &Topic) -> Result<()> {
        self.cql
            .session()
            .execute_unpaged(
                &self.insert,
                (tenant, contact_id, chat_id, topic.thread_id, &topic.title),
            )
            .await
            .map_err(|e| {
                Error::cql(
                    format!("writing telegram_forum_topics for {tenant}/{contact_id}"),
                    e,
                )
            })?;
        Ok(())
    }
}

/// A support request's status, shown as the topic title's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeskStatus {
    New,
    InProgress,
    Resolved,
}

impl DeskStatus {
    fn emoji(self) -> &'static str {
        match self {
            DeskStatus::New => "❗️",
            DeskStatus::InProgress => "📝",
            DeskStatus::Resolved => "🏁",
        }
    }
}

/// Why a desk operation failed: the provider, or our store.
#[derive(Debug)]
pub(crate) enum DeskError {
    Call(CallError),
    Store(Error),
}

impl From<CallError> for DeskError {
    fn from(e: CallError) -> Self {
        DeskError::Call(e)
    }
}

impl From<Error> for DeskError {
    fn from(e: Error) -> Self {
        DeskError::Store(e)
    }
}

/// The support desk.
#[derive(Clone)]
pub(crate) struct Desk {
    pub(crate) telegram: Telegram,
    pub(crate) chat_id: i64,
    pub(crate) topics: Arc<dyn TopicStore>,
}

fn title(status: DeskStatus, name: &str) -> String {
    // Telegram allows 1-128 characters.
    let name: String = name.chars().take(120).collect();
    format!("{} {name}", status.emoji())
}

impl Desk {
    /// Mirrors `message` into the contact's topic, creating the topic first if it
    /// has none. `message.to` is the name shown in the title (the contact id when empty).
    /// Returns the message id, and the topic's URN when this call created the topic.
    pub(crate) async fn mirror(
        &self,
        tenant: &str,
        contact_id: &str,
        message: &OutMessage,
    ) -> Result<(String, Option<String>), DeskError> {
        let mut created_urn = None;
        let topic = match self.topics.get(tenant, contact_id, self.chat_id).await? {
            Some(topic) => topic,
            None => {
                let name = if message.to.is_empty() {
                    contact_id
                } else {
                    message.to.as_str()
                };
                let created = self
                    .telegram
                    .call(
                        &message.channel_id,
                        "createForumTopic",
                        &json!({ "chat_id": self.chat_id, "name": title(DeskStatus::New, name) }),
                    )
                    .await?;
                let topic = Topic {
                    thread_id: created["message_thread_id"].as_i64().unwrap_or_default(),
                    title: name.to_owned(),
                };
                self.topics
                    .put(tenant, contact_id, self.chat_id, &topic)
                    .await?;
                created_urn = Some(telegram_topic_urn(self.chat_id, topic.thread_id));
                topic
            }
        };
        let message_id = self
            .telegram
            .send(message, Some(json!(self.chat_id)), Some(topic.thread_id))
            .await?;
        Ok((message_id, created_urn))
    }

    /// Sets the status in the title of the contact's topic; nothing when it has none.
    pub(crate) async fn set_status(
        &self,
        tenant: &str,
        contact_id: &str,
        channel_id: &str,
        status: DeskStatus,
    ) -> Result<(), DeskError> {
        let Some(topic) = self.topics.get(tenant, contact_id, self.chat_id).await? else {
            return Ok(());
        };
        self.telegram
            .call(
                channel_id,
                "editForumTopic",
                &json!({
                    "chat_id": self.chat_id,
                    "message_thread_id": topic.thread_id,
                    "name": title(status, &topic.title),
                }),
            )
            .await?;
        Ok(())
    }
}
