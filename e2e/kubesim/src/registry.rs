//! The resource types kubesim serves: the built-in kinds it knows by heart and the custom resources registered
//! through `CustomResourceDefinition`s. Everything the HTTP layer needs to route a path, answer discovery and
//! print a `Table` comes from here.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

/// Where a resource's scale subresource reads and writes its numbers (JSON paths without the leading dot).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// A selector string (a CRD's `labelSelectorPath`) or, for the built-in workloads, the
    /// `metav1.LabelSelector` object that Scale's `status.selector` prints.
    pub label_selector: Option<String>,
}

/// One column of `kubectl get` output.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
}

/// One servable resource: a group, version and plural name, plus how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScalePaths>,
    /// `openAPIV3Schema` of a custom resource version; built-in kinds are not schema-validated.
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    /// Served from a CustomResourceDefinition (merge and JSON patch only, resourceVersion required on update).
    pub custom: bool,
    /// Objects of this kind carry `metadata.generation`, bumped on every change outside metadata and status.
    pub has_generation: bool,
    /// Fields a field selector may name besides `metadata.name` and `metadata.namespace` (a built-in kind's
    /// field labels, or a CRD version's `selectableFields`).
    pub selectable_fields: Vec<String>,
}

impl ResourceType {
    /// Checks that a field selector names only fields this resource can be selected by, with the API server's
    /// error for the first one it cannot.
    pub fn check_field_selector<'a>(
        &self,
        mut paths: impl Iterator<Item = &'a str>,
    ) -> Result<(), String> {
        let unknown = paths.find(|path| {
            !matches!(*path, "metadata.name" | "metadata.namespace")
                && !self.selectable_fields.iter().any(|f| f == path)
        });
        match unknown {
            None => Ok(()),
            Some(path) if self.custom => Err(format!(
                "\"{path}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            )),
            Some(path) => Err(format!("field label not supported: {path}")),
        }
    }
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    /// True when `api_version` is this type's `group/version` (or `version` in the core group).
    pub fn is_api_version(&self, api_version: &str) -> bool {
        if self.group.is_empty() {
            api_version == self.version
        } else {
            api_version
                .strip_prefix(self.group.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                == Some(self.version.as_str())
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `replicasets.apps`, or `pods` for the core group: the name used in API error messages.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `ReplicaSet.apps`, or `Pod`: the kind as it appears in validation errors.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The key objects of this resource are stored under, shared by every served version.
    pub fn storage_key(&self) -> StorageKey {
        StorageKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// Objects are stored once per group and plural, whatever version they were written in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey {
    pub group: String,
    pub plural: String,
}

/// Every resource type currently served.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_path: BTreeMap<(String, String, String), Arc<ResourceType>>,
}

impl Registry {
    /// The built-in kinds.
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::default();
        for rt in builtins() {
            registry.insert(rt);
        }
        registry
    }

    pub fn insert(&mut self, rt: ResourceType) {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        self.by_path.insert(key, Arc::new(rt));
    }

    /// Stops serving every version of a group's plural (a CRD was deleted).
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.by_path
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The type served for a kind in an apiVersion, e.g. (`apps/v1`, `ReplicaSet`).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.by_path
            .values()
            .find(|rt| rt.api_version() == api_version && rt.kind == kind)
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.by_path.values()
    }

    /// The groups served, with their versions, the core group excluded.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rt in self.by_path.values().filter(|rt| !rt.group.is_empty()) {
            let versions = groups.entry(rt.group.clone()).or_default();
            if !versions.contains(&rt.version) {
                versions.push(rt.version.clone());
            }
        }
        for versions in groups.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceType>> + 'a {
        self.by_path
            .values()
            .filter(move |rt| rt.group == group && rt.version == version)
    }
}

/// Kubernetes orders versions GA > beta > alpha, then by number.
fn version_priority(version: &str) -> (u8, u32, u32) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stability, minor_str) = if let Some(m) = tail.strip_prefix("beta") {
        (2, m)
    } else if let Some(m) = tail.strip_prefix("alpha") {
        (1, m)
    } else if tail.is_empty() {
        (3, "")
    } else {
        (0, "")
    };
    (stability, major, minor_str.parse().unwrap_or(0))
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    scale: bool,
}

const fn builtin(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced: true,
        short_names,
        status: false,
        scale: false,
    }
}

impl Builtin {
    const fn cluster_scoped(mut self) -> Builtin {
        self.namespaced = false;
        self
    }
    const fn with_status(mut self) -> Builtin {
        self.status = true;
        self
    }
    const fn with_scale(mut self) -> Builtin {
        self.scale = true;
        self
    }
}

const BUILTINS: &[Builtin] = &[
    builtin("", "v1", "Namespace", "namespaces", &["ns"])
        .cluster_scoped()
        .with_status(),
    builtin("", "v1", "Pod", "pods", &["po"]).with_status(),
    builtin("", "v1", "Service", "services", &["svc"]).with_status(),
    builtin("", "v1", "Endpoints", "endpoints", &["ep"]),
    builtin("", "v1", "ConfigMap", "configmaps", &["cm"]),
    builtin("", "v1", "Secret", "secrets", &[]),
    builtin("", "v1", "ServiceAccount", "serviceaccounts", &["sa"]),
    builtin("", "v1", "Event", "events", &["ev"]),
    builtin("events.k8s.io", "v1", "Event", "events", &["ev"]),
    builtin(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        &[],
    ),
    builtin("apps", "v1", "ReplicaSet", "replicasets", &["rs"])
        .with_status()
        .with_scale(),
    builtin("apps", "v1", "Deployment", "deployments", &["deploy"])
        .with_status()
        .with_scale(),
    builtin("batch", "v1", "Job", "jobs", &[]).with_status(),
    builtin("coordination.k8s.io", "v1", "Lease", "leases", &[]),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        &[],
    )
    .cluster_scoped(),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        &[],
    )
    .cluster_scoped(),
    builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", &[]),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        &[],
    ),
    builtin("networking.k8s.io", "v1", "Ingress", "ingresses", &["ing"]).with_status(),
    builtin(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        &["hpa"],
    )
    .with_status(),
    builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        &["pdb"],
    )
    .with_status(),
    builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
    )
    .cluster_scoped()
    .with_status(),
];

/// Kinds whose objects have no spec and so no generation.
const WITHOUT_GENERATION: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Event",
    "Endpoints",
    "EndpointSlice",
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

fn builtins() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| ResourceType {
            group: b.group.to_string(),
            version: b.version.to_string(),
            kind: b.kind.to_string(),
            plural: b.plural.to_string(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
            categories: if matches!(
                b.kind,
                "Pod" | "Service" | "ReplicaSet" | "Deployment" | "Job"
            ) {
                vec!["all".to_string()]
            } else {
                Vec::new()
            },
            status_subresource: b.status,
            scale: b.scale.then(|| ScalePaths {
                spec_replicas: "spec.replicas".to_string(),
                status_replicas: "status.replicas".to_string(),
                label_selector: Some("spec.selector".to_string()),
            }),
            schema: None,
            printer_columns: builtin_columns(b.kind),
            selectable_fields: builtin_field_labels(b.group, b.kind),
            custom: false,
            has_generation: !WITHOUT_GENERATION.contains(&b.kind),
        })
        .collect()
}

fn column(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        json_path: json_path.to_string(),
        description: String::new(),
        priority: 0,
    }
}

/// A column `kubectl get` shows only with `-o wide`.
fn wide(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        priority: 1,
        ..column(name, type_, json_path)
    }
}

/// The columns `kubectl get` shows for the built-in kinds that tests look at, as kube-apiserver's table
/// printers name them; the Table puts `Age` after the priority-0 columns, before the wide ones.
fn builtin_columns(kind: &str) -> Vec<PrinterColumn> {
    match kind {
        "Pod" => vec![
            column("Ready", "string", "kubesim:pod-ready"),
            column("Status", "string", "kubesim:pod-status"),
            column("Restarts", "string", "kubesim:pod-restarts"),
            wide("IP", "string", ".status.podIP"),
            wide("Node", "string", ".spec.nodeName"),
        ],
        "ReplicaSet" => vec![
            column("Desired", "integer", ".spec.replicas"),
            column("Current", "integer", "kubesim:int:/status/replicas"),
            column("Ready", "integer", "kubesim:int:/status/readyReplicas"),
            wide("Containers", "string", "kubesim:template-containers"),
            wide("Images", "string", "kubesim:template-images"),
            wide("Selector", "string", "kubesim:workload-selector"),
        ],
        "Deployment" => vec![
            column("Ready", "string", "kubesim:deployment-ready"),
            column(
                "Up-to-date",
                "integer",
                "kubesim:int:/status/updatedReplicas",
            ),
            column(
                "Available",
                "integer",
                "kubesim:int:/status/availableReplicas",
            ),
            wide("Containers", "string", "kubesim:template-containers"),
            wide("Images", "string", "kubesim:template-images"),
            wide("Selector", "string", "kubesim:workload-selector"),
        ],
        "Service" => vec![
            column("Type", "string", ".spec.type"),
            column("Cluster-IP", "string", ".spec.clusterIP"),
            column("External-IP", "string", "kubesim:service-external-ip"),
            column("Port(s)", "string", "kubesim:service-ports"),
            wide("Selector", "string", "kubesim:service-selector"),
        ],
        "Endpoints" => vec![column("Endpoints", "string", "kubesim:endpoints")],
        "Job" => vec![
            column("Status", "string", "kubesim:job-status"),
            column("Completions", "string", "kubesim:job-completions"),
        ],
        "Lease" => vec![column("Holder", "string", ".spec.holderIdentity")],
        "Namespace" => vec![column("Status", "string", ".status.phase")],
        "CustomResourceDefinition" => vec![column(
            "Created At",
            "string",
            ".metadata.creationTimestamp",
        )],
        _ => Vec::new(),
    }
}

/// The field labels a built-in kind supports in field selectors, beyond name and namespace, as its
/// `AddFieldLabelConversionFunc` lists them.
fn builtin_field_labels(group: &str, kind: &str) -> Vec<String> {
    const EVENT: &[&str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    let labels: &[&str] = match (group, kind) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "Event") => EVENT,
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        _ => &[],
    };
    labels.iter().map(|l| l.to_string()).collect()
}

/// Reads the resource types a CustomResourceDefinition declares, one per served version.
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = str_at(spec, "group").ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = str_at(names, "plural").ok_or("spec.names.plural: Required value")?;
    let kind = str_at(names, "kind").ok_or("spec.names.kind: Required value")?;
    let singular = str_at(names, "singular")
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let expected_name = format!("{plural}.{group}");
    if str_at(crd.get("metadata").unwrap_or(&Value::Null), "name") != Some(&expected_name) {
        return Err(format!(
            "metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group: \"{expected_name}\""
        ));
    }
    let namespaced = match str_at(spec, "scope") {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => {
            return Err(
                "spec.scope: Unsupported value: supported values: \"Cluster\", \"Namespaced\""
                    .into(),
            );
        }
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        )?;
    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut types = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let name = str_at(version, "name")
            .ok_or_else(|| format!("spec.versions[{i}].name: Required value"))?;
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let subresources = version.get("subresources").unwrap_or(&Value::Null);
        let scale = subresources.get("scale").map(|s| ScalePaths {
            spec_replicas: trim_path(str_at(s, "specReplicasPath").unwrap_or(".spec.replicas")),
            status_replicas: trim_path(
                str_at(s, "statusReplicasPath").unwrap_or(".status.replicas"),
            ),
            label_selector: str_at(s, "labelSelectorPath").map(trim_path),
        });
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| cols.iter().filter_map(printer_column).collect())
            .unwrap_or_default();
        types.push(ResourceType {
            group: group.to_string(),
            version: name.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            namespaced,
            short_names: strings("shortNames"),
            categories: strings("categories"),
            status_subresource: subresources.get("status").is_some(),
            scale,
            schema: version
                .get("schema")
                .and_then(|s| s.get("openAPIV3Schema"))
                .cloned(),
            printer_columns,
            selectable_fields: selectable_fields(version),
            custom: true,
            has_generation: true,
        });
    }
    Ok(types)
}

/// A CRD version's `selectableFields`, as field selector paths.
fn selectable_fields(version: &Value) -> Vec<String> {
    version
        .get("selectableFields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| str_at(f, "jsonPath"))
                .map(trim_path)
                .collect()
        })
        .unwrap_or_default()
}

fn printer_column(col: &Value) -> Option<PrinterColumn> {
    Some(PrinterColumn {
        name: str_at(col, "name")?.to_string(),
        type_: str_at(col, "type").unwrap_or("string").to_string(),
        json_path: str_at(col, "jsonPath")?.to_string(),
        description: str_at(col, "description").unwrap_or_default().to_string(),
        priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0),
    })
}

fn trim_path(path: &str) -> String {
    path.trim_start_matches('.').to_string()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The `APIResource` entry of discovery for a resource type (and its subresources).
pub fn api_resources(rt: &ResourceType) -> Vec<Value> {
    let verbs = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let mut main = json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": verbs,
    });
    if !rt.short_names.is_empty() {
        main["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        main["categories"] = json!(rt.categories);
    }
    let mut out = vec![main];
    if rt.status_subresource {
        out.push(json!({"name": format!("{}/status", rt.plural), "singularName": "", "namespaced": rt.namespaced, "kind": rt.kind, "verbs": ["get", "patch", "update"]}));
    }
    if rt.scale.is_some() {
        out.push(json!({"name": format!("{}/scale", rt.plural), "singularName": "", "namespaced": rt.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    if rt.kind == "Pod" && rt.group.is_empty() {
        out.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_ga_first() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta1", "v2"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta1", "v1alpha1"]);
    }

    #[test]
    fn crd_versions_become_types() {
        let crd = json!({
            "metadata": {"name": "rollouts.argoproj.io"},
            "spec": {"group": "argoproj.io", "scope": "Namespaced",
                "names": {"plural": "rollouts", "kind": "Rollout", "shortNames": ["ro"]},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.HPAReplicas", "labelSelectorPath": ".status.selector"}},
                    "additionalPrinterColumns": [{"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"}]}]}
        });
        let types = from_crd(&crd).unwrap();
        assert_eq!(types.len(), 1);
        let rt = &types[0];
        assert_eq!(rt.singular, "rollout");
        assert!(rt.status_subresource);
        assert_eq!(
            rt.scale.as_ref().unwrap().status_replicas,
            "status.HPAReplicas"
        );
        assert_eq!(rt.printer_columns[0].name, "Desired");
    }

    #[test]
    fn field_selectors_name_supported_fields_only() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        assert_eq!(
            pods.check_field_selector(["metadata.name", "status.phase"].into_iter()),
            Ok(())
        );
        assert_eq!(
            pods.check_field_selector(["spec.containers"].into_iter()),
            Err("field label not supported: spec.containers".into())
        );
        let crd = json!({
            "metadata": {"name": "things.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "selectableFields": [{"jsonPath": ".spec.color"}]}]}
        });
        let things = &from_crd(&crd).unwrap()[0];
        assert_eq!(
            things.check_field_selector(["spec.color"].into_iter()),
            Ok(())
        );
        assert!(
            things
                .check_field_selector(["spec.size"].into_iter())
                .unwrap_err()
                .starts_with("\"spec.size\" is not a known field selector")
        );
    }

    #[test]
    fn crd_with_a_wrong_name_is_rejected() {
        let crd = json!({"metadata": {"name": "x"}, "spec": {"group": "g.io", "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
        assert!(from_crd(&crd).unwrap_err().contains("things.g.io"));
    }
}
