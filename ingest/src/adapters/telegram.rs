//! Telegram Bot API webhooks: `POST /v1/{tenant}/telegram/{bot}`, one
//! [Update](https://core.telegram.org/bots/api#update) per request, authenticated by the
//! `secret_token` given to `setWebhook` (header `X-Telegram-Bot-Api-Secret-Token`).
//!
//! | update | event |
//! |---|---|
//! | `message` in a private chat | `message.received` (text, or media with its caption) |
//! | `edited_message` in a private chat | `message.received` with `edited` |
//! | `callback_query` with `data` | `message.received`, kind `button`, `reply_payload` = data |
//! | `my_chat_member` → `kicked` in a private chat | `contact.blocked` |
//! | `message_reaction` | `reaction.received` (`removed` when the reaction is taken back) |
//! | a message in a forum topic of the bot's `managers_chat_id` | `custom` `support.manager_reply` |
//! | anything else (polls, inline queries, group chats, service messages) | ignored, 200 |
//!
//! Event id: `telegram:<bot>:<update_id>`. Contact: `telegram:<user id>`. Media carry
//! `telegram-file:<file_id>` as their URL (resolve with `getFile`). `origin.provider_id`
//! is `<chat id>:<message id>`.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde::Deserialize;
use sluice_schemas::{
    CustomPayload, EventType, Media, MessagePayload, Payload, ReactionPayload, Scalar,
};

use super::{Adapter, Channel, Normalized, header, parse_json, secs_to_ms, with_origin};
use crate::{Result, config::TelegramBot, identity, signature};

const ADAPTER: Adapter = Adapter::Telegram;

/// The name of the custom event for a manager's reply in a forum topic.
pub const MANAGER_REPLY: &str = "support.manager_reply";

/// Checks `X-Telegram-Bot-Api-Secret-Token`.
pub fn verify(bot: &TelegramBot, headers: &HeaderMap) -> Result<()> {
    signature::verify_token(
        ADAPTER.as_str(),
        &bot.secret_token,
        header(headers, "x-telegram-bot-api-secret-token"),
    )
}

#[derive(Deserialize)]
struct Update {
    update_id: i64,
    message: Option<Message>,
    edited_message: Option<Message>,
    callback_query: Option<CallbackQuery>,
    my_chat_member: Option<ChatMemberUpdated>,
    message_reaction: Option<MessageReaction>,
}

#[derive(Deserialize)]
struct User {
    id: i64,
    #[serde(default)]
    is_bot: bool,
    username: Option<String>,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Chat {
    /// Whether this is a one-to-one chat with `user`. Old examples (and some test tools)
    /// leave `type` out; a private chat's id is the user's id.
    fn is_private_with(&self, user: i64) -> bool {
        match self.kind.as_deref() {
            Some(kind) => kind == "private",
            None => self.id == user,
        }
    }
}

#[derive(Deserialize)]
struct File {
    file_id: String,
    mime_type: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Deserialize)]
struct Contact {
    phone_number: String,
}

#[derive(Deserialize)]
struct Message {
    message_id: i64,
    message_thread_id: Option<i64>,
    #[serde(default)]
    is_topic_message: bool,
    from: Option<User>,
    chat: Chat,
    date: i64,
    edit_date: Option<i64>,
    text: Option<String>,
    caption: Option<String>,
    photo: Option<Vec<File>>,
    video: Option<File>,
    animation: Option<File>,
    audio: Option<File>,
    voice: Option<File>,
    document: Option<File>,
    sticker: Option<File>,
    location: Option<Location>,
    contact: Option<Contact>,
}

#[derive(Deserialize)]
struct CallbackQuery {
    id: String,
    from: User,
    data: Option<String>,
}

#[derive(Deserialize)]
struct ChatMemberUpdated {
    chat: Chat,
    from: User,
    date: i64,
    new_chat_member: ChatMember,
}

#[derive(Deserialize)]
struct ChatMember {
    status: String,
}

#[derive(Deserialize)]
struct MessageReaction {
    chat: Chat,
    message_id: i64,
    user: Option<User>,
    date: i64,
    #[serde(default)]
    old_reaction: Vec<Reaction>,
    #[serde(default)]
    new_reaction: Vec<Reaction>,
}

#[derive(Deserialize)]
struct Reaction {
    emoji: Option<String>,
    custom_emoji_id: Option<String>,
}

impl Reaction {
    fn label(&self) -> Option<String> {
        self.emoji.clone().or_else(|| {
            self.custom_emoji_id
                .as_ref()
                .map(|id| format!("custom:{id}"))
        })
    }
}

/// Normalizes one update received by bot `bot_name` of `tenant`.
pub fn normalize(
    tenant: &str,
    bot_name: &str,
    bot: &TelegramBot,
    body: &[u8],
    now_ms: i64,
) -> Result<Normalized> {
    let update: Update = parse_json(ADAPTER, body)?;
    let channel = Channel {
        tenant,
        channel_type: "telegram",
        channel_id: bot_name,
    };
    let id = format!("telegram:{bot_name}:{}", update.update_id);
    let mut out = Normalized::default();
    if let Some(message) = update.message {
        message_event(&channel, bot, id, message, false, &mut out)?;
    } else if let Some(message) = update.edited_message {
        message_event(&channel, bot, id, message, true, &mut out)?;
    } else if let Some(query) = update.callback_query {
        match (query.data, query.from.is_bot) {
            (Some(data), false) => {
                let urn = format!("telegram:{}", query.from.id);
                let payload = Payload::Message(MessagePayload {
                    text: None,
                    kind: "button".into(),
                    media: None,
                    reply_payload: Some(data),
                    edited: false,
                });
                let event = channel.event(id, &urn, EventType::MessageReceived, now_ms, payload);
                out.events
                    .push(with_origin(event, query.from.username, Some(query.id)));
            }
            _ => out.ignore(ADAPTER, "callback_query without data"),
        }
    } else if let Some(member) = update.my_chat_member {
        if member.chat.is_private_with(member.from.id) && member.new_chat_member.status == "kicked"
        {
            let urn = format!("telegram:{}", member.from.id);
            let at = secs_to_ms(ADAPTER, member.date)?;
            let event = channel.event(id, &urn, EventType::ContactBlocked, at, Payload::None);
            out.events
                .push(with_origin(event, member.from.username, None));
        } else {
            out.ignore(ADAPTER, "my_chat_member");
        }
    } else if let Some(reaction) = update.message_reaction {
        reaction_event(&channel, id, reaction, &mut out)?;
    } else {
        out.ignore(ADAPTER, "update kind");
    }
    Ok(out)
}

fn message_event(
    channel: &Channel<'_>,
    bot: &TelegramBot,
    id: String,
    message: Message,
    edited: bool,
    out: &mut Normalized,
) -> Result<()> {
    let Some(from) = message.from.as_ref().filter(|from| !from.is_bot) else {
        out.ignore(ADAPTER, "message without a human sender");
        return Ok(());
    };
    let at = secs_to_ms(ADAPTER, message.edit_date.unwrap_or(message.date))?;
    let provider_id = format!("{}:{}", message.chat.id, message.message_id);
    if Some(message.chat.id) == bot.managers_chat_id {
        return manager_reply(channel, id, &message, at, provider_id, out);
    }
    if !message.chat.is_private_with(from.id) {
        out.ignore(ADAPTER, "message in a group chat");
        return Ok(());
    }
    let urn = format!("telegram:{}", from.id);
    let username = from.username.clone();
    let Some(payload) = message_payload(message, edited) else {
        out.ignore(ADAPTER, "service message");
        return Ok(());
    };
    let event = channel.event(id, &urn, EventType::MessageReceived, at, payload);
    out.events
        .push(with_origin(event, username, Some(provider_id)));
    Ok(())
}

fn message_payload(message: Message, edited: bool) -> Option<Payload> {
    let file_media = |file: &File, caption: &Option<String>| Media {
        url: format!("telegram-file:{}", file.file_id),
        mime_type: file.mime_type.clone(),
        caption: caption.clone(),
    };
    let (kind, text, media) = if let Some(text) = message.text {
        ("text", Some(text), None)
    } else if let Some(photos) = &message.photo {
        // Sizes come smallest first; the last is the original.
        let largest = photos.last()?;
        let mut media = file_media(largest, &message.caption);
        media.mime_type.get_or_insert_with(|| "image/jpeg".into());
        ("image", message.caption.clone(), Some(media))
    } else if let Some((kind, file)) = [
        ("video", &message.video),
        ("video", &message.animation),
        ("audio", &message.audio),
        ("audio", &message.voice),
        ("document", &message.document),
        ("sticker", &message.sticker),
    ]
    .into_iter()
    .find_map(|(kind, file)| file.as_ref().map(|file| (kind, file)))
    {
        let media = file_media(file, &message.caption);
        (kind, message.caption.clone(), Some(media))
    } else if let Some(location) = message.location {
        let text = format!("{},{}", location.latitude, location.longitude);
        ("location", Some(text), None)
    } else if let Some(contact) = message.contact {
        ("contact", Some(contact.phone_number), None)
    } else {
        return None;
    };
    Some(Payload::Message(MessagePayload {
        text,
        kind: kind.into(),
        media,
        reply_payload: None,
        edited,
    }))
}

/// A manager wrote in a forum topic of the support supergroup: the engine maps the
/// topic (`telegram-topic:<chat>:<thread>`) to the contact it was opened for.
fn manager_reply(
    channel: &Channel<'_>,
    id: String,
    message: &Message,
    at: i64,
    provider_id: String,
    out: &mut Normalized,
) -> Result<()> {
    let (Some(thread), true, Some(from)) = (
        message.message_thread_id,
        message.is_topic_message,
        message.from.as_ref(),
    ) else {
        out.ignore(ADAPTER, "managers' chat message outside a topic");
        return Ok(());
    };
    let Some(text) = message.text.as_ref().or(message.caption.as_ref()) else {
        out.ignore(ADAPTER, "managers' topic message without text");
        return Ok(());
    };
    let chat = message.chat.id;
    let urn = identity::telegram_topic_urn(chat, thread);
    let mut fields = BTreeMap::new();
    fields.insert("chat_id".to_owned(), Scalar::Long(chat));
    fields.insert("thread_id".to_owned(), Scalar::Long(thread));
    fields.insert("message_id".to_owned(), Scalar::Long(message.message_id));
    fields.insert("text".to_owned(), Scalar::String(text.clone()));
    fields.insert("manager".to_owned(), Scalar::Long(from.id));
    if let Some(username) = &from.username {
        fields.insert(
            "manager_username".to_owned(),
            Scalar::String(username.clone()),
        );
    }
    let payload = Payload::Custom(CustomPayload {
        name: MANAGER_REPLY.into(),
        fields,
    });
    let mut event = channel.event(id, &urn, EventType::Custom, at, payload);
    if let Some(origin) = event.origin.as_mut() {
        // The chat the reply was written in; the bot stays visible in the event id.
        origin.channel_id = chat.to_string();
    }
    out.events
        .push(with_origin(event, from.username.clone(), Some(provider_id)));
    Ok(())
}

fn reaction_event(
    channel: &Channel<'_>,
    id: String,
    reaction: MessageReaction,
    out: &mut Normalized,
) -> Result<()> {
    let Some(user) = reaction.user.filter(|user| !user.is_bot) else {
        out.ignore(ADAPTER, "anonymous reaction");
        return Ok(());
    };
    let (emoji, removed) = match reaction.new_reaction.first().and_then(Reaction::label) {
        Some(emoji) => (emoji, false),
        None => match reaction.old_reaction.first().and_then(Reaction::label) {
            Some(emoji) => (emoji, true),
            None => {
                out.ignore(ADAPTER, "empty reaction");
                return Ok(());
            }
        },
    };
    let at = secs_to_ms(ADAPTER, reaction.date)?;
    let urn = format!("telegram:{}", user.id);
    let payload = Payload::Reaction(ReactionPayload {
        message_id: format!("{}:{}", reaction.chat.id, reaction.message_id),
        emoji,
        removed,
    });
    let event = channel.event(id, &urn, EventType::ReactionReceived, at, payload);
    out.events.push(with_origin(event, user.username, None));
    Ok(())
}
