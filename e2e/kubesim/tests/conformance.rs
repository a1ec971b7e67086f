//! kubesim against a kube-rs client: each test checks one behaviour of the real API server that a controller
//! relies on, through HTTP, as a controller would see it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Pod, Service};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::{reflector, watcher};
use serde_json::{Value, json};

use support::{
    DEADLINE, api_error, call, client_with_agent, eventually, install_crd, rollouts, start,
    start_api_only,
};

fn config_map(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }))
    .expect("a ConfigMap")
}

fn rv_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().resource_version.clone().unwrap_or_default()
}

fn rv_number<K: kube::Resource>(obj: &K) -> u64 {
    rv_of(obj).parse().expect("resourceVersion is a number")
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// CRUD
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn config_maps_are_created_read_listed_updated_and_deleted() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let pp = PostParams::default();

    let created = api
        .create(
            &pp,
            &config_map("settings", json!({"app": "a"}), json!({"k": "v"})),
        )
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(meta.uid.as_ref().is_some_and(|u| u.len() == 36), "{meta:?}");
    assert!(meta.creation_timestamp.is_some());
    assert!(
        meta.generation.is_none(),
        "ConfigMaps have no generation: {meta:?}"
    );

    let read = api.get("settings").await.unwrap();
    assert_eq!(read, created);

    let again = api_error(
        api.create(&pp, &config_map("settings", json!({}), json!({})))
            .await,
    );
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(again.message, "configmaps \"settings\" already exists");

    let mut changed = read.clone();
    changed.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let replaced = api.replace("settings", &pp, &changed).await.unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["k"], "w");
    assert!(rv_number(&replaced) > rv_number(&created));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    assert_eq!(
        replaced.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );

    // An update that changes nothing keeps the resourceVersion.
    let unchanged = api.replace("settings", &pp, &replaced).await.unwrap();
    assert_eq!(rv_of(&unchanged), rv_of(&replaced));

    let listed = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&listed.items), ["settings"]);
    assert!(
        rv_number(&replaced)
            <= listed
                .metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse::<u64>()
                .unwrap()
    );

    api.delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    let gone = api_error(api.get("settings").await);
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
    assert_eq!(gone.message, "configmaps \"settings\" not found");
    let gone = api_error(api.delete("settings", &DeleteParams::default()).await);
    assert_eq!(gone.code, 404);
}

#[tokio::test]
async fn services_get_a_cluster_ip_that_updates_keep() {
    let sim = start_api_only().await;
    let api: Api<Service> = Api::default_namespaced(sim.client().unwrap());
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &service).await.unwrap();
    let spec = created.spec.clone().unwrap();
    let ip = spec.cluster_ip.clone().expect("a cluster IP is allocated");
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]));

    let mut changed = created.clone();
    let spec = changed.spec.as_mut().unwrap();
    spec.selector = Some(BTreeMap::from([("app".into(), "web2".into())]));
    spec.cluster_ip = None;
    spec.cluster_ips = None;
    let replaced = api
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    let spec = replaced.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some(ip.as_str()));
    assert_eq!(spec.selector.unwrap()["app"], "web2");

    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("web").await.unwrap().is_none());
}

#[tokio::test]
async fn pods_start_pending_and_the_kubelet_makes_them_ready() {
    let sim = start().await;
    let api: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "solo"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    let status = created.status.unwrap();
    assert_eq!(
        status.phase.as_deref(),
        Some("Pending"),
        "status is not writable on create"
    );

    let ready = eventually("the pod to become Ready", || async {
        let pod = api.get("solo").await.ok()?;
        let status = pod.status.clone()?;
        let ready = status
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(pod)
    })
    .await;
    let status = ready.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(status.pod_ip.is_some());
    assert_eq!(
        ready.spec.unwrap().node_name.as_deref(),
        Some("kubesim-node")
    );

    api.delete("solo", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("solo").await.unwrap().is_none());
}

#[tokio::test]
async fn generate_name_gets_a_random_suffix() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let template: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "job-"}})).unwrap();
    let first = api.create(&PostParams::default(), &template).await.unwrap();
    let second = api.create(&PostParams::default(), &template).await.unwrap();
    for made in [&first, &second] {
        let name = made.metadata.name.clone().unwrap();
        assert_eq!(name.len(), "job-".len() + 5, "{name}");
        assert!(name.starts_with("job-"));
        assert!(
            name[4..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(made.metadata.generate_name.as_deref(), Some("job-"));
    }
    assert_ne!(first.metadata.name, second.metadata.name);

    let nameless: ConfigMap = serde_json::from_value(json!({"metadata": {}})).unwrap();
    let err = api_error(api.create(&PostParams::default(), &nameless).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .contains("metadata.name: Required value: name or generateName is required"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn an_update_from_a_stale_resource_version_conflicts() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let pp = PostParams::default();
    let v1 = api
        .create(&pp, &config_map("shared", json!({}), json!({"n": "1"})))
        .await
        .unwrap();
    let mut v2 = v1.clone();
    v2.data = Some(BTreeMap::from([("n".into(), "2".into())]));
    api.replace("shared", &pp, &v2).await.unwrap();

    let mut stale = v1.clone();
    stale.data = Some(BTreeMap::from([("n".into(), "3".into())]));
    let err = api_error(api.replace("shared", &pp, &stale).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"shared\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(api.get("shared").await.unwrap().data.unwrap()["n"], "2");

    // Built-in kinds accept an unconditional update (no resourceVersion).
    stale.metadata.resource_version = None;
    let forced = api.replace("shared", &pp, &stale).await.unwrap();
    assert_eq!(forced.data.unwrap()["n"], "3");

    // A delete with a stale resourceVersion precondition conflicts too.
    let dp = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: Some(rv_of(&v1)),
        uid: None,
    });
    let err = api_error(api.delete("shared", &dp).await);
    assert_eq!(err.code, 409);
    assert!(api.get_opt("shared").await.unwrap().is_some());
}

#[tokio::test]
async fn objects_need_an_existing_namespace_and_go_with_it() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let err = api_error(
        api.create(
            &PostParams::default(),
            &config_map("x", json!({}), json!({})),
        )
        .await,
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"team\" not found")
    );

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    api.create(
        &PostParams::default(),
        &config_map("x", json!({}), json!({})),
    )
    .await
    .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(api.get_opt("x").await.unwrap().is_none());
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = api
        .create(&pp, &config_map("dry", json!({}), json!({"a": "b"})))
        .await
        .unwrap();
    assert_eq!(answered.metadata.name.as_deref(), Some("dry"));
    assert!(api.get_opt("dry").await.unwrap().is_none());

    let stored = api
        .create(
            &PostParams::default(),
            &config_map("dry", json!({}), json!({"a": "b"})),
        )
        .await
        .unwrap();
    let preview = api
        .patch(
            "dry",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"a": "c"}})),
        )
        .await
        .unwrap();
    assert_eq!(preview.data.as_ref().unwrap()["a"], "c");
    assert_eq!(rv_of(&preview), rv_of(&stored));
    assert_eq!(api.get("dry").await.unwrap(), stored);
}

#[tokio::test]
async fn empty_metadata_fields_are_not_stored() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let body: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "sparse", "labels": {}, "annotations": {}, "finalizers": []},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &body).await.unwrap();
    let raw = serde_json::to_value(&created.metadata).unwrap();
    for field in ["labels", "annotations", "finalizers"] {
        assert!(raw.get(field).is_none(), "{field} in {raw}");
    }
    let patched = api
        .patch(
            "sparse",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {}}})),
        )
        .await
        .unwrap();
    assert_eq!(rv_of(&patched), rv_of(&created), "a no-op write");
}

#[tokio::test]
async fn built_in_objects_are_defaulted_as_on_a_real_server() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let created = deployments
        .create(
            &PostParams::default(),
            &deployment(
                "defaulted",
                2,
                json!([{"name": "app", "image": "app", "ports": [{"containerPort": 80}]}]),
            ),
        )
        .await
        .unwrap();
    let raw = serde_json::to_value(&created).unwrap();
    assert_eq!(raw["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(raw["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(raw["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(raw["spec"]["progressDeadlineSeconds"], 600);
    let pod_spec = &raw["spec"]["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert_eq!(pod_spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod_spec["terminationGracePeriodSeconds"], 30);
    let container = &pod_spec["containers"][0];
    assert_eq!(container["imagePullPolicy"], "Always", "untagged image");
    assert_eq!(container["terminationMessagePolicy"], "File");
    assert_eq!(container["ports"][0]["protocol"], "TCP");

    // Defaults come back after a patch that removes them.
    let patched = deployments
        .patch(
            "defaulted",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"revisionHistoryLimit": null}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().revision_history_limit, Some(10));
    assert_eq!(patched.metadata.generation, Some(1), "nothing changed");

    let services: Api<Service> = Api::default_namespaced(client.clone());
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "defaulted"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 8080}]},
    }))
    .unwrap();
    let created = services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let port = &created.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
    );

    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::default_namespaced(client);
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": {"name": "restarts"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "c:1"}]}}},
    }))
    .unwrap();
    let err = api_error(jobs.create(&PostParams::default(), &job).await);
    assert_eq!(err.code, 422);
    assert!(
        err.message.ends_with(
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ),
        "{}",
        err.message
    );
}

// ---------------------------------------------------------------------------------------------------------
// Patches
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn merge_and_json_patches() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    api.create(
        &PostParams::default(),
        &config_map(
            "patched",
            json!({"keep": "1", "drop": "1"}),
            json!({"a": "1", "b": "2"}),
        ),
    )
    .await
    .unwrap();
    let pp = PatchParams::default();

    let merged = api
        .patch(
            "patched",
            &pp,
            &Patch::Merge(json!({
                "metadata": {"labels": {"drop": null, "new": "1"}},
                "data": {"b": null, "c": "3"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.metadata.labels.unwrap(),
        BTreeMap::from([("keep".into(), "1".into()), ("new".into(), "1".into())])
    );
    assert_eq!(
        merged.data.unwrap(),
        BTreeMap::from([("a".into(), "1".into()), ("c".into(), "3".into())])
    );

    let ops = serde_json::from_value(json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "add", "path": "/data/d", "value": "4"},
        {"op": "remove", "path": "/data/c"},
    ]))
    .unwrap();
    let patched = api
        .patch("patched", &pp, &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(
        patched.data.clone().unwrap(),
        BTreeMap::from([("a".into(), "10".into()), ("d".into(), "4".into())])
    );

    // A failing `test` rejects the whole patch.
    let ops = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/a", "value": "11"},
        {"op": "test", "path": "/data/a", "value": "nope"},
    ]))
    .unwrap();
    let err = api_error(api.patch("patched", &pp, &Patch::<()>::Json(ops)).await);
    assert_eq!(err.code, 422, "{err:?}");
    assert_eq!(api.get("patched").await.unwrap().data, patched.data);

    // A patch naming an old resourceVersion conflicts.
    let err = api_error(
        api.patch(
            "patched",
            &pp,
            &Patch::Merge(json!({"metadata": {"resourceVersion": "2"}, "data": {"x": "y"}})),
        )
        .await,
    );
    assert_eq!(err.code, 409);

    let err = api_error(api.patch("missing", &pp, &Patch::Merge(json!({}))).await);
    assert_eq!(err.code, 404);
}

fn deployment(name: &str, replicas: i32, containers: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    }))
    .expect("a Deployment")
}

fn container_images(d: &Deployment) -> Vec<(String, String)> {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn strategic_merge_patches_merge_containers_by_name() {
    let sim = start_api_only().await;
    let api: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    api.create(
        &PostParams::default(),
        &deployment(
            "web",
            1,
            json!([{"name": "app", "image": "app:1"}, {"name": "proxy", "image": "proxy:1"}]),
        ),
    )
    .await
    .unwrap();
    let pp = PatchParams::default();

    let patched = api
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "proxy", "image": "proxy:2"},
                {"name": "sidecar", "image": "sidecar:1"},
            ]}}}})),
        )
        .await
        .unwrap();
    let images = container_images(&patched);
    assert_eq!(images.len(), 3, "{images:?}");
    assert!(images.contains(&("app".into(), "app:1".into())));
    assert!(images.contains(&("proxy".into(), "proxy:2".into())));
    assert!(images.contains(&("sidecar".into(), "sidecar:1".into())));
    assert_eq!(patched.metadata.generation, Some(2));

    let patched = api
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "$patch": "delete"},
            ]}}}})),
        )
        .await
        .unwrap();
    assert_eq!(container_images(&patched).len(), 2);

    // A JSON merge patch of the same list replaces it whole.
    let patched = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "only", "image": "only:1"},
            ]}}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        container_images(&patched),
        [("only".to_string(), "only:1".to_string())]
    );
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_records_the_manager() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let apply = PatchParams::apply("conformance").force();
    let applied = api
        .patch(
            "applied",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied", "labels": {"tier": "one"}},
                "data": {"a": "1"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["a"], "1");
    let managers = applied.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("conformance")
                && m.operation.as_deref() == Some("Apply")
                && m.api_version.as_deref() == Some("v1")
                && m.fields_type.as_deref() == Some("FieldsV1")),
        "{managers:?}"
    );

    let updated = api
        .patch(
            "applied",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied", "labels": {"tier": "two"}},
                "data": {"a": "2", "b": "3"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(updated.metadata.labels.as_ref().unwrap()["tier"], "two");
    assert_eq!(
        updated.data.clone().unwrap(),
        BTreeMap::from([("a".into(), "2".into()), ("b".into(), "3".into())])
    );
    assert_eq!(updated.metadata.uid, applied.metadata.uid);
    assert!(rv_number(&updated) > rv_number(&applied));

    // Another writer's update is recorded under its own manager, next to the applier's.
    let other = api
        .patch(
            "applied",
            &PatchParams {
                field_manager: Some("other-writer".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"c": "4"}})),
        )
        .await
        .unwrap();
    let managers: Vec<(String, String)> = other
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(managers.contains(&("conformance".into(), "Apply".into())));
    assert!(managers.contains(&("other-writer".into(), "Update".into())));

    let err = api_error(
        api.patch(
            "applied",
            &PatchParams::default(),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}}),
            ),
        )
        .await,
    );
    assert_eq!(err.code, 400, "apply needs a field manager: {err:?}");
}

#[tokio::test]
async fn server_side_apply_merges_keyed_lists_of_built_in_kinds() {
    let sim = start_api_only().await;
    let api: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    let applied = |image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "shared"},
            "spec": {
                "selector": {"matchLabels": {"app": "shared"}},
                "template": {"metadata": {"labels": {"app": "shared"}},
                    "spec": {"containers": [{"name": "app", "image": image}]}},
            },
        })
    };
    let apply = PatchParams::apply("deployer").force();
    api.patch("shared", &apply, &Patch::Apply(applied("app:1")))
        .await
        .unwrap();
    // Another manager adds a sidecar...
    api.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "sidecar:1"},
        ]}}}})),
    )
    .await
    .unwrap();
    // ... which the first manager's next apply, not mentioning it, leaves in place.
    let updated = api
        .patch("shared", &apply, &Patch::Apply(applied("app:2")))
        .await
        .unwrap();
    let mut images = container_images(&updated);
    images.sort();
    assert_eq!(
        images,
        [
            ("app".to_string(), "app:2".to_string()),
            ("sidecar".to_string(), "sidecar:1".to_string())
        ]
    );
}

// ---------------------------------------------------------------------------------------------------------
// Subresources
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn status_and_spec_are_written_separately_and_generation_tracks_spec() {
    let sim = start_api_only().await;
    let api: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    let mut with_status = deployment("split", 2, json!([{"name": "app", "image": "app:1"}]));
    with_status.status = Some(serde_json::from_value(json!({"replicas": 7})).unwrap());
    let created = api
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.status.as_ref().and_then(|s| s.replicas).is_none(),
        "status is dropped on create: {:?}",
        created.status
    );

    // A /status write changes status only.
    let mut status_write = created.clone();
    status_write.status =
        Some(serde_json::from_value(json!({"replicas": 2, "readyReplicas": 1})).unwrap());
    status_write.spec.as_mut().unwrap().replicas = Some(9);
    let after_status = api
        .replace_status("split", &PostParams::default(), &status_write)
        .await
        .unwrap();
    assert_eq!(
        after_status.status.as_ref().unwrap().ready_replicas,
        Some(1)
    );
    assert_eq!(after_status.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(after_status.metadata.generation, Some(1));

    let after_status_patch = api
        .patch_status(
            "split",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 2}, "spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(
        after_status_patch.status.as_ref().unwrap().ready_replicas,
        Some(2)
    );
    assert_eq!(after_status_patch.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(after_status_patch.metadata.generation, Some(1));

    // A main-resource write leaves status alone; metadata-only changes keep the generation.
    let relabelled = api
        .patch(
            "split",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"x": "y"}}, "status": {"readyReplicas": 0}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(relabelled.status.as_ref().unwrap().ready_replicas, Some(2));
    assert_eq!(relabelled.metadata.generation, Some(1));
    assert!(rv_number(&relabelled) > rv_number(&after_status_patch));

    let rescaled = api
        .patch(
            "split",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(rescaled.metadata.generation, Some(2));
    assert_eq!(rescaled.status.as_ref().unwrap().ready_replicas, Some(2));

    // A stale resourceVersion conflicts on /status as on the main resource.
    let err = api_error(
        api.replace_status("split", &PostParams::default(), &status_write)
            .await,
    );
    assert_eq!(err.code, 409);
}

#[tokio::test]
async fn replica_sets_scale_through_the_scale_subresource() {
    let sim = start_api_only().await;
    let api: Api<ReplicaSet> = Api::default_namespaced(sim.client().unwrap());
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "scaled"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "scaled", "tier": "web"}},
            "template": {"metadata": {"labels": {"app": "scaled", "tier": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &rs).await.unwrap();
    api.patch_status(
        "scaled",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"replicas": 2}})),
    )
    .await
    .unwrap();

    let scale = api.get_scale("scaled").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    let status = scale.status.as_ref().unwrap();
    assert_eq!(status.replicas, 2);
    assert_eq!(status.selector.as_deref(), Some("app=scaled,tier=web"));

    let patched = api
        .patch_scale(
            "scaled",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(5));
    let rs = api.get("scaled").await.unwrap();
    assert_eq!(rs.spec.unwrap().replicas, Some(5));
    assert_eq!(rs.metadata.generation, Some(2));

    let mut scale = api.get_scale("scaled").await.unwrap();
    scale.spec.as_mut().unwrap().replicas = Some(1);
    let replaced = api
        .replace_scale("scaled", &PostParams::default(), &scale)
        .await
        .unwrap();
    assert_eq!(replaced.spec.unwrap().replicas, Some(1));
    // The Scale carried the resourceVersion it was read at: writing it again conflicts.
    let err = api_error(
        api.replace_scale("scaled", &PostParams::default(), &scale)
            .await,
    );
    assert_eq!(err.code, 409);

    let err = api_error(
        api.patch_scale(
            "scaled",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert!(err.message.contains("spec.replicas"), "{}", err.message);
}

fn rollout(name: &str, replicas: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }))
    .expect("a Rollout")
}

#[tokio::test]
async fn custom_resources_have_status_and_scale_subresources() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    install_crd(&client, "rollout-crd.yaml").await;
    let api = rollouts(&client);
    let created = api
        .create(&PostParams::default(), &rollout("canary", 3))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let with_status = api
        .patch_status(
            "canary",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"HPAReplicas": 3, "selector": "app=canary", "replicas": 3}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["HPAReplicas"], 3);
    assert_eq!(with_status.metadata.generation, Some(1));

    let scale = api.get_scale("canary").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(3));
    let status = scale.status.as_ref().unwrap();
    assert_eq!(
        (status.replicas, status.selector.as_deref()),
        (3, Some("app=canary"))
    );

    let scaled = api
        .patch_scale(
            "canary",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(6));
    let stored = api.get("canary").await.unwrap();
    assert_eq!(stored.data["spec"]["replicas"], 6);
    assert_eq!(stored.metadata.generation, Some(2));
    assert_eq!(stored.data["status"]["HPAReplicas"], 3);

    // A main-resource write cannot change status of a resource with a status subresource.
    let patched = api
        .patch(
            "canary",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"HPAReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["HPAReplicas"], 3);
    assert_eq!(patched.metadata.generation, Some(2));

    // Custom resources need a resourceVersion on update.
    let mut unconditional = api.get("canary").await.unwrap();
    unconditional.metadata.resource_version = None;
    let err = api_error(
        api.replace("canary", &PostParams::default(), &unconditional)
            .await,
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("metadata.resourceVersion"),
        "{}",
        err.message
    );

    let err = api_error(
        api.list(&ListParams::default().fields("spec.replicas=6"))
            .await,
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        )
    );
    let named = api
        .list(&ListParams::default().fields("metadata.name=canary"))
        .await
        .unwrap();
    assert_eq!(named.items.len(), 1);

    // Strategic merge patch is not supported for custom resources.
    let err = api_error(
        api.patch(
            "canary",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await,
    );
    assert_eq!(err.code, 415);
}

// ---------------------------------------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------------------------------------

/// The next watch event that is not a bookmark, within the deadline.
async fn next_event<S, K>(stream: &mut S) -> WatchEvent<K>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    loop {
        let event = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("a watch event within the deadline")
            .expect("the watch stream is open")
            .expect("a decodable watch event");
        if !matches!(event, WatchEvent::Bookmark(_)) {
            return event;
        }
    }
}

fn describe(event: &WatchEvent<ConfigMap>) -> (String, String, u64) {
    let (kind, obj) = match event {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        other => panic!("unexpected watch event {other:?}"),
    };
    (
        kind.to_string(),
        obj.metadata.name.clone().unwrap_or_default(),
        rv_number(obj),
    )
}

#[tokio::test]
async fn watches_deliver_changes_in_order_and_resume_from_a_resource_version() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let pp = PostParams::default();
    let start_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &start_rv)
        .await
        .unwrap()
        .boxed();

    let a = api
        .create(&pp, &config_map("a", json!({}), json!({})))
        .await
        .unwrap();
    api.create(&pp, &config_map("b", json!({}), json!({})))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(describe(&next_event(&mut stream).await));
    }
    let kinds: Vec<(&str, &str)> = seen
        .iter()
        .map(|(k, n, _)| (k.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("MODIFIED", "a"),
            ("DELETED", "b")
        ]
    );
    assert!(
        seen.windows(2).all(|w| w[0].2 < w[1].2),
        "resourceVersions increase: {seen:?}"
    );

    // Resuming from a's creation replays everything after it, and only that.
    let mut resumed = api
        .watch(&WatchParams::default(), &rv_of(&a))
        .await
        .unwrap()
        .boxed();
    let mut replay = Vec::new();
    for _ in 0..3 {
        replay.push(describe(&next_event(&mut resumed).await));
    }
    assert_eq!(replay, seen[1..]);

    // A watch without a resourceVersion starts with the current state as ADDED events.
    let mut fresh = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let (kind, name, _) = describe(&next_event(&mut fresh).await);
    assert_eq!((kind.as_str(), name.as_str()), ("ADDED", "a"));

    // Selectors apply to watches.
    let mut selected = api
        .watch(&WatchParams::default().labels("pick=yes"), &rv_of(&a))
        .await
        .unwrap()
        .boxed();
    api.create(&pp, &config_map("skip", json!({"pick": "no"}), json!({})))
        .await
        .unwrap();
    api.create(&pp, &config_map("take", json!({"pick": "yes"}), json!({})))
        .await
        .unwrap();
    let (kind, name, _) = describe(&next_event(&mut selected).await);
    assert_eq!((kind.as_str(), name.as_str()), ("ADDED", "take"));
}

#[tokio::test]
async fn watches_with_selectors_see_objects_enter_and_leave_the_selection() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let start_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("role=primary"), &start_rv)
        .await
        .unwrap()
        .boxed();
    let relabel = |role: &'static str| {
        let api = api.clone();
        async move {
            api.patch(
                "moving",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"role": role}}})),
            )
            .await
            .unwrap()
        }
    };
    api.create(
        &PostParams::default(),
        &config_map("moving", json!({"role": "replica"}), json!({})),
    )
    .await
    .unwrap();
    relabel("primary").await;
    api.patch(
        "moving",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    let demoted = relabel("replica").await;
    relabel("primary").await;
    api.delete("moving", &DeleteParams::default())
        .await
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next_event(&mut stream).await);
    }
    let kinds: Vec<String> = seen.iter().map(|e| describe(e).0).collect();
    assert_eq!(
        kinds,
        ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"],
        "the replica-labelled creation is invisible; leaving the selection is a deletion"
    );
    // Leaving the selection reports the object as last seen, at the resourceVersion of the change.
    let WatchEvent::Deleted(left) = &seen[2] else {
        unreachable!()
    };
    assert_eq!(left.metadata.labels.as_ref().unwrap()["role"], "primary");
    assert_eq!(rv_of(left), rv_of(&demoted));
    assert_eq!(left.data.as_ref().unwrap()["k"], "v");

    // A field selector follows the same rules.
    let pods: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "phased"},
        "spec": {"containers": [{"name": "c", "image": "c"}]},
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let mut running = pods
        .watch(
            &WatchParams::default().fields("status.phase=Running"),
            &rv_of(&created),
        )
        .await
        .unwrap()
        .boxed();
    for phase in ["Running", "Succeeded"] {
        pods.patch_status(
            "phased",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
    }
    assert!(matches!(
        next_event(&mut running).await,
        WatchEvent::Added(_)
    ));
    assert!(matches!(
        next_event(&mut running).await,
        WatchEvent::Deleted(_)
    ));
}

#[tokio::test]
async fn custom_resources_without_a_status_subresource_bump_generation_on_status() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    install_crd(&client, "analysis-run-crd.yaml").await;
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AnalysisRun"),
        "analysisruns",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource);
    let run: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "run"},
        "spec": {"metrics": [{"name": "ok", "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "up"}}}]},
        "status": {"phase": "Pending"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &run).await.unwrap();
    assert_eq!(
        created.data["status"]["phase"], "Pending",
        "without a status subresource, status is written with the object"
    );
    assert_eq!(created.metadata.generation, Some(1));
    let updated = api
        .patch(
            "run",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(updated.data["status"]["phase"], "Running");
    assert_eq!(updated.metadata.generation, Some(2));
    let relabelled = api
        .patch(
            "run",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(relabelled.metadata.generation, Some(2));
    let err = api_error(api.get_status("run").await);
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn object_metadata_is_validated() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let err = api_error(
        api.create(
            &PostParams::default(),
            &config_map("labelled", json!({"bad key": "v"}), json!({})),
        )
        .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.starts_with(
            "ConfigMap \"labelled\" is invalid: metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters"
        ),
        "{}",
        err.message
    );
    let cause = &err.details.unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("metadata.labels", "FieldValueInvalid")
    );

    api.create(
        &PostParams::default(),
        &config_map("labelled", json!({"ok": "v"}), json!({})),
    )
    .await
    .unwrap();
    let err = api_error(
        api.patch(
            "labelled",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"ok": "x".repeat(64)}}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("must be no more than 63 characters"),
        "{}",
        err.message
    );
    let err = api_error(
        api.create(
            &PostParams::default(),
            &config_map("Upper", json!({}), json!({})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("metadata.name: Invalid value: \"Upper\""),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn resuming_a_watch_after_compaction_is_gone() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let old = api
        .create(
            &PostParams::default(),
            &config_map("before", json!({}), json!({})),
        )
        .await
        .unwrap();
    let compacted = call(&client, "POST", "/kubesim/admin/compact", None).await;
    let current: u64 = compacted["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(current >= rv_number(&old));
    api.create(
        &PostParams::default(),
        &config_map("after", json!({}), json!({})),
    )
    .await
    .unwrap();

    // As on a real server, the watch is accepted and then fails with one ERROR event.
    let before_compaction = (rv_number(&old) - 1).to_string();
    let mut stream = api
        .watch(&WatchParams::default(), &before_compaction)
        .await
        .expect("the watch request is accepted")
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("the stream ends")
            .is_none()
    );

    // Resuming from the compaction point still works.
    let mut stream = api
        .watch(&WatchParams::default(), &current.to_string())
        .await
        .unwrap()
        .boxed();
    let (kind, name, _) = describe(&next_event(&mut stream).await);
    assert_eq!((kind.as_str(), name.as_str()), ("ADDED", "after"));
}

#[tokio::test]
async fn a_quiet_watchs_bookmark_keeps_its_resume_point_current() {
    // A watch of a kind nobody changes, while another kind changes: its bookmarks must move on with the
    // store, or a resume from the last one fails with 410 once the history has moved past it (and a
    // controller relists every time its watch times out).
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    let quiet: Api<Service> = Api::default_namespaced(client.clone());
    let busy: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let start = quiet.list(&ListParams::default()).await.unwrap();
    let start_rv = start.metadata.resource_version.clone().unwrap_or_default();
    let mut stream = quiet
        .watch(&WatchParams::default(), &start_rv)
        .await
        .unwrap()
        .boxed();
    let last_busy = busy
        .create(
            &PostParams::default(),
            &config_map("busy", json!({}), json!({})),
        )
        .await
        .unwrap();

    let event = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("a bookmark within the deadline")
        .expect("the watch stream is open")
        .expect("a decodable watch event");
    let bookmark_rv = match event {
        WatchEvent::Bookmark(bookmark) => bookmark.metadata.resource_version,
        other => panic!("only bookmarks on a quiet watch, got {other:?}"),
    };
    let bookmark_rv: u64 = bookmark_rv.parse().unwrap();
    assert!(
        bookmark_rv >= rv_number(&last_busy),
        "bookmark {bookmark_rv} is behind the store ({})",
        rv_number(&last_busy)
    );

    // Everything before now is compacted away; the bookmark is still a place to resume from.
    call(&client, "POST", "/kubesim/admin/compact", None).await;
    let mut resumed = quiet
        .watch(&WatchParams::default(), &bookmark_rv.to_string())
        .await
        .unwrap()
        .boxed();
    let created = quiet
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"ports": [{"port": 80}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    match next_event(&mut resumed).await {
        WatchEvent::Added(service) => assert_eq!(service.metadata.name, created.metadata.name),
        other => panic!("expected the new Service, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Selectors and pagination
// ---------------------------------------------------------------------------------------------------------

async fn selected(api: &Api<ConfigMap>, lp: &ListParams) -> BTreeSet<String> {
    let list = api.list(lp).await.unwrap_or_else(|e| panic!("{lp:?}: {e}"));
    names(&list.items).into_iter().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn label_selectors_support_every_operator() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    for (name, labels) in [
        ("web-1", json!({"app": "web", "tier": "front", "rank": "1"})),
        ("web-2", json!({"app": "web", "tier": "back", "rank": "5"})),
        ("db", json!({"app": "db", "rank": "9"})),
        ("bare", json!({})),
    ] {
        api.create(&PostParams::default(), &config_map(name, labels, json!({})))
            .await
            .unwrap();
    }
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["web-1", "web-2"]),
        ("app==web", &["web-1", "web-2"]),
        ("app!=web", &["db", "bare"]),
        ("app in (web,db)", &["web-1", "web-2", "db"]),
        ("app notin (web)", &["db", "bare"]),
        ("tier", &["web-1", "web-2"]),
        ("!tier", &["db", "bare"]),
        ("rank>4", &["web-2", "db"]),
        ("rank<5", &["web-1"]),
        ("app=web,tier=back", &["web-2"]),
        ("app in (web),!rank", &[]),
        ("", &["web-1", "web-2", "db", "bare"]),
    ];
    for (selector, expected) in cases {
        assert_eq!(
            selected(&api, &ListParams::default().labels(selector)).await,
            set(expected),
            "labelSelector={selector}"
        );
    }
    let err = api_error(api.list(&ListParams::default().labels("app in web")).await);
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn field_selectors_match_metadata_and_status_fields() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for name in ["one", "two", "three"] {
        api.create(
            &PostParams::default(),
            &config_map(name, json!({"n": name}), json!({})),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        selected(&api, &ListParams::default().fields("metadata.name=two")).await,
        set(&["two"])
    );
    assert_eq!(
        selected(&api, &ListParams::default().fields("metadata.name!=two")).await,
        set(&["one", "three"])
    );
    assert_eq!(
        selected(
            &api,
            &ListParams::default()
                .fields("metadata.namespace=default,metadata.name!=one")
                .labels("n!=three")
        )
        .await,
        set(&["two"])
    );
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        selected(
            &all,
            &ListParams::default().fields("metadata.namespace=kube-system")
        )
        .await,
        set(&[])
    );

    let pods: Api<Pod> = Api::default_namespaced(client);
    for (name, phase) in [("running", "Running"), ("done", "Succeeded")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "c"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
    }
    let phases = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(names(&phases.items), ["running"]);
    let err = api_error(
        pods.list(&ListParams::default().fields("status.phase"))
            .await,
    );
    assert_eq!(err.code, 400);

    // Only the fields a kind supports can be selected, as on a real server.
    let err = api_error(api.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "field label not supported: data.k")
    );
    let refused = pods
        .watch(
            &WatchParams::default().fields("status.qosClass=BestEffort"),
            "0",
        )
        .await
        .map(|_| ());
    let err = api_error(refused);
    assert_eq!(err.message, "field label not supported: status.qosClass");
}

#[tokio::test]
async fn lists_are_paginated_with_limit_and_continue() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    for i in 0..7 {
        api.create(
            &PostParams::default(),
            &config_map(&format!("page-{i}"), json!({"paged": "yes"}), json!({})),
        )
        .await
        .unwrap();
    }
    api.create(
        &PostParams::default(),
        &config_map("unpaged", json!({}), json!({})),
    )
    .await
    .unwrap();

    let mut lp = ListParams::default().labels("paged=yes").limit(3);
    let mut pages = Vec::new();
    let mut all = Vec::new();
    loop {
        let page = api.list(&lp).await.unwrap();
        pages.push((page.items.len(), page.metadata.remaining_item_count));
        all.extend(names(&page.items));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, [(3, Some(4)), (3, Some(1)), (1, None)]);
    let expected: Vec<String> = (0..7).map(|i| format!("page-{i}")).collect();
    assert_eq!(all, expected);

    let err = api_error(
        api.list(&ListParams::default().limit(2).continue_token("garbage"))
            .await,
    );
    assert_eq!(err.code, 400);
}

// ---------------------------------------------------------------------------------------------------------
// Deletion: garbage collection and finalizers
// ---------------------------------------------------------------------------------------------------------

async fn owner_and_dependents(api: &Api<ConfigMap>) -> ConfigMap {
    let owner = api
        .create(
            &PostParams::default(),
            &config_map("owner", json!({}), json!({})),
        )
        .await
        .unwrap();
    for name in ["dep-1", "dep-2"] {
        let mut dependent = config_map(name, json!({}), json!({}));
        dependent.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner.metadata.uid, "controller": true,
            }))
            .unwrap(),
        ]);
        api.create(&PostParams::default(), &dependent)
            .await
            .unwrap();
    }
    owner
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents_unless_orphaned() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());

    owner_and_dependents(&api).await;
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("dependents to be collected", || async {
        let left = api.list(&ListParams::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;

    owner_and_dependents(&api).await;
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&left.items), ["dep-1", "dep-2"]);
    for dependent in &left.items {
        assert!(
            dependent
                .metadata
                .owner_references
                .as_ref()
                .is_none_or(|r| r.is_empty()),
            "orphans lose the owner reference: {:?}",
            dependent.metadata
        );
    }
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let owner = owner_and_dependents(&api).await;
    // A third dependent blocks its owner's deletion and is held by its own finalizer.
    let mut held = config_map("dep-held", json!({}), json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    held.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner.metadata.uid, "blockOwnerDeletion": true,
        }))
        .unwrap(),
    ]);
    api.create(&PostParams::default(), &held).await.unwrap();

    let answer = api
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("the owner is returned, marked for deletion");
    assert!(answer.metadata.deletion_timestamp.is_some());
    assert_eq!(
        answer.metadata.finalizers.as_deref(),
        Some(&["foregroundDeletion".to_string()][..])
    );
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        names(&left.items),
        ["dep-held", "owner"],
        "the unheld dependents are gone; the owner waits for the held one"
    );
    assert!(
        api.get("dep-held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    api.patch(
        "dep-held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert!(left.items.is_empty(), "{:?}", names(&left.items));

    // Without a blocking dependent left, a foreground delete completes at once.
    owner_and_dependents(&api).await;
    api.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let mut held = config_map("held", json!({}), json!({}));
    held.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    let created = api.create(&PostParams::default(), &held).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&created))
        .await
        .unwrap()
        .boxed();

    api.delete("held", &DeleteParams::default()).await.unwrap();
    let terminating = api.get("held").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(
        terminating.metadata.finalizers.as_deref(),
        Some(&["example.com/cleanup".to_string()][..])
    );
    let err = api_error(
        api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/cleanup", "example.com/late"]}}),
            ),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains(
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"
        ),
        "{}",
        err.message
    );
    // Deleting again changes nothing.
    api.delete("held", &DeleteParams::default()).await.unwrap();
    assert_eq!(rv_of(&api.get("held").await.unwrap()), rv_of(&terminating));

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());

    let events: Vec<(String, String, u64)> = vec![
        describe(&next_event(&mut stream).await),
        describe(&next_event(&mut stream).await),
    ];
    assert_eq!(events[0].0, "MODIFIED");
    assert_eq!(events[1].0, "DELETED");
}

// ---------------------------------------------------------------------------------------------------------
// Custom resource validation
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn custom_resources_are_validated_and_pruned_against_their_schema() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    install_crd(&client, "rollout-crd.yaml").await;
    let api = rollouts(&client);

    let mut bad = rollout("bad", 1);
    bad.data["spec"]["replicas"] = json!("three");
    bad.data["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!("half");
    let err = api_error(api.create(&PostParams::default(), &bad).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .starts_with("Rollout.argoproj.io \"bad\" is invalid: "),
        "{}",
        err.message
    );
    let fields: BTreeSet<String> = err
        .details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| c.field.clone())
        .collect();
    assert!(fields.contains("spec.replicas"), "{fields:?}");
    assert!(
        fields.contains("spec.strategy.canary.steps[0].setWeight"),
        "{fields:?}"
    );
    assert!(api.get_opt("bad").await.unwrap().is_none());

    let mut extra = rollout("extra", 1);
    extra.data["spec"]["notAField"] = json!({"x": 1});
    extra.data["topLevelJunk"] = json!(true);
    let stored = api.create(&PostParams::default(), &extra).await.unwrap();
    assert!(
        stored.data["spec"].get("notAField").is_none(),
        "{:?}",
        stored.data
    );
    assert!(stored.data.get("topLevelJunk").is_none());
    assert_eq!(stored.data["spec"]["replicas"], 1);

    let err = api_error(
        api.patch(
            "extra",
            &PatchParams::default().validation_strict(),
            &Patch::Merge(json!({"spec": {"notAField": 1}})),
        )
        .await,
    );
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("unknown field \"spec.notAField\""),
        "{}",
        err.message
    );

    // Updates are validated too.
    let err = api_error(
        api.patch(
            "extra",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1.5}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
}

// ---------------------------------------------------------------------------------------------------------
// A reflector under injected faults
// ---------------------------------------------------------------------------------------------------------

/// Creates, changes and deletes `cm-0` .. `cm-3` in turns, so that every kind of watch event happens.
async fn churn(api: &Api<ConfigMap>, round: usize) {
    for i in 0..4 {
        let name = format!("cm-{i}");
        let data = json!({"round": round.to_string()});
        match api.get_opt(&name).await.unwrap() {
            Some(_) if (round + i).is_multiple_of(3) => {
                api.delete(&name, &DeleteParams::default()).await.unwrap();
            }
            Some(_) => {
                api.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": data})),
                )
                .await
                .unwrap();
            }
            None => {
                api.create(&PostParams::default(), &config_map(&name, json!({}), data))
                    .await
                    .unwrap();
            }
        }
    }
}

/// Waits until the reflector's store holds exactly what the server lists, resourceVersions included.
async fn wait_in_sync(api: &Api<ConfigMap>, reader: &reflector::Store<ConfigMap>) {
    let server: BTreeMap<String, String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|cm| (cm.metadata.name.clone().unwrap(), rv_of(cm)))
        .collect();
    eventually("the reflector's store to equal the server's list", || {
        let server = server.clone();
        async move {
            let store: BTreeMap<String, String> = reader
                .state()
                .iter()
                .map(|cm| (cm.metadata.name.clone().unwrap(), rv_of(cm.as_ref())))
                .collect();
            (store == server).then_some(())
        }
    })
    .await;
}

/// Requests the reflector made with this verb and code.
fn reflector_requests(sim: &kubesim::Kubesim, verb: &str, code: u16) -> u64 {
    sim.request_counts()
        .iter()
        .filter(|c| {
            c.key.user_agent == "reflector-test"
                && c.key.verb == verb
                && c.key.resource == "configmaps"
                && c.key.code == code
        })
        .map(|c| c.count)
        .sum()
}

#[tokio::test]
async fn a_reflector_stays_in_sync_through_cut_watches_and_gone_resumes() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let watched: Api<ConfigMap> =
        Api::default_namespaced(client_with_agent(&sim, "reflector-test"));
    sim.set_faults(kubesim::Faults {
        watch_max_events: Some(3),
        watch_max_seconds: Some(1.0),
        gone_on_resume: 2,
        ..Default::default()
    });
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(watched, watcher::Config::default()));
    let task = tokio::spawn(stream.for_each(|_| futures::future::ready(())));

    for round in 0..6 {
        churn(&api, round).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_in_sync(&api, &reader).await;
    assert!(
        reflector_requests(&sim, "watch", 200) >= 5,
        "watches were cut: {:?}",
        sim.request_counts()
    );
    let lists_before = reflector_requests(&sim, "list", 200);
    assert!(lists_before >= 2, "relisted after an injected 410");

    // Hold the reflector between watches, change things and forget the history it would resume from.
    sim.set_faults(kubesim::Faults {
        errors: vec![kubesim::ErrorRule {
            verb: Some("watch".into()),
            resource: Some("configmaps".into()),
            code: 500,
            rate: 1.0,
            retry_after_seconds: None,
        }],
        ..Default::default()
    });
    eventually("the reflector's watch to be refused", || async {
        (reflector_requests(&sim, "watch", 500) > 0).then_some(())
    })
    .await;
    churn(&api, 6).await;
    sim.cluster.compact();
    sim.set_faults(kubesim::Faults {
        watch_max_events: Some(2),
        ..Default::default()
    });
    wait_in_sync(&api, &reader).await;
    assert!(
        reflector_requests(&sim, "list", 200) > lists_before,
        "a resume after compaction must relist: {:?}",
        sim.request_counts()
    );
    task.abort();
}

#[tokio::test]
async fn deletecollection_deletes_what_the_selector_lists() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    for (name, batch) in [("one", "x"), ("two", "x"), ("three", "y")] {
        api.create(
            &PostParams::default(),
            &config_map(name, json!({"batch": batch}), json!({})),
        )
        .await
        .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=x"),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&left.items), ["three"]);
}

#[tokio::test]
async fn pods_can_be_evicted() {
    let sim = start_api_only().await;
    let api: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "evicted"},
        "spec": {"containers": [{"name": "c", "image": "c"}]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let status = api
        .evict("evicted", &kube::api::EvictParams::default())
        .await
        .unwrap();
    assert!(status.is_success(), "{status:?}");
    assert!(api.get_opt("evicted").await.unwrap().is_none());
    let err = api_error(
        api.evict("evicted", &kube::api::EvictParams::default())
            .await,
    );
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn discovery_follows_custom_resource_definitions() {
    let sim = start_api_only().await;
    let client = sim.client().unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
    let core = client.list_core_api_resources("v1").await.unwrap();
    let pods = core.resources.iter().find(|r| r.name == "pods").unwrap();
    assert!(pods.namespaced && pods.verbs.contains(&"watch".to_string()));
    assert!(core.resources.iter().any(|r| r.name == "pods/status"));

    let groups =
        |list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList| -> Vec<String> {
            list.groups.into_iter().map(|g| g.name).collect()
        };
    assert!(!groups(client.list_api_groups().await.unwrap()).contains(&"argoproj.io".to_string()));
    install_crd(&client, "rollout-crd.yaml").await;
    assert!(groups(client.list_api_groups().await.unwrap()).contains(&"argoproj.io".to_string()));
    let resources = client
        .list_api_group_resources("argoproj.io/v1alpha1")
        .await
        .unwrap();
    let served: BTreeSet<String> = resources.resources.iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        served,
        set(&["rollouts", "rollouts/scale", "rollouts/status"])
    );
    let entry = resources
        .resources
        .iter()
        .find(|r| r.name == "rollouts")
        .unwrap();
    assert_eq!(entry.short_names.as_deref(), Some(&["ro".to_string()][..]));

    // Deleting the CRD stops serving the resource and deletes its objects.
    let api = rollouts(&client);
    api.create(&PostParams::default(), &rollout("doomed", 1))
        .await
        .unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let established = crds.get("rollouts.argoproj.io").await.unwrap();
    let conditions = established.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    crds.delete("rollouts.argoproj.io", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(api.get("doomed").await).code, 404);
    assert!(!groups(client.list_api_groups().await.unwrap()).contains(&"argoproj.io".to_string()));
    install_crd(&client, "rollout-crd.yaml").await;
    assert!(api.get_opt("doomed").await.unwrap().is_none());
}

#[tokio::test]
async fn a_streaming_list_reflector_gets_the_initial_state_then_changes() {
    let sim = start_api_only().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &config_map(&format!("early-{i}"), json!({}), json!({})),
        )
        .await
        .unwrap();
    }
    let watched: Api<ConfigMap> =
        Api::default_namespaced(client_with_agent(&sim, "reflector-test"));
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(watched, watcher::Config::default().streaming_lists()),
    );
    let task = tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    tokio::time::timeout(DEADLINE, reader.wait_until_ready())
        .await
        .expect("the initial events end with a bookmark")
        .unwrap();
    assert_eq!(reader.state().len(), 3);
    churn(&api, 0).await;
    wait_in_sync(&api, &reader).await;
    task.abort();
    assert_eq!(
        reflector_requests(&sim, "list", 200),
        0,
        "no list: a watch only"
    );
    assert_eq!(reflector_requests(&sim, "watch", 200), 1);
}

#[tokio::test]
async fn latency_conflicts_and_throttling_are_injected() {
    let sim = start_api_only().await;
    let mut config = kube::Config::new(sim.url.parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &config_map("target", json!({}), json!({})),
    )
    .await
    .unwrap();

    sim.set_faults(kubesim::Faults {
        latency_ms: 300,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    api.get("target").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    sim.set_faults(kubesim::Faults {
        conflict_rate: 1.0,
        ..Default::default()
    });
    let err = api_error(
        api.patch(
            "target",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "b"}})),
        )
        .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    api.get("target").await.expect("reads are not conflicted");

    sim.set_faults(kubesim::Faults {
        errors: vec![
            kubesim::ErrorRule {
                verb: Some("list".into()),
                resource: None,
                code: 429,
                rate: 1.0,
                retry_after_seconds: Some(3),
            },
            kubesim::ErrorRule {
                verb: Some("get".into()),
                resource: Some("configmaps".into()),
                code: 503,
                rate: 1.0,
                retry_after_seconds: None,
            },
        ],
        ..Default::default()
    });
    let err = api_error(api.list(&ListParams::default()).await);
    assert_eq!((err.code, err.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(err.details.unwrap().retry_after_seconds, 3);
    let err = api_error(api.get("target").await);
    assert_eq!((err.code, err.reason.as_str()), (503, "ServiceUnavailable"));
    let data = api
        .patch(
            "target",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "b"}})),
        )
        .await
        .expect("writes are not matched by these rules");
    assert_eq!(data.data.unwrap()["a"], "b");
    sim.set_faults(kubesim::Faults::default());
}

// ---------------------------------------------------------------------------------------------------------
// The simulated cluster
// ---------------------------------------------------------------------------------------------------------

fn replica_set(name: &str, replicas: i32, annotations: Value) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
        },
    }))
    .expect("a ReplicaSet")
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn a_replica_set_gets_ready_pods_and_reports_them() {
    let sim = start().await;
    let client = sim.client().unwrap();
    let replica_sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    replica_sets
        .create(&PostParams::default(), &replica_set("web", 3, json!({})))
        .await
        .unwrap();

    let status = eventually("3 ready and available replicas", || async {
        let rs = replica_sets.get("web").await.ok()?;
        let status = rs.status?;
        (status.ready_replicas == Some(3) && status.available_replicas == Some(3)).then_some(status)
    })
    .await;
    assert_eq!(status.replicas, 3);
    assert_eq!(status.observed_generation, Some(1));
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 3);
    for pod in &list.items {
        assert!(is_ready(pod), "{:?}", pod.status);
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReplicaSet", "web")
        );
        assert!(pod.metadata.name.as_ref().unwrap().starts_with("web-"));
    }

    // Scaling down removes pods; deleting the ReplicaSet collects the rest.
    replica_sets
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    eventually("the ReplicaSet to scale down to 1", || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let rs = replica_sets.get("web").await.ok()?;
        (list.items.len() == 1 && rs.status?.replicas == 1).then_some(())
    })
    .await;
    replica_sets
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the pods to be collected", || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn never_ready_pods_stay_unready_and_endpoints_list_only_ready_ips() {
    let sim = start().await;
    let client = sim.client().unwrap();
    let replica_sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let endpoints: Api<Endpoints> = Api::default_namespaced(client.clone());
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "front"},
        "spec": {"selector": {"tier": "front"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();

    let mut good = replica_set("good", 2, json!({}));
    let mut stuck = replica_set("stuck", 2, json!({"kubesim.ramp.dev/never-ready": "true"}));
    for rs in [&mut good, &mut stuck] {
        let labels = rs
            .spec
            .as_mut()
            .unwrap()
            .template
            .as_mut()
            .unwrap()
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap();
        labels.insert("tier".into(), "front".into());
        replica_sets
            .create(&PostParams::default(), rs)
            .await
            .unwrap();
    }

    let ready_ips = eventually("endpoints with the two ready pods", || async {
        let good_pods = pods
            .list(&ListParams::default().labels("app=good"))
            .await
            .ok()?;
        if good_pods.items.len() != 2 || !good_pods.items.iter().all(is_ready) {
            return None;
        }
        let ips: BTreeSet<String> = good_pods
            .items
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
            .collect();
        let ep = endpoints.get("front").await.ok()?;
        let subset = ep.subsets?.into_iter().next()?;
        let listed: BTreeSet<String> = subset.addresses?.into_iter().map(|a| a.ip).collect();
        let not_ready = subset.not_ready_addresses.unwrap_or_default();
        (listed == ips && not_ready.len() == 2).then_some(ips)
    })
    .await;
    assert_eq!(ready_ips.len(), 2);

    // Well past the default ready delay, the never-ready pods run but are not Ready.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stuck_pods = pods
        .list(&ListParams::default().labels("app=stuck"))
        .await
        .unwrap();
    assert_eq!(stuck_pods.items.len(), 2);
    for pod in &stuck_pods.items {
        assert!(!is_ready(pod), "{:?}", pod.status);
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
    }
    let stuck_rs = replica_sets.get("stuck").await.unwrap().status.unwrap();
    assert_eq!(
        (stuck_rs.replicas, stuck_rs.ready_replicas.unwrap_or(0)),
        (2, 0)
    );
    let ep = endpoints.get("front").await.unwrap();
    let subset = &ep.subsets.unwrap()[0];
    let listed: BTreeSet<String> = subset
        .addresses
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.ip.clone())
        .collect();
    assert_eq!(listed, ready_ips);
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
}

#[tokio::test]
async fn a_deployment_rolls_out_a_new_replica_set_per_template() {
    let sim = start().await;
    let client = sim.client().unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let replica_sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    deployments
        .create(
            &PostParams::default(),
            &deployment("roll", 2, json!([{"name": "app", "image": "app:1"}])),
        )
        .await
        .unwrap();
    let available = |deployment: &Deployment| {
        deployment
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
            })
    };
    eventually("the Deployment to become Available", || async {
        let d = deployments.get("roll").await.ok()?;
        (available(&d) && d.status?.available_replicas == Some(2)).then_some(())
    })
    .await;

    deployments
        .patch(
            "roll",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}})),
        )
        .await
        .unwrap();
    eventually("the old ReplicaSet to be scaled to zero", || async {
        let d = deployments.get("roll").await.ok()?;
        let status = d.status.clone()?;
        let sets = replica_sets
            .list(&ListParams::default().labels("app=roll"))
            .await
            .ok()?;
        let scaled: Vec<i32> = sets
            .items
            .iter()
            .filter_map(|rs| rs.spec.as_ref()?.replicas)
            .collect();
        (sets.items.len() == 2
            && scaled.contains(&0)
            && scaled.contains(&2)
            && status.updated_replicas == Some(2)
            && status.observed_generation == Some(2)
            && available(&d))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn jobs_run_their_pod_to_completion_or_failure() {
    let sim = start().await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> =
        Api::default_namespaced(sim.client().unwrap());
    let job = |name: &str, exit_code: &str| -> k8s_openapi::api::batch::v1::Job {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"backoffLimit": 1, "template": {
                "metadata": {"annotations": {"kubesim.ramp.dev/run-time": "200ms", "kubesim.ramp.dev/exit-code": exit_code}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "c:1"}]},
            }},
        }))
        .unwrap()
    };
    jobs.create(&PostParams::default(), &job("passes", "0"))
        .await
        .unwrap();
    jobs.create(&PostParams::default(), &job("fails", "3"))
        .await
        .unwrap();
    let condition = |job: &k8s_openapi::api::batch::v1::Job, type_: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
    };
    eventually("one Job to complete and the other to fail", || async {
        let passes = jobs.get("passes").await.ok()?;
        let fails = jobs.get("fails").await.ok()?;
        (condition(&passes, "Complete") && condition(&fails, "Failed")).then_some(())
    })
    .await;
    let fails = jobs.get("fails").await.unwrap().status.unwrap();
    assert_eq!(fails.failed, Some(2), "the first pod and one retry");
    assert_eq!(
        jobs.get("passes").await.unwrap().status.unwrap().succeeded,
        Some(1)
    );
}

// ---------------------------------------------------------------------------------------------------------
// Event expiry
// ---------------------------------------------------------------------------------------------------------

fn core_event(name: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "kept"},
        "reason": "Tested",
        "message": "an Event that expires",
        "type": "Normal",
    }))
    .expect("an Event")
}

#[tokio::test]
async fn events_are_deleted_once_their_ttl_has_passed_and_watches_see_them_go() {
    let sim = kubesim::Kubesim::start(kubesim::Config {
        event_ttl: Some(Duration::from_secs(4)),
        ..Default::default()
    })
    .await
    .expect("kubesim starts");
    let client = sim.client().unwrap();
    let events: Api<Event> = Api::default_namespaced(client.clone());
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client);
    let pp = PostParams::default();
    config_maps
        .create(&pp, &config_map("kept", json!({}), json!({})))
        .await
        .unwrap();
    let old = events.create(&pp, &core_event("old")).await.unwrap();
    let mut watch = events
        .watch(&WatchParams::default(), &rv_of(&old))
        .await
        .unwrap()
        .boxed();
    // Creation times have one-second resolution, so each Event is due on a whole second: created 3 s
    // apart, the younger one is due at least 3 s after the older one (less one sweep, 100 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    events.create(&pp, &core_event("young")).await.unwrap();

    let deleted = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = watch.next().await {
            if let WatchEvent::Deleted(gone) = event.unwrap() {
                return gone;
            }
        }
        panic!("the watch ended before any Event was deleted");
    })
    .await
    .expect("an Event is deleted within the deadline");
    assert_eq!(deleted.metadata.name.as_deref(), Some("old"));
    assert!(
        events.get_opt("young").await.unwrap().is_some(),
        "an Event created later lives for its own TTL"
    );

    eventually("the younger Event to expire too", || async {
        events
            .get_opt("young")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        config_maps.get_opt("kept").await.unwrap().is_some(),
        "only Events expire"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Request accounting and injected errors
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn requests_are_counted_by_verb_resource_code_and_user_agent() {
    let sim = start_api_only().await;
    let client = client_with_agent(&sim, "conformance-test/1.0");
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    call(&client, "DELETE", "/kubesim/admin/requests", None).await;

    api.create(
        &PostParams::default(),
        &config_map("counted", json!({}), json!({})),
    )
    .await
    .unwrap();
    api.get("counted").await.unwrap();
    api.get("counted").await.unwrap();
    api_error(api.get("absent").await);
    api.list(&ListParams::default()).await.unwrap();
    api.patch_metadata(
        "counted",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .unwrap();

    let counts = call(&client, "GET", "/kubesim/admin/requests", None).await;
    let count = |verb: &str, code: u64| -> u64 {
        counts
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["verb"] == verb
                    && c["resource"] == "configmaps"
                    && c["code"] == code
                    && c["userAgent"] == "conformance-test/1.0"
            })
            .map(|c| c["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("create", 201), 1, "{counts}");
    assert_eq!(count("get", 200), 2, "{counts}");
    assert_eq!(count("get", 404), 1, "{counts}");
    assert_eq!(count("list", 200), 1, "{counts}");
    assert_eq!(count("patch", 200), 1, "{counts}");
    assert_eq!(sim.request_counts().len(), counts.as_array().unwrap().len());

    // Injected errors are answered, and counted, with their code.
    call(
        &client,
        "PUT",
        "/kubesim/admin/faults",
        Some(json!({"errors": [{"verb": "get", "resource": "configmaps", "code": 500, "rate": 1.0}]})),
    )
    .await;
    let err = api_error(api.get("counted").await);
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    let counts = sim.request_counts();
    assert!(
        counts
            .iter()
            .any(|c| c.key.verb == "get" && c.key.code == 500 && c.count == 1),
        "{counts:?}"
    );
    let faults = call(&client, "GET", "/kubesim/admin/faults", None).await;
    assert_eq!(faults["errors"][0]["code"], 500);

    sim.set_faults(kubesim::Faults::default());
    call(&client, "DELETE", "/kubesim/admin/requests", None).await;
    assert!(sim.request_counts().is_empty());
}
