//! Streaming a watch: the starting events, then live changes in resourceVersion order, bookmarks when asked,
//! until the timeout, a lagging client (closed, as the API server closes a too-slow watch) or an injected cut.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::table;
use crate::apiserver::{ApiError, Cluster, Filter, WatchStart, served};
use crate::faults::Faults;
use crate::json::At;
use crate::registry::{ResourceType, StorageKey};
use crate::store::Change;

pub struct Settings {
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    /// `Some(includeObject)` when the client asked for Table rows.
    pub table: Option<String>,
    pub faults: Faults,
}

/// The server's own limit on a watch, as kube-apiserver's `--min-request-timeout` gives (30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

pub fn stream(
    cluster: Arc<Cluster>,
    rt: Arc<ResourceType>,
    start: WatchStart,
    settings: Settings,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    tokio::spawn(run(cluster, rt, start, settings, tx));
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A watch that fails once accepted: one ERROR event carrying the Status, then the end of the stream. This is
/// how kube-apiserver answers a watch whose resourceVersion parsed but can no longer be served (`410 Expired`
/// after compaction): the HTTP status is 200 and clients must read the code from the event.
pub fn failed(error: &ApiError) -> Response {
    let mut line = json!({"type": "ERROR", "object": error.status()}).to_string();
    line.push('\n');
    let mut response = Response::new(Body::from(line));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

struct Writer {
    rt: Arc<ResourceType>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    table: Option<String>,
    sent: u64,
    max_events: Option<u64>,
}

impl Writer {
    /// Sends one event; false when the watch should end (client gone or event budget spent).
    async fn event(&mut self, event: &str, object: &Value) -> bool {
        let object = match &self.table {
            Some(include) if event != "BOOKMARK" => {
                let mut t = table::table(&self.rt, &[Arc::new(object.clone())], include, 0, None);
                if self.sent > 0 {
                    t["columnDefinitions"] = json!([]);
                }
                t["metadata"] = json!({"resourceVersion": object.at("/metadata/resourceVersion")});
                t
            }
            _ => return self.send(event, object).await,
        };
        self.send(event, &object).await
    }

    /// Writes one event line, serialising the object where it lies.
    async fn send(&mut self, event: &str, object: &Value) -> bool {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            r#type: &'a str,
            object: &'a Value,
        }
        let mut line = serde_json::to_vec(&Line {
            r#type: event,
            object,
        })
        .unwrap_or_default();
        line.push(b'\n');
        self.deliver(line).await
    }

    /// Writes one event line around an object serialised already (shared by every watch of the change).
    async fn send_encoded(&mut self, event: &str, object: &[u8]) -> bool {
        let mut line = Vec::with_capacity(object.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(event.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(object);
        line.extend_from_slice(b"}\n");
        self.deliver(line).await
    }

    async fn deliver(&mut self, line: Vec<u8>) -> bool {
        if self.tx.send(Ok(Bytes::from(line))).await.is_err() {
            return false;
        }
        self.sent += 1;
        self.max_events.is_none_or(|max| self.sent < max)
    }

    async fn bookmark(&mut self, rv: u64, initial_events_end: bool) -> bool {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata});
        let mut line = json!({"type": "BOOKMARK", "object": object}).to_string();
        line.push('\n');
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }
}

/// The live part of a watch: which changes it sends and the last resourceVersion it has accounted for.
struct Live {
    resource: StorageKey,
    filter: Filter,
    last_rv: u64,
}

impl Live {
    /// Sends one change of the feed if this watch shows it; false when the watch should end.
    async fn forward(&mut self, writer: &mut Writer, change: &Arc<Change>) -> bool {
        if change.rv <= self.last_rv {
            return true;
        }
        self.last_rv = change.rv;
        let seen = (change.resource == self.resource)
            .then(|| self.filter.event_for(change))
            .flatten();
        let Some((event, object)) = seen else {
            return true;
        };
        let object = served(&writer.rt, &object);
        if Arc::ptr_eq(&object, &change.object) && writer.table.is_none() {
            writer.send_encoded(event.as_str(), change.encoded()).await
        } else {
            writer.event(event.as_str(), &object).await
        }
    }
}

async fn run(
    cluster: Arc<Cluster>,
    rt: Arc<ResourceType>,
    start: WatchStart,
    settings: Settings,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    let mut limit = settings.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if let Some(max) = settings.faults.watch_max_seconds {
        limit = limit.min(Duration::from_secs_f64(max.max(0.0)));
    }
    let deadline = tokio::time::Instant::now() + limit;
    let mut writer = Writer {
        rt: rt.clone(),
        tx,
        table: settings.table,
        sent: 0,
        max_events: settings.faults.watch_max_events,
    };
    let WatchStart {
        initial,
        after,
        mut feed,
        filter,
    } = start;
    for (event, object) in &initial {
        if !writer.event(event.as_str(), object).await {
            return;
        }
    }
    if settings.send_initial_events && !writer.bookmark(after, true).await {
        return;
    }
    let mut live = Live {
        resource: rt.storage_key(),
        filter,
        last_rv: after,
    };
    let mut bookmark_timer = tokio::time::interval_at(
        tokio::time::Instant::now() + BOOKMARK_INTERVAL,
        BOOKMARK_INTERVAL,
    );
    loop {
        tokio::select! {
            change = feed.recv() => match change {
                Ok(change) => {
                    if !live.forward(&mut writer, &change).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep_until(deadline) => return,
            _ = bookmark_timer.tick(), if settings.bookmarks => {
                // The feed carries this resource's changes only, so a quiet resource's last change grows old
                // while other kinds change; a bookmark at it would fall out of the history, and the client's
                // next watch from it would get 410 and relist. As kube-apiserver does, bookmark the store's
                // current version instead. Every change of this resource up to it is in the feed already
                // (changes are sent under the store's lock), so deliver those first.
                let now = cluster.resource_version();
                loop {
                    match feed.try_recv() {
                        Ok(change) => {
                            if !live.forward(&mut writer, &change).await {
                                return;
                            }
                        }
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => return,
                    }
                }
                live.last_rv = live.last_rv.max(now);
                if !writer.bookmark(live.last_rv, false).await {
                    return;
                }
            }
        }
    }
}
