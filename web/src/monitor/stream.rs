//! One viewer's server-sent event stream: what they missed, every door and
//! controller again, then live updates, until their login or token ends.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::broadcast;

use super::{shown_event, Update};
use crate::store::passages::PassageCursor;
use crate::store::StoreResult;
use crate::ui::Clock;
use crate::AppState;

/// How often an open stream checks that its login or token still holds.
pub const CREDENTIAL_CHECK: Duration = Duration::from_secs(30);
/// Events replayed to a client that reconnects after missing some.
const REPLAY: i64 = 200;
/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

/// Whether the viewer may still watch (their session or token holds).
pub type StillAllowed = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Turns an update into a stream event for this viewer (`None`: not for them).
pub type Render = Box<dyn Fn(&Update, i64) -> Option<Event> + Send + Sync>;

/// What a new stream starts with and where it goes on from.
#[derive(Debug)]
pub struct Opened {
    first: Vec<Update>,
    replayed: HashSet<String>,
    live: broadcast::Receiver<Arc<Update>>,
}

/// Subscribes, then reads what a client resuming after `resume` (a
/// position; empty or unreadable: nothing to replay) missed.
pub async fn open(state: &AppState, resume: &str) -> StoreResult<Opened> {
    let (view, live) = state.monitor.open().await?;
    let mut first = Vec::new();
    let mut replayed = HashSet::new();
    if let Ok(after) = PassageCursor::parse(resume.trim()) {
        let missed = state.store.events_received_after(after, REPLAY).await?;
        // Places as the hub knows them, for sites and standing out.
        let doors = view.doors.iter().map(|d| (d.door.id, d.clone())).collect();
        for event in missed {
            let shown = shown_event(event, &doors);
            replayed.insert(shown.position.clone());
            first.push(Update::Event(Box::new(shown)));
        }
    }
    first.extend(view.states());
    Ok(Opened {
        first,
        replayed,
        live,
    })
}

struct Viewer {
    first: VecDeque<Event>,
    replayed: HashSet<String>,
    live: broadcast::Receiver<Arc<Update>>,
    allowed: StillAllowed,
    render: Render,
    clock: Clock,
    checked: tokio::time::Instant,
}

impl Viewer {
    /// The next event for this viewer; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.first.pop_front() {
                return Some(event);
            }
            if self.checked.elapsed() >= CREDENTIAL_CHECK {
                if !(self.allowed)().await {
                    return None;
                }
                self.checked = tokio::time::Instant::now();
            }
            let update = match tokio::time::timeout(CREDENTIAL_CHECK, self.live.recv()).await {
                Err(_) => continue,
                Ok(Ok(update)) => update,
                // Too slow a client, or the service stopping: the client
                // reconnects and catches up from its last event id.
                Ok(Err(_)) => return None,
            };
            if let Update::Event(e) = update.as_ref() {
                if self.replayed.remove(&e.position) {
                    continue;
                }
            }
            if let Some(event) = (self.render)(&update, self.clock.now()) {
                return Some(event);
            }
        }
    }
}

/// The SSE response: the opening updates, then live ones through
/// `render`, with a keep-alive; ends when `allowed` says no.
pub fn sse(
    opened: Opened,
    allowed: StillAllowed,
    render: Render,
    clock: Clock,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut first: VecDeque<Event> = opened
        .first
        .iter()
        .filter_map(|u| render(u, clock.now()))
        .collect();
    first.push_front(Event::default().retry(RETRY));
    let viewer = Viewer {
        first,
        replayed: opened.replayed,
        live: opened.live,
        allowed,
        render,
        clock,
        checked: tokio::time::Instant::now(),
    };
    let stream = futures_util::stream::unfold(viewer, |mut viewer| async move {
        let event = viewer.next().await?;
        Some((Ok(event), viewer))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
