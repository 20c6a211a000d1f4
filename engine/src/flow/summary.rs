//! A stable, human-readable rendering of a compiled flow — what golden tests pin and what
//! `sluice flow compile` puts into its artifact for people to read.

use std::fmt::Write as _;

use sluice_schemas::EventType;

use super::graph::CompiledFlow;
use super::node::{NodeKind, ResponseField, SendChannel, WaitSpec};
use super::trigger::{Pattern, Reentry, Schedule, TriggerKind};

/// The summary: header, settings, triggers and their index, then every node with its
/// parameters and exit targets.
pub fn summary(flow: &CompiledFlow) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "flow {} v{} ({}) {:?}",
        flow.id,
        flow.version,
        flow.kind.as_str(),
        flow.name
    );
    let _ = writeln!(s, "hash {}", flow.content_hash);
    let st = &flow.settings;
    let _ = writeln!(
        s,
        "settings: timezone={} step_limit={}",
        st.timezone.name(),
        st.step_limit
    );
    if let Some(h) = &st.working_hours {
        let _ = writeln!(s, "  working_hours {h}");
    }
    if let Some(q) = &st.quiet_hours {
        let _ = writeln!(s, "  quiet_hours {} mode={:?}", q.hours, q.mode);
    }
    if let Some(c) = &st.frequency_cap {
        let _ = writeln!(s, "  frequency_cap {} per {:?}", c.count, c.per);
    }
    for g in &st.goal_events {
        let _ = writeln!(s, "  goal {g}");
    }
    for g in &st.exit_events {
        let _ = writeln!(s, "  exit {g}");
    }
    if !flow.params.is_empty() {
        let _ = writeln!(s, "params: {}", flow.params.join(", "));
    }
    let _ = writeln!(s, "start: {}", flow.node(flow.start).id);
    let _ = writeln!(s, "triggers:");
    for (i, t) in flow.triggers.iter().enumerate() {
        let what = match &t.kind {
            TriggerKind::Event(m) => format!("event {m}"),
            TriggerKind::Schedule(Schedule::Cron(c)) => format!("schedule cron {:?}", c.source),
            TriggerKind::Schedule(Schedule::Yearly { operand, time }) => {
                format!("schedule yearly on {operand} at {}", time.format("%H:%M"))
            }
            TriggerKind::Pattern(p) => format!("pattern {}", pattern(p)),
        };
        let reentry = match t.reentry {
            Reentry::Always => "always".to_owned(),
            Reentry::Once => "once".to_owned(),
            Reentry::NotWhileActive => "not_while_active".to_owned(),
            Reentry::OncePer(d) => format!("once_per {d:?}"),
        };
        let _ = write!(
            s,
            "  t{i} {what} reentry={reentry} entry={}",
            flow.node(t.entry).id
        );
        if let Some(f) = &t.filter {
            let _ = write!(s, " filter {f}");
        }
        if let Some(r) = &t.dedupe_ref {
            let _ = write!(s, " ref {r}");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "index:");
    for ty in EventType::ALL {
        let (ev, pat) = (flow.triggers_for(*ty), flow.patterns_observing(*ty));
        if !ev.is_empty() {
            let _ = writeln!(s, "  {ty} -> {ev:?}");
        }
        if !pat.is_empty() {
            let _ = writeln!(s, "  {ty} (window) -> {pat:?}");
        }
    }
    if !flow.scheduled().is_empty() {
        let _ = writeln!(s, "  schedule -> {:?}", flow.scheduled());
    }
    let _ = writeln!(s, "nodes:");
    for (i, n) in flow.nodes.iter().enumerate() {
        let wait = if n.kind.is_waiting() { " [waits]" } else { "" };
        let _ = writeln!(
            s,
            "  {i} {} {}{wait}: {}",
            n.id,
            n.kind.type_name(),
            params(&n.kind)
        );
        for (name, target) in n.kind.exit_names().iter().zip(&n.exits) {
            let target = target.map_or_else(
                || "(end)".to_owned(),
                |t| format!("{} {}", t.0, flow.node(t).id),
            );
            let _ = writeln!(s, "      {name} -> {target}");
        }
    }
    s
}

fn pattern(p: &Pattern) -> String {
    match p {
        Pattern::NotFollowedBy {
            first,
            then,
            within,
        } => format!("{first} not followed by {then} within {within:?}"),
        Pattern::AtLeast {
            event,
            count,
            within,
        } => format!("at least {count} of {event} within {within:?}"),
        Pattern::SumAbove {
            event,
            operand,
            above,
            within,
        } => format!("sum of {operand} over {event} above {above} within {within:?}"),
        Pattern::Absence { event, period } => format!("no {event} for {period:?}"),
    }
}

fn params(kind: &NodeKind) -> String {
    let opt = |t: &Option<super::template::Text>| {
        t.as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string)
    };
    match kind {
        NodeKind::SendMessage {
            text,
            media,
            buttons,
            channel,
            to,
        } => {
            let mut s = format!("text={}", opt(text));
            match channel {
                SendChannel::Event => {}
                SendChannel::Contact => s.push_str(" channel=contact"),
                SendChannel::Type(t) => {
                    let _ = write!(s, " channel={t}");
                }
            }
            if let Some(to) = to {
                let _ = write!(s, " to={to}");
            }
            if let Some(m) = media {
                let _ = write!(s, " media={}", m.url);
            }
            if !buttons.is_empty() {
                let ids: Vec<&str> = buttons.iter().map(|b| b.id.as_str()).collect();
                let _ = write!(s, " buttons=[{}]", ids.join(", "));
            }
            s
        }
        NodeKind::SendShort { shortcut, text } => format!("shortcut={shortcut:?} text={text}"),
        NodeKind::SendTemplate {
            template,
            language,
            parameters,
        } => format!(
            "template={template:?} language={language:?} parameters={}",
            parameters.len()
        ),
        NodeKind::AiComplete {
            model,
            prompt,
            result_var,
            timeout,
            ..
        } => format!("model={model:?} prompt={prompt} result_var={result_var} timeout={timeout:?}"),
        NodeKind::UpdateField { field, value } => format!("field={field} value={}", opt(value)),
        NodeKind::Tag { tag, .. } => format!("tag={tag:?}"),
        NodeKind::AssignSession { user, team } => format!("user={} team={}", opt(user), opt(team)),
        NodeKind::UnassignSession => String::new(),
        NodeKind::CloseSession { message } => format!("message={}", opt(message)),
        NodeKind::SurveySession { survey } => format!("survey={survey:?}"),
        NodeKind::StartFlow {
            flow,
            wait,
            params,
            result_var,
            timeout,
        } => {
            let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
            format!(
                "flow={flow:?} mode={} params=[{}] result_var={result_var:?} timeout={timeout:?}",
                if *wait { "call" } else { "fire_and_forget" },
                names.join(", ")
            )
        }
        NodeKind::PublishEvent { name, fields } => {
            let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            format!("name={name:?} fields=[{}]", names.join(", "))
        }
        NodeKind::SetVar { var, value } => format!("var={var} value={value}"),
        NodeKind::Http {
            method,
            url,
            timeout,
            response,
            ..
        } => {
            let map: Vec<String> = response
                .iter()
                .map(|(v, f)| match f {
                    ResponseField::Status => format!("{v}=status"),
                    ResponseField::Body => format!("{v}=body"),
                    ResponseField::Pointer(p) => format!("{v}={p}"),
                })
                .collect();
            format!(
                "{method} {url} timeout={timeout:?} response=[{}]",
                map.join(", ")
            )
        }
        NodeKind::Ask {
            text,
            expect,
            choices,
            retries,
            var,
            timeout,
            ..
        } => {
            let ids: Vec<&str> = choices.iter().map(|b| b.id.as_str()).collect();
            format!(
                "text={text} expect={expect:?} choices=[{}] retries={retries} var={var} timeout={timeout:?}",
                ids.join(", ")
            )
        }
        NodeKind::Wait(WaitSpec::For(d)) => format!("for {d:?}"),
        NodeKind::Wait(WaitSpec::UntilTime { time, weekdays }) => {
            format!("until {} on {weekdays}", time.format("%H:%M"))
        }
        NodeKind::Wait(WaitSpec::UntilDate { operand, time }) => format!(
            "until {operand} at {:?}",
            time.map(|t| t.format("%H:%M").to_string())
        ),
        NodeKind::Wait(WaitSpec::UntilOpen(h)) => format!(
            "until working hours {}",
            h.as_ref()
                .map_or_else(|| "(flow's)".to_owned(), ToString::to_string)
        ),
        NodeKind::Consent { topic, timeout, .. } => format!("topic={topic} timeout={timeout:?}"),
        NodeKind::If { condition } => format!("{condition}"),
        NodeKind::Switch { cases } => {
            let c: Vec<String> = cases.iter().map(|(n, c)| format!("{n}: {c}")).collect();
            c.join("; ")
        }
        NodeKind::Split { branches } => {
            let b: Vec<String> = branches.iter().map(|(n, w)| format!("{n}={w}")).collect();
            b.join(", ")
        }
        NodeKind::WorkingHours { hours } => hours
            .as_ref()
            .map_or_else(|| "(flow's hours)".to_owned(), ToString::to_string),
        NodeKind::End { outcome } => format!("outcome={outcome:?}"),
    }
}
