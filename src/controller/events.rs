//! Kubernetes Events as Argo Rollouts records them, for Rollouts and AnalysisRuns alike, posted in the
//! background and after the writes that move a release along.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::plan::Event;

/// The component name on Events, as Argo Rollouts records them.
const COMPONENT: &str = "rollouts-controller";

/// The object an Event is about, at `version`.
fn involved<K>(object: &K, version: &str) -> ObjectReference
where
    K: Resource<DynamicType = ()>,
{
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(object.name_any()),
        namespace: Some(object.namespace().unwrap_or_default()),
        uid: object.uid(),
        resource_version: Some(version.to_string()),
        field_path: None,
    }
}

/// The Event `event` about `involved`, reported by the process `identity`.
pub fn build(
    involved: &ObjectReference,
    event: &Event,
    identity: &str,
    now: Timestamp,
) -> KubeEvent {
    let name = involved.name.as_deref().unwrap_or_default();
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: involved.namespace.clone(),
            ..Default::default()
        },
        involved_object: involved.clone(),
        reason: Some(event.reason.clone()),
        message: Some(event.message.clone()),
        type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(identity.to_string()),
        action: Some(event.reason.clone()),
        count: Some(1),
        ..Default::default()
    }
}

/// Writers posting at once; each posts its own batches one after another.
const WRITERS: usize = 8;
/// Batches one writer's queue takes before a reconcile that records more waits for room.
const QUEUE: usize = 2048;
/// Batches one writer lets wait for a quiet moment; beyond them it posts without waiting, so a controller
/// that is never quiet still records every Event, at most this far behind.
const HOLD: usize = 1024;
/// Rollout reconciles under way at once that make a burst, during which Events wait. One Rollout
/// reconciled on its own is no burst and does not hold its Events back: the writers post them as soon
/// as they get to them, as they did before Events waited, so a controller killed between releases loses
/// no more of them than it did then.
const BURST: usize = 2;
/// How long after a burst ends its Events keep waiting. A burst of releases has short gaps (a reconcile
/// waits for the next pod to become ready, about 100 ms in kubesim); Events posted in them compete with
/// the burst's next writes.
const LULL: Duration = Duration::from_millis(250);
/// The longest an Event waits for a quiet moment.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The Events of one plan about one object, as recorded.
struct Batch {
    involved: ObjectReference,
    events: Vec<Event>,
    /// When the plan made them: the Events carry this time, however long they waited.
    at: Timestamp,
    /// When they were handed to the writer; [`MAX_WAIT`] counts from here.
    queued: Instant,
}

impl Batch {
    /// The Events to post, one nanosecond apart so they have distinct names and keep their order.
    fn build(&self, identity: &str) -> impl Iterator<Item = KubeEvent> {
        self.events.iter().enumerate().map(move |(i, event)| {
            let at = self
                .at
                .checked_add(jiff::SignedDuration::from_nanos(i as i64))
                .unwrap_or(self.at);
            build(&self.involved, event, identity, at)
        })
    }
}

/// Records Events off the reconcile path. A reconcile hands over the Events of one plan as a batch and
/// goes on. Each object's batches go to the same writer, which posts them in turn, so the Events of one
/// Rollout are recorded in the order its plans made them; different objects' batches are posted in
/// parallel.
///
/// An Event waits while [`BURST`] or more Rollout reconciles are under way (see [`Recorder::hold`]) and
/// for [`LULL`] after, so that in a burst of releases the writes that move traffic reach the API server
/// before the Events that describe them: when 1,000 Rollouts update at once, the last one's first write
/// does not queue behind the others' Events. It waits at most [`MAX_WAIT`], and not at all once
/// [`HOLD`] batches are queued behind it; it carries the time its plan made it, however long it waited.
/// An Event that cannot be recorded must not stop a release: the failure is logged, never returned.
#[derive(Clone)]
pub struct Recorder {
    writers: Vec<Writer>,
    activity: Arc<Activity>,
    /// Batches recorded and not yet posted, over all writers.
    unposted: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Writer {
    batches: mpsc::Sender<Batch>,
    /// Woken when this writer's backlog reaches [`HOLD`].
    backlog: Arc<Notify>,
}

/// A Rollout reconcile under way; with others, it makes a burst that Events wait out.
pub struct Hold(Arc<Activity>);

impl Drop for Hold {
    fn drop(&mut self) {
        let ended_a_burst = {
            let mut reconciling = self.0.reconciling();
            reconciling.under_way -= 1;
            let ended = reconciling.under_way + 1 == BURST;
            if ended {
                reconciling.burst_ended = Some(Instant::now());
            }
            ended
        };
        if ended_a_burst {
            self.0.quiet.notify_waiters();
        }
    }
}

/// The reconciles under way, and when the last burst of them ended. One lock keeps the two consistent:
/// a writer never sees a burst over without the time it ended.
#[derive(Default)]
struct Reconciling {
    under_way: usize,
    burst_ended: Option<Instant>,
}

#[derive(Default)]
struct Activity {
    reconciling: Mutex<Reconciling>,
    /// Woken when a burst ends.
    quiet: Notify,
}

impl Activity {
    fn reconciling(&self) -> std::sync::MutexGuard<'_, Reconciling> {
        self.reconciling.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once no burst is under way and none ended within the last [`LULL`].
    async fn quiet(&self) {
        loop {
            // Created before the check, so a `notify_waiters` between the check and the wait still wakes it.
            let notified = self.quiet.notified();
            let (under_way, burst_ended) = {
                let reconciling = self.reconciling();
                (reconciling.under_way, reconciling.burst_ended)
            };
            if under_way >= BURST {
                notified.await;
                continue;
            }
            match burst_ended.map(|at| at + LULL) {
                Some(lull_ends) if Instant::now() < lull_ends => {
                    tokio::time::sleep_until(lull_ends).await;
                }
                _ => return,
            }
        }
    }
}

impl Recorder {
    /// Starts the writers on the current runtime; they end when the last `Recorder` is dropped.
    pub fn start(client: Client, identity: String) -> Recorder {
        Recorder::with_poster(
            move |event| {
                let client = client.clone();
                async move { post(&client, event).await }
            },
            identity,
        )
    }

    /// The writers, posting each Event with `post`.
    fn with_poster<P, F>(post: P, identity: String) -> Recorder
    where
        P: Fn(KubeEvent) -> F + Clone + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let activity = Arc::new(Activity::default());
        let unposted = Arc::new(AtomicUsize::new(0));
        let writers = (0..WRITERS)
            .map(|_| {
                let (batches, queue) = mpsc::channel::<Batch>(QUEUE);
                let writer = Writer {
                    batches,
                    backlog: Arc::default(),
                };
                tokio::spawn(write(
                    queue,
                    writer.backlog.clone(),
                    activity.clone(),
                    unposted.clone(),
                    identity.clone(),
                    post.clone(),
                ));
                writer
            })
            .collect();
        Recorder {
            writers,
            activity,
            unposted,
        }
    }

    /// Counts a Rollout reconcile as under way until the returned guard is dropped.
    pub fn hold(&self) -> Hold {
        self.activity.reconciling().under_way += 1;
        Hold(self.activity.clone())
    }

    /// Queues `events` about `object` (at `version`), stamped now, in their order.
    pub async fn record<K>(&self, object: &K, version: &str, events: &[Event])
    where
        K: Resource<DynamicType = ()>,
    {
        if events.is_empty() {
            return;
        }
        let batch = Batch {
            involved: involved(object, version),
            events: events.to_vec(),
            at: Timestamp::now(),
            queued: Instant::now(),
        };
        let writer =
            &self.writers[writer_for(&object.namespace().unwrap_or_default(), &object.name_any())];
        // Room first, then the count: a reconcile cancelled while it waits for room leaves no batch
        // counted that will never be posted.
        let Ok(room) = writer.batches.reserve().await else {
            tracing::warn!("event recorder stopped; events dropped");
            return;
        };
        self.unposted.fetch_add(1, Ordering::AcqRel);
        room.send(batch);
        if writer.batches.max_capacity() - writer.batches.capacity() >= HOLD {
            writer.backlog.notify_waiters();
        }
    }

    /// How many recorded batches of Events are not posted yet.
    pub fn unposted(&self) -> usize {
        self.unposted.load(Ordering::Acquire)
    }

    /// Waits until every Event recorded so far is posted, or `patience` has passed; for shutting down
    /// without losing the Events of the last reconciles. Returns how many batches are still unposted.
    pub async fn flush(&self, patience: Duration) -> usize {
        let deadline = Instant::now() + patience;
        loop {
            let unposted = self.unposted.load(Ordering::Acquire);
            if unposted == 0 || Instant::now() >= deadline {
                return unposted;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One writer: takes its batches in order and posts each once no burst is under way and none ended
/// within the last [`LULL`], once [`HOLD`] batches are queued behind it, or once it has waited
/// [`MAX_WAIT`] since it was recorded, whichever comes first.
async fn write<P, F>(
    mut queue: mpsc::Receiver<Batch>,
    backlog: Arc<Notify>,
    activity: Arc<Activity>,
    unposted: Arc<AtomicUsize>,
    identity: String,
    post: P,
) where
    P: Fn(KubeEvent) -> F,
    F: Future<Output = ()>,
{
    while let Some(batch) = queue.recv().await {
        // Created before the length is read, so a backlog reached in between still wakes it.
        let backlogged = backlog.notified();
        if queue.len() < HOLD {
            tokio::select! {
                () = activity.quiet() => {}
                () = backlogged => {}
                () = tokio::time::sleep_until(batch.queued + MAX_WAIT) => {}
            }
        }
        for event in batch.build(&identity) {
            post(event).await;
        }
        unposted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The writer that posts every Event about one object.
fn writer_for(namespace: &str, name: &str) -> usize {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same object always lands on the same writer in this process.
    let mut hasher = std::hash::DefaultHasher::new();
    (namespace, name).hash(&mut hasher);
    (hasher.finish() % WRITERS as u64) as usize
}

async fn post(client: &Client, event: KubeEvent) {
    if let Err(e) = create(client, &event).await {
        let reason = event.reason.as_deref().unwrap_or_default();
        tracing::warn!(%reason, error = %e, "cannot record event");
    }
}

/// Creates the Event and ignores the answer's body: nothing reads the created Event, and decoding it
/// was about a fifth of what posting cost.
async fn create(client: &Client, event: &KubeEvent) -> Result<(), kube::Error> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let body = serde_json::to_vec(event).map_err(kube::Error::SerdeError)?;
    let request = kube::core::Request::new(KubeEvent::url_path(&(), Some(namespace)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await.map(drop)
}
#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn event(reason: &str) -> Event {
        Event {
            warning: false,
            reason: reason.into(),
            message: format!("{reason} happened"),
            status_change: true,
        }
    }

    /// What the writers posted: (object, reason, how long after the start).
    type Posted = Arc<Mutex<Vec<(String, String, Duration)>>>;

    /// A recorder whose writers post into a list.
    fn recording() -> (Recorder, Posted) {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let sink = posted.clone();
        let recorder = Recorder::with_poster(
            move |event: KubeEvent| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((
                        event.involved_object.name.unwrap_or_default(),
                        event.reason.unwrap_or_default(),
                        start.elapsed(),
                    ));
                }
            },
            "ramp-test".into(),
        );
        (recorder, posted)
    }

    fn reasons(posted: &Mutex<Vec<(String, String, Duration)>>) -> Vec<String> {
        posted.lock().unwrap().iter().map(|p| p.1.clone()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_wait_out_a_burst_of_reconciles_and_keep_their_order() {
        let (recorder, posted) = recording();
        let reconcile = recorder.hold();
        let another = recorder.hold();
        let web = pod("web");
        recorder
            .record(
                &web,
                "7",
                &[event("RolloutUpdated"), event("NewReplicaSetCreated")],
            )
            .await;
        recorder
            .record(&web, "8", &[event("ScalingReplicaSet")])
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(reasons(&posted).is_empty(), "posted during the burst");

        drop(reconcile);
        tokio::time::sleep(LULL - Duration::from_millis(1)).await;
        assert!(reasons(&posted).is_empty(), "posted before the lull");

        assert_eq!(recorder.flush(Duration::from_secs(1)).await, 0);
        assert_eq!(
            reasons(&posted),
            [
                "RolloutUpdated",
                "NewReplicaSetCreated",
                "ScalingReplicaSet"
            ]
        );
        assert_eq!(
            posted.lock().unwrap()[0].2,
            Duration::from_secs(2) + LULL,
            "posted once the lull after the burst was over"
        );
        drop(another);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_reconciles_events_go_at_once() {
        let (recorder, posted) = recording();
        let _lone = recorder.hold();
        recorder
            .record(&pod("web"), "7", &[event("RolloutStepCompleted")])
            .await;
        assert_eq!(recorder.flush(Duration::from_secs(1)).await, 0);
        assert_eq!(posted.lock().unwrap()[0].2, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_that_starts_again_within_the_lull_keeps_the_events_waiting() {
        let (recorder, posted) = recording();
        let first = [recorder.hold(), recorder.hold()];
        recorder
            .record(&pod("web"), "7", &[event("RolloutUpdated")])
            .await;
        drop(first);
        tokio::time::sleep(LULL / 2).await;
        let second = [recorder.hold(), recorder.hold()];
        tokio::time::sleep(LULL).await;
        assert!(
            reasons(&posted).is_empty(),
            "posted during the second burst"
        );
        drop(second);
        assert_eq!(recorder.flush(Duration::from_secs(1)).await, 0);
        assert_eq!(posted.lock().unwrap()[0].2, LULL / 2 + LULL + LULL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_that_is_never_quiet_still_posts_each_event_within_the_longest_wait() {
        let (recorder, posted) = recording();
        let _burst = [recorder.hold(), recorder.hold()];
        recorder
            .record(&pod("web"), "7", &[event("RolloutPaused")])
            .await;
        tokio::time::sleep(MAX_WAIT - Duration::from_millis(1)).await;
        assert!(reasons(&posted).is_empty());
        assert_eq!(recorder.flush(Duration::from_secs(1)).await, 0);
        assert_eq!(posted.lock().unwrap()[0].2, MAX_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_holds_at_most_its_backlog_and_posts_the_rest_without_waiting() {
        let (recorder, posted) = recording();
        let _burst = [recorder.hold(), recorder.hold()];
        let web = pod("web");
        recorder.record(&web, "0", &[event("Step0")]).await;
        // The writer takes the first batch and waits for a quiet moment; the rest queue behind it.
        tokio::time::sleep(Duration::from_millis(1)).await;
        for i in 1..HOLD + 5 {
            recorder
                .record(&web, &i.to_string(), &[event(&format!("Step{i}"))])
                .await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let expected: Vec<String> = (0..5).map(|i| format!("Step{i}")).collect();
        assert_eq!(
            reasons(&posted),
            expected,
            "the oldest go first, the rest wait"
        );
        assert_eq!(recorder.flush(Duration::ZERO).await, HOLD);
    }

    #[test]
    fn one_objects_events_always_go_to_the_same_writer_and_objects_spread() {
        let first = writer_for("shop", "web");
        for _ in 0..100 {
            assert_eq!(writer_for("shop", "web"), first);
        }
        let used: std::collections::BTreeSet<usize> = (0..200)
            .map(|i| writer_for("shop", &format!("web-{i}")))
            .collect();
        assert_eq!(used.len(), WRITERS, "200 Rollouts use every writer");
    }
}
