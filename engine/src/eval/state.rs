//! A contact's state: what the engine knows about one contact, kept in the state
//! store between inputs (encoded by [`ContactState::encode`]).
//!
//! Layout: small sorted vectors instead of maps (a `BTreeMap` node alone is ~500 bytes),
//! boxed strings instead of `String` (16 bytes instead of 24), event ids kept as 64-bit
//! hashes. The encoding is `postcard` (varints, no field names) behind a one-byte format
//! version; [`ContactState::decode`] never panics on garbage, it returns an error.
//!
//! Format versions: 1 is the state without `alias_of`; 2 (written today) appends
//! `alias_of` as a trailer after the version-1 fields (postcard writes fields in order,
//! and `alias_of` is the last one), so a version-1 state decodes as one without an alias.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::run::Run;
use super::windows::WindowState;

/// How many recently applied event ids a contact remembers for dedupe. Ingest dedupes by
/// provider id first; this window catches bus redeliveries and replays, which arrive
/// close together. 32 ids × 8 bytes.
pub const DEDUPE_WINDOW: usize = 32;

/// How many message sends a contact remembers for frequency caps (oldest dropped first).
pub const SEND_HISTORY: usize = 32;

/// How many identities (URNs) a contact keeps.
pub const MAX_URNS: usize = 16;

/// The stored format's version byte (see the module docs).
const FORMAT: u8 = 2;

/// The format before `alias_of`: the same fields without the trailer.
const FORMAT_V1: u8 = 1;

/// Where messages to the contact go when no event says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Channel {
    /// `telegram`, `whatsapp`, …
    pub channel_type: Box<str>,
    /// The channel (bot, number) the contact wrote to.
    pub channel_id: Box<str>,
    /// The address on that channel (URN or provider id).
    pub to: Box<str>,
}

/// When a flow last started a run for the contact (re-entry rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowHistory {
    /// The flow id.
    pub flow: Arc<str>,
    /// When its last run started, Unix ms.
    pub last_started: i64,
}

/// A scheduled trigger's next occurrence for this contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEntry {
    /// The flow id.
    pub flow: Arc<str>,
    /// The flow version the entry was computed for.
    pub version: u32,
    /// The trigger's index in that version.
    pub trigger: u32,
    /// The next occurrence, Unix ms.
    pub due: i64,
}

/// One of the contact-level timers (schedules, windows): the token of the timer that is
/// currently set and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimerSlot {
    /// Bumped whenever the timer changes; older keys are stale.
    pub token: u32,
    /// When the current timer is due, if one is set.
    pub due: Option<i64>,
}

/// Everything the engine keeps about one contact.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactState {
    /// Whether `contact.created` has been processed for this contact.
    pub created: bool,
    /// The tenant (from the contact's first event).
    pub tenant: Box<str>,
    /// The contact id (from the contact's first event).
    pub contact_id: Box<str>,
    /// Profile fields, sorted by name.
    pub fields: Vec<(Box<str>, Box<str>)>,
    /// Tags, sorted, as written.
    pub tags: Vec<Box<str>>,
    /// Identities such as `telegram:123`, sorted.
    pub urns: Vec<Box<str>>,
    /// The contact's username on its channel.
    pub username: Option<Box<str>>,
    /// IANA time zone; the flow's zone applies when unset.
    pub timezone: Option<Box<str>>,
    /// Language code.
    pub language: Option<Box<str>>,
    /// Where messages go by default.
    pub channel: Option<Channel>,
    /// Active runs, sorted by id.
    pub runs: Vec<Run>,
    /// The next run id (ids below [`FIRST_RUN_ID`](super::run::FIRST_RUN_ID) are reserved).
    pub next_run: u64,
    /// Hashes of recently applied event ids: a ring of at most [`DEDUPE_WINDOW`].
    pub recent: Vec<u64>,
    /// Where the next id goes in `recent` once it is full.
    pub recent_next: u32,
    /// Per flow: when the contact last started a run of it.
    pub history: Vec<FlowHistory>,
    /// When message actions were sent: a ring of at most [`SEND_HISTORY`].
    pub sends: Vec<i64>,
    /// Where the next send goes in `sends` once it is full.
    pub sends_next: u32,
    /// Pattern windows and schedules; boxed, since most contacts of most tenants have
    /// none (`None` until a pattern or scheduled flow is loaded).
    pub clocks: Option<Box<Clocks>>,
    /// The primary contact this one is an alias of: every event it receives is forwarded
    /// there (see [`crate::eval`], "Identity linking"). Keep it the last field: it is
    /// format 2's trailer.
    #[serde(default)]
    pub alias_of: Option<Box<str>>,
}

/// A contact's pattern windows and scheduled triggers, with their two timers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Clocks {
    /// Pattern trigger windows.
    pub windows: Vec<WindowState>,
    /// Fingerprint of the pattern triggers the windows were built for.
    pub windows_fp: u64,
    /// The window deadline timer.
    pub window_timer: TimerSlot,
    /// Scheduled triggers' next occurrences.
    pub schedule: Vec<ScheduleEntry>,
    /// Fingerprint of the scheduled flows the schedule was computed for.
    pub schedule_fp: u64,
    /// The schedule timer.
    pub schedule_timer: TimerSlot,
}

impl ContactState {
    /// The state's stored form: a version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let out = vec![FORMAT];
        match postcard::to_extend(self, out) {
            Ok(bytes) => bytes,
            // Serializing plain data into a Vec cannot fail; keep the version byte alone
            // rather than panic, which decodes as an error.
            Err(_) => vec![FORMAT],
        }
    }

    /// Reads a stored state. Garbage is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> crate::Result<Self> {
        match bytes.split_first() {
            Some((&FORMAT, rest)) => decode_body(rest),
            Some((&FORMAT_V1, rest)) => {
                // Version 1 ends where the `alias_of` trailer begins: add `None` (0).
                let mut body = Vec::with_capacity(rest.len() + 1);
                body.extend_from_slice(rest);
                body.push(0);
                decode_body(&body)
            }
            Some((v, _)) => Err(crate::Error::State(format!(
                "unknown contact state format {v}"
            ))),
            None => Err(crate::Error::State("empty contact state".into())),
        }
    }

    /// An estimate of the bytes this state occupies in memory: its own size plus the
    /// heap blocks it owns (capacities, not lengths).
    pub fn memory_size(&self) -> usize {
        fn s(b: &str) -> usize {
            b.len()
        }
        let mut n = std::mem::size_of::<Self>();
        n += s(&self.tenant) + s(&self.contact_id);
        n += self.fields.capacity() * std::mem::size_of::<(Box<str>, Box<str>)>();
        n += self.fields.iter().map(|(k, v)| s(k) + s(v)).sum::<usize>();
        for list in [&self.tags, &self.urns] {
            n += list.capacity() * std::mem::size_of::<Box<str>>();
            n += list.iter().map(|t| s(t)).sum::<usize>();
        }
        for o in [&self.username, &self.timezone, &self.language]
            .into_iter()
            .flatten()
        {
            n += s(o);
        }
        if let Some(c) = &self.channel {
            n += s(&c.channel_type) + s(&c.channel_id) + s(&c.to);
        }
        n += self.alias_of.as_deref().map_or(0, s);
        n += self.runs.capacity() * std::mem::size_of::<Run>();
        n += self.runs.iter().map(Run::heap_size).sum::<usize>();
        n += self.recent.capacity() * 8 + self.sends.capacity() * 8;
        n += self.history.capacity() * std::mem::size_of::<FlowHistory>();
        if let Some(c) = &self.clocks {
            n += std::mem::size_of::<Clocks>();
            n += c.windows.capacity() * std::mem::size_of::<WindowState>();
            n += c.windows.iter().map(WindowState::heap_size).sum::<usize>();
            n += c.schedule.capacity() * std::mem::size_of::<ScheduleEntry>();
        }
        n
    }

    /// The windows and schedules, created on first use.
    pub fn clocks_mut(&mut self) -> &mut Clocks {
        self.clocks.get_or_insert_with(Default::default)
    }

    /// A profile field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.fields[i].1)
    }

    /// Sets (or with `None` clears) a profile field; returns the old value when it changed.
    /// `timezone`, `language` and `username` are kept in their own slots.
    pub fn set_field(&mut self, name: &str, value: Option<&str>) -> Option<Option<String>> {
        let slot = match name {
            "timezone" => Some(&mut self.timezone),
            "language" => Some(&mut self.language),
            "username" => Some(&mut self.username),
            _ => None,
        };
        if let Some(slot) = slot {
            let old = slot.as_deref().map(str::to_owned);
            if old.as_deref() == value {
                return None;
            }
            *slot = value.map(Box::from);
            return Some(old);
        }
        match (
            self.fields.binary_search_by(|(k, _)| (**k).cmp(name)),
            value,
        ) {
            (Ok(i), Some(v)) if &*self.fields[i].1 == v => None,
            (Ok(i), Some(v)) => Some(Some(
                std::mem::replace(&mut self.fields[i].1, Box::from(v)).into(),
            )),
            (Ok(i), None) => Some(Some(self.fields.remove(i).1.into())),
            (Err(i), Some(v)) => {
                self.fields.insert(i, (Box::from(name), Box::from(v)));
                Some(None)
            }
            (Err(_), None) => None,
        }
    }

    /// True when the contact has the tag (case-insensitive).
    pub fn has_tag(&self, folded: &str) -> bool {
        self.tags.iter().any(|t| t.to_lowercase() == folded)
    }

    /// Adds or removes a tag; true when that changed anything.
    pub fn set_tag(&mut self, tag: &str, add: bool) -> bool {
        let folded = tag.to_lowercase();
        let pos = self.tags.iter().position(|t| t.to_lowercase() == folded);
        match (pos, add) {
            (None, true) => {
                let at = self.tags.partition_point(|t| &**t < tag);
                self.tags.insert(at, Box::from(tag));
                true
            }
            (Some(i), false) => {
                self.tags.remove(i);
                true
            }
            _ => false,
        }
    }

    /// Records an identity.
    pub fn add_urn(&mut self, urn: &str) {
        if let Err(i) = self.urns.binary_search_by(|u| (**u).cmp(urn))
            && self.urns.len() < MAX_URNS
        {
            self.urns.reserve_exact(1);
            self.urns.insert(i, Box::from(urn));
        }
    }

    /// True when the event id hash was applied recently.
    pub fn seen(&self, id_hash: u64) -> bool {
        self.recent.contains(&id_hash)
    }

    /// Remembers an applied event id hash, forgetting the oldest beyond the window.
    pub fn remember(&mut self, id_hash: u64) {
        ring_push(
            &mut self.recent,
            &mut self.recent_next,
            DEDUPE_WINDOW,
            id_hash,
        );
    }

    /// Remembers a message send for frequency caps.
    pub fn record_send(&mut self, at: i64) {
        ring_push(&mut self.sends, &mut self.sends_next, SEND_HISTORY, at);
    }

    /// How many messages were sent after `since`.
    pub fn sends_since(&self, since: i64) -> usize {
        self.sends.iter().filter(|t| **t > since).count()
    }

    /// When the contact last started a run of `flow`.
    pub fn last_started(&self, flow: &str) -> Option<i64> {
        self.history
            .binary_search_by(|h| (*h.flow).cmp(flow))
            .ok()
            .map(|i| self.history[i].last_started)
    }

    /// Records that a run of `flow` started at `at`.
    pub fn record_start(&mut self, flow: &Arc<str>, at: i64) {
        match self.history.binary_search_by(|h| (*h.flow).cmp(flow)) {
            Ok(i) => self.history[i].last_started = at,
            Err(i) => {
                self.history.reserve_exact(1);
                self.history.insert(
                    i,
                    FlowHistory {
                        flow: flow.clone(),
                        last_started: at,
                    },
                )
            }
        }
    }

    /// The index of the run with this id.
    pub fn run_index(&self, id: u64) -> Option<usize> {
        self.runs.binary_search_by_key(&id, |r| r.id).ok()
    }

    /// Inserts a run, keeping runs sorted by id (and the vector exactly sized: a run
    /// is ~200 bytes, so growth by doubling would waste more than it saves).
    pub fn insert_run(&mut self, run: Run) {
        let at = self.runs.partition_point(|r| r.id < run.id);
        self.runs.reserve_exact(1);
        self.runs.insert(at, run);
    }
}

/// Decodes a state's postcard body; trailing bytes are an error.
fn decode_body(body: &[u8]) -> crate::Result<ContactState> {
    let (state, tail): (ContactState, &[u8]) = postcard::take_from_bytes(body)
        .map_err(|e| crate::Error::State(format!("undecodable contact state: {e}")))?;
    if !tail.is_empty() {
        return Err(crate::Error::State(format!(
            "contact state has {} trailing bytes",
            tail.len()
        )));
    }
    Ok(state)
}

/// Pushes into a ring of `cap` items: appends until full, then overwrites the oldest.
fn ring_push<T>(ring: &mut Vec<T>, next: &mut u32, cap: usize, item: T) {
    if ring.len() < cap {
        if ring.len() == ring.capacity() {
            ring.reserve_exact(ring.len().max(1).min(cap - ring.len()));
        }
        ring.push(item);
        return;
    }
    let at = (*next as usize) % cap;
    ring[at] = item;
    *next = u32::try_from((at + 1) % cap).unwrap_or(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let mut s = ContactState {
            created: true,
            tenant: "acme".into(),
            contact_id: "c-1".into(),
            ..Default::default()
        };
        s.set_field("city", Some("Berlin"));
        s.set_tag("VIP", true);
        s.remember(42);
        let bytes = s.encode();
        assert_eq!(ContactState::decode(&bytes).unwrap(), s);
        assert!(ContactState::decode(&[]).is_err());
        assert!(ContactState::decode(&[9, 1, 2]).is_err());
        assert!(ContactState::decode(&bytes[..bytes.len() - 1]).is_err());
        for cut in 0..bytes.len() {
            let mut b = bytes.clone();
            b[cut] ^= 0xff;
            let _ = ContactState::decode(&b);
        }
    }

    #[test]
    fn version_1_states_decode_without_an_alias() {
        let mut s = ContactState {
            created: true,
            tenant: "acme".into(),
            contact_id: "c-1".into(),
            ..Default::default()
        };
        s.add_urn("telegram:42");
        let v2 = s.encode();
        assert_eq!(v2[0], 2);
        // Version 1 is version 2 without the trailer (`None` is one 0 byte).
        assert_eq!(v2.last(), Some(&0));
        let mut v1 = v2[..v2.len() - 1].to_vec();
        v1[0] = 1;
        assert_eq!(ContactState::decode(&v1).unwrap(), s);
        s.alias_of = Some("c-primary".into());
        assert_eq!(ContactState::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn fields_tags_and_dedupe_window() {
        let mut s = ContactState::default();
        assert_eq!(s.set_field("a", Some("1")), Some(None));
        assert_eq!(s.set_field("a", Some("1")), None);
        assert_eq!(s.set_field("a", Some("2")), Some(Some("1".into())));
        assert_eq!(s.set_field("timezone", Some("Europe/Berlin")), Some(None));
        assert_eq!(s.timezone.as_deref(), Some("Europe/Berlin"));
        assert!(s.set_tag("New", true));
        assert!(!s.set_tag("new", true));
        assert!(s.has_tag("new"));
        assert!(s.set_tag("NEW", false));
        for i in 0..(DEDUPE_WINDOW as u64 + 1) {
            s.remember(i);
        }
        assert!(!s.seen(0));
        assert!(s.seen(DEDUPE_WINDOW as u64));
    }
}
