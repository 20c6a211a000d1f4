//! The engine's virtual time, a test hook: `sluice engine --virtual-clock START`
//! (`SLUICE_VIRTUAL_CLOCK`) runs the engine on a clock that only `/debug/clock` on
//! the metrics address moves, so end-to-end tests can run scenarios with hours and
//! days of waits in seconds. Refused unless `SLUICE_TEST_HOOKS=1`: in production
//! the engine reads the wall clock, always.
//!
//! - `GET /debug/clock` answers `{"now": <Unix ms>}`.
//! - `POST /debug/clock {"advance_to": <Unix ms>}` moves time forward and fires
//!   every timer due on the way at its own due time, as `sluice flow test` does:
//!   the clock stops at each due timer until the engine has fired it (it left the
//!   timer store, so its actions are published and its state committed), then
//!   goes on. It answers `{"now": …, "fired": N}` once all have fired.
//! - `POST /debug/clock {"reset": <Unix ms>}` sets the time, backwards too, so one
//!   engine can run scenarios that start at different times. Pending timers stay
//!   pending.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use sluice_engine::{runtime::Clock, scenario::parse_time};
use sluice_infra::store::TimerStore;

/// How long one due timer may take to fire before the move is given up.
const FIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Timers one move may fire before it is stopped as a runaway loop.
const MAX_FIRES: usize = 10_000;

/// A clock that `/debug/clock` sets.
#[derive(Debug)]
struct DebugClock {
    now: AtomicI64,
}

impl Clock for DebugClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// The virtual clock and what `/debug/clock` needs to move it.
#[derive(Clone)]
pub(crate) struct ClockHook {
    clock: Arc<DebugClock>,
    /// The engine's timer store, once the engine is built.
    timers: Arc<OnceLock<Arc<dyn TimerStore>>>,
    /// One move at a time.
    moving: Arc<tokio::sync::Mutex<()>>,
}

impl ClockHook {
    /// The hook for `--virtual-clock START` (RFC 3339 or Unix ms), if given;
    /// refused without `SLUICE_TEST_HOOKS=1`.
    pub(crate) fn from_flag(start: Option<&str>) -> anyhow::Result<Option<ClockHook>> {
        let Some(start) = start else {
            return Ok(None);
        };
        if std::env::var("SLUICE_TEST_HOOKS").as_deref() != Ok("1") {
            bail!("--virtual-clock is a test hook: it is refused unless SLUICE_TEST_HOOKS=1");
        }
        let now = match start.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => parse_time(start, 0).map_err(|e| anyhow::anyhow!("--virtual-clock: {e}"))?,
        };
        tracing::warn!(
            now,
            "running on a virtual clock (test hook): /debug/clock moves it"
        );
        Ok(Some(ClockHook {
            clock: Arc::new(DebugClock {
                now: AtomicI64::new(now),
            }),
            timers: Arc::default(),
            moving: Arc::default(),
        }))
    }

    /// The clock the engine runs on.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock) as Arc<dyn Clock>
    }

    /// Lets `advance_to` see the engine's timers.
    pub(crate) fn attach(&self, timers: Arc<dyn TimerStore>) {
        let _ = self.timers.set(timers);
    }

    /// The `/debug/clock` route.
    pub(crate) fn routes(&self) -> Router {
        Router::new()
            .route("/debug/clock", get(read).post(change))
            .with_state(self.clone())
    }
}

async fn read(State(hook): State<ClockHook>) -> Json<Value> {
    Json(json!({ "now": hook.clock.now() }))
}

fn refuse(status: StatusCode, error: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": error.to_string() }))).into_response()
}

async fn change(State(hook): State<ClockHook>, Json(body): Json<Value>) -> Response {
    let _moving = hook.moving.lock().await;
    if let Some(to) = body.get("reset").and_then(Value::as_i64) {
        hook.clock.now.store(to, Ordering::SeqCst);
        tracing::info!(now = to, "virtual clock reset");
        return Json(json!({ "now": to, "fired": 0 })).into_response();
    }
    let Some(to) = body.get("advance_to").and_then(Value::as_i64) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            r#"expected {"advance_to": <Unix ms>} or {"reset": <Unix ms>}"#,
        );
    };
    let Some(timers) = hook.timers.get() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the engine is starting");
    };
    match advance(&hook.clock, timers.as_ref(), to).await {
        Ok(fired) => Json(json!({ "now": hook.clock.now(), "fired": fired })).into_response(),
        Err(error) => refuse(StatusCode::INTERNAL_SERVER_ERROR, error),
    }
}

/// Moves the clock to `to`, stopping at each timer due by then until it fired.
async fn advance(clock: &DebugClock, timers: &dyn TimerStore, to: i64) -> Result<usize, String> {
    let mut fired = 0;
    loop {
        let next = timers
            .due(None, to.saturating_add(1), 1)
            .await
            .map_err(|e| format!("reading due timers: {e}"))?;
        let Some(timer) = next.into_iter().next() else {
            break;
        };
        clock.now.fetch_max(timer.due_at, Ordering::SeqCst);
        let deadline = Instant::now() + FIRE_TIMEOUT;
        while timers
            .contains(&timer)
            .await
            .map_err(|e| format!("reading a timer: {e}"))?
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "the timer of {} (run {}) due at {} did not fire within {FIRE_TIMEOUT:?}",
                    timer.contact, timer.run, timer.due_at
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fired += 1;
        if fired > MAX_FIRES {
            return Err(format!(
                "more than {MAX_FIRES} timers fired: a runaway loop?"
            ));
        }
    }
    clock.now.fetch_max(to, Ordering::SeqCst);
    tracing::info!(now = to, fired, "virtual clock advanced");
    Ok(fired)
}
