//! Action workers: consume `sluice.actions` and carry each action out once —
//! messages through channel APIs, AI completions, custom HTTP functions, profile
//! and session updates, custom events — with rate limits, retries and results
//! reported back as events. Built by issue #7; today the crate holds no code yet.
