//! Strategic merge patch (`application/strategic-merge-patch+json`) for the built-in kinds kubesim serves.
//!
//! This module is where kubesim answers a `PATCH` with a strategic merge patch the way the real API server
//! does: `kubectl apply`, `kubectl patch`, `kubectl rollout restart` and controllers that patch with
//! `Patch::Strategic` all send these. Custom resources take JSON merge patch in the real server, so callers only
//! route built-in kinds here.
//!
//! # Semantics
//!
//! * Maps merge recursively; `null` deletes a key (and nulls inside a newly added subtree are dropped).
//!   Scalars replace. Lists replace unless the schema table gives them a merge strategy.
//! * Lists with `patchStrategy=merge` and a `patchMergeKey` merge element by element: a patch element merges
//!   into the live element with the same key value, a patch element with a new key is added. Lists with
//!   `patchStrategy=merge` and no key (lists of primitives such as `finalizers`) are merged as a set: the union,
//!   without duplicates.
//! * Ordering of a merged list follows apimachinery: elements named in the patch take the patch's relative order,
//!   elements only on the server keep theirs, and the two are interleaved by their position in the live list.
//!   An element the patch *adds* therefore lands before the server-only elements it cannot be placed against
//!   (adding container `b` to `[a]` gives `[b, a]`, exactly as `kubectl patch` shows against a real cluster);
//!   patching elements that already exist keeps the live order unless the patch lists them in another order.
//! * Directives:
//!   * `$patch: replace` in a map replaces the map with the patch's contents; as a list element it replaces
//!     the whole list with the patch's other elements.
//!   * `$patch: delete` in a map removes the map (the key disappears, as with `null`); as a list element it
//!     removes every live element whose merge key matches.
//!   * `$patch: merge` is the default and is accepted anywhere.
//!   * `$retainKeys: [..]` keeps only the listed keys of the map after merging; a patched field missing from the
//!     list is an error, as upstream.
//!   * `$deleteFromPrimitiveList/<field>: [..]` removes those values from the list `<field>`.
//!   * `$setElementOrder/<field>: [..]` (merge keys as `{key: value}` maps, or the values of a primitive list)
//!     is applied: the listed elements take that order, the others keep their live relative order and are
//!     interleaved as above. The patch list must be a subsequence of the order list. On lists without a merge
//!     strategy (and on unknown kinds) it is accepted and dropped.
//!   * Directive keys never survive in the result, not even inside subtrees that are added wholesale.
//!
//! # Schema table coverage
//!
//! The table (`TYPES`, entered through `KINDS`) names, per type context, the fields that are merge lists:
//!
//! | Context | Field: merge key |
//! |---|---|
//! | `metadata` (every kind) | `ownerReferences`: `uid`; `finalizers`: set |
//! | pod spec (`Pod.spec`, every `spec.template.spec`, `CronJob.spec.jobTemplate.spec.template.spec`) | `containers`, `initContainers`, `ephemeralContainers`: `name`; `volumes`: `name`; `imagePullSecrets`: `name`; `hostAliases`: `ip`; `topologySpreadConstraints`: `topologyKey`; `resourceClaims`: `name`; `schedulingGates`: `name` (`tolerations` and everything else replace) |
//! | container (all three container lists) | `ports`: `containerPort`; `env`: `name`; `volumeMounts`: `mountPath`; `volumeDevices`: `devicePath` |
//! | `Pod.status` | `conditions`: `type`; `podIPs`, `hostIPs`: `ip`; `resourceClaimStatuses`: `name` |
//! | `Service.spec` | `ports`: `port` |
//! | `status` of Service, Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController, Job, Namespace, PersistentVolumeClaim, HorizontalPodAutoscaler, PodDisruptionBudget | `conditions`: `type` |
//! | `Node.spec` / `Node.status` | `podCIDRs`: set / `conditions`, `addresses`: `type` |
//! | `ServiceAccount` | `secrets`: `name` |
//!
//! Workload kinds (Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController, Job) reach a pod spec
//! through `spec.template`, CronJob through `spec.jobTemplate.spec.template`, PodTemplate through `template`.
//! Other built-in kinds kubesim serves (ConfigMap, Secret, Endpoints, EndpointSlice, Event, Lease, Ingress,
//! CustomResourceDefinition, ...) only have the `metadata` entries. To extend the table, add a `TypeDef` (or a
//! field to one) mirroring the `patchStrategy`/`patchMergeKey` struct tags in `k8s.io/api`, and map a new kind
//! in `KINDS`; the `schema_table_is_consistent` test checks every reference resolves.
//!
//! # Unknown kinds
//!
//! A kind missing from `KINDS` has no schema: maps merge and lists replace, i.e. JSON merge patch (RFC 7386)
//! semantics. Directives are still processed where they need no schema (`$patch` on maps, `$retainKeys`,
//! `$deleteFromPrimitiveList`), list-element `$patch` markers and `$setElementOrder` are dropped, so no
//! directive key ever reaches the stored object.
//!
//! # Approximations
//!
//! * Only the fields in the table merge; a rarer merge list of a built-in type that is missing from it is
//!   replaced instead.
//! * No typed decoding: unknown fields are kept (the real server drops them), and merge keys compare as JSON
//!   values (`80` and `80.0` differ).
//! * `$patch: delete` on a map removes the key; apimachinery leaves an empty map behind when the key existed.
//! * `$patch: merge` is accepted everywhere; upstream rejects it inside lists.
//! * `$deleteFromPrimitiveList` removes values from any list, not only from merge lists.
//! * Keys that start with `$` but are not directives are dropped silently (no built-in field starts with `$`).
//! * Patches nested deeper than `MAX_DEPTH` levels are rejected (`serde_json` refuses deeper input anyway).

use serde_json::{Map, Value};

/// A JSON object.
type Object = Map<String, Value>;

/// The type context of a value: `None` when the schema does not know it (its lists replace).
type Schema = Option<&'static TypeDef>;

/// Directive key holding `replace`, `merge` or `delete`.
const PATCH_DIRECTIVE: &str = "$patch";
/// Directive key listing the keys of a map to keep.
const RETAIN_KEYS: &str = "$retainKeys";
/// Prefix of the directive that orders a list: `$setElementOrder/<field>`.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// Prefix of the directive that removes values from a primitive list: `$deleteFromPrimitiveList/<field>`.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
/// Deepest patch accepted, in nested maps and lists (`serde_json` itself stops parsing at 128).
const MAX_DEPTH: usize = 128;

/// Applies a strategic merge patch to `original` (a whole object of the given kind, e.g. "Deployment", "Pod",
/// "Service", "ReplicaSet") and returns the result.
///
/// Kinds missing from the schema table get JSON merge patch semantics with directives stripped (see the module
/// documentation).
///
/// # Errors
///
/// `Err(message)` when the patch is malformed: not a JSON object, a bad or misplaced directive, a list element
/// without its merge key, a `$retainKeys` list missing a patched field, a `$setElementOrder` list that
/// contradicts the patch list, or nesting deeper than `MAX_DEPTH`. Also when `original` is not an object.
pub fn apply(original: &Value, patch: &Value, kind: &str) -> Result<Value, String> {
    let patch = patch.as_object().ok_or_else(|| {
        format!(
            "a strategic merge patch must be a JSON object, not {}",
            json_type(patch)
        )
    })?;
    let original = original.as_object().ok_or_else(|| {
        format!(
            "the object to patch must be a JSON object, not {}",
            json_type(original)
        )
    })?;
    if patch.values().any(|v| too_deep(v, MAX_DEPTH - 1)) {
        return Err(format!(
            "the patch is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    merge_map(Some(original), patch, root_type(kind))?
        .map(Value::Object)
        .ok_or_else(|| "$patch: delete cannot delete the whole object".to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// Schema table
// ---------------------------------------------------------------------------------------------------------------

/// How a list-valued field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// No patch strategy: the patch's list replaces the live one (maps are merged regardless).
    Atomic,
    /// `patchStrategy=merge` with `patchMergeKey=<key>`: objects merge by that key.
    Keyed(&'static str),
    /// `patchStrategy=merge` without a merge key: a list of primitives merged as a set.
    Set,
}

/// One field of a type that needs more than the defaults, or that leads to such a type.
#[derive(Debug, Clone, Copy)]
struct Field {
    /// The JSON field name.
    name: &'static str,
    /// How the field is patched when it holds a list.
    list: ListStrategy,
    /// The type of the field's value (for a map) or of its elements (for a list), when the table knows it.
    ty: Option<&'static str>,
}

/// A type context: the fields of one API type that the table knows about.
#[derive(Debug)]
struct TypeDef {
    /// Name of the type, referenced by [`Field::ty`] and [`KINDS`].
    name: &'static str,
    /// Its fields with a strategy or a known type; any other field merges (maps) or replaces (lists).
    fields: &'static [Field],
}

impl TypeDef {
    /// The table entry for `name`, if any.
    fn field(&self, name: &str) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields.iter().find(|f| f.name == name)
    }
}

/// A map-valued field of type `ty`.
const fn object(name: &'static str, ty: &'static str) -> Field {
    Field {
        name,
        list: ListStrategy::Atomic,
        ty: Some(ty),
    }
}

/// A list of objects merged by `key`, whose elements need no further schema.
const fn keyed(name: &'static str, key: &'static str) -> Field {
    Field {
        name,
        list: ListStrategy::Keyed(key),
        ty: None,
    }
}

/// A list of objects of type `ty` merged by `key`.
const fn keyed_of(name: &'static str, key: &'static str, ty: &'static str) -> Field {
    Field {
        name,
        list: ListStrategy::Keyed(key),
        ty: Some(ty),
    }
}

/// A list of primitives merged as a set.
const fn set(name: &'static str) -> Field {
    Field {
        name,
        list: ListStrategy::Set,
        ty: None,
    }
}

/// Every object's `metadata`.
const METADATA: Field = object("metadata", "ObjectMeta");

/// The type contexts. Names are kubesim's own; they follow the Go types where one type is meant.
const TYPES: &[TypeDef] = &[
    TypeDef {
        name: "ObjectMeta",
        fields: &[keyed("ownerReferences", "uid"), set("finalizers")],
    },
    TypeDef {
        name: "PodTemplateSpec",
        fields: &[METADATA, object("spec", "PodSpec")],
    },
    TypeDef {
        name: "PodSpec",
        fields: &[
            keyed_of("containers", "name", "Container"),
            keyed_of("initContainers", "name", "Container"),
            keyed_of("ephemeralContainers", "name", "Container"),
            keyed("volumes", "name"),
            keyed("imagePullSecrets", "name"),
            keyed("hostAliases", "ip"),
            keyed("topologySpreadConstraints", "topologyKey"),
            keyed("resourceClaims", "name"),
            keyed("schedulingGates", "name"),
        ],
    },
    TypeDef {
        name: "Container",
        fields: &[
            keyed("ports", "containerPort"),
            keyed("env", "name"),
            keyed("volumeMounts", "mountPath"),
            keyed("volumeDevices", "devicePath"),
        ],
    },
    TypeDef {
        name: "PodStatus",
        fields: &[
            keyed("conditions", "type"),
            keyed("podIPs", "ip"),
            keyed("hostIPs", "ip"),
            keyed("resourceClaimStatuses", "name"),
        ],
    },
    TypeDef {
        name: "Pod",
        fields: &[
            METADATA,
            object("spec", "PodSpec"),
            object("status", "PodStatus"),
        ],
    },
    TypeDef {
        name: "ServiceSpec",
        fields: &[keyed("ports", "port")],
    },
    TypeDef {
        name: "Service",
        fields: &[
            METADATA,
            object("spec", "ServiceSpec"),
            object("status", "ConditionsStatus"),
        ],
    },
    TypeDef {
        name: "ConditionsStatus",
        fields: &[keyed("conditions", "type")],
    },
    TypeDef {
        name: "TemplatedSpec",
        fields: &[object("template", "PodTemplateSpec")],
    },
    TypeDef {
        name: "Workload",
        fields: &[
            METADATA,
            object("spec", "TemplatedSpec"),
            object("status", "ConditionsStatus"),
        ],
    },
    TypeDef {
        name: "JobTemplateSpec",
        fields: &[METADATA, object("spec", "TemplatedSpec")],
    },
    TypeDef {
        name: "CronJobSpec",
        fields: &[object("jobTemplate", "JobTemplateSpec")],
    },
    TypeDef {
        name: "CronJob",
        fields: &[METADATA, object("spec", "CronJobSpec")],
    },
    TypeDef {
        name: "PodTemplate",
        fields: &[METADATA, object("template", "PodTemplateSpec")],
    },
    TypeDef {
        name: "NodeSpec",
        fields: &[set("podCIDRs")],
    },
    TypeDef {
        name: "NodeStatus",
        fields: &[keyed("conditions", "type"), keyed("addresses", "type")],
    },
    TypeDef {
        name: "Node",
        fields: &[
            METADATA,
            object("spec", "NodeSpec"),
            object("status", "NodeStatus"),
        ],
    },
    TypeDef {
        name: "ServiceAccount",
        fields: &[METADATA, keyed("secrets", "name")],
    },
    TypeDef {
        name: "ObjectWithConditions",
        fields: &[METADATA, object("status", "ConditionsStatus")],
    },
    TypeDef {
        name: "Object",
        fields: &[METADATA],
    },
];

/// Which type context each built-in kind starts in.
const KINDS: &[(&str, &str)] = &[
    ("Pod", "Pod"),
    ("Service", "Service"),
    ("Deployment", "Workload"),
    ("ReplicaSet", "Workload"),
    ("StatefulSet", "Workload"),
    ("DaemonSet", "Workload"),
    ("ReplicationController", "Workload"),
    ("Job", "Workload"),
    ("CronJob", "CronJob"),
    ("PodTemplate", "PodTemplate"),
    ("Node", "Node"),
    ("ServiceAccount", "ServiceAccount"),
    ("Namespace", "ObjectWithConditions"),
    ("PersistentVolumeClaim", "ObjectWithConditions"),
    ("HorizontalPodAutoscaler", "ObjectWithConditions"),
    ("PodDisruptionBudget", "ObjectWithConditions"),
    ("ConfigMap", "Object"),
    ("Secret", "Object"),
    ("Endpoints", "Object"),
    ("EndpointSlice", "Object"),
    ("Event", "Object"),
    ("Lease", "Object"),
    ("Ingress", "Object"),
    ("PersistentVolume", "Object"),
    ("ResourceQuota", "Object"),
    ("LimitRange", "Object"),
    ("NetworkPolicy", "Object"),
    ("Role", "Object"),
    ("RoleBinding", "Object"),
    ("ClusterRole", "Object"),
    ("ClusterRoleBinding", "Object"),
    ("PriorityClass", "Object"),
    ("StorageClass", "Object"),
    ("CustomResourceDefinition", "Object"),
    ("Scale", "Object"),
];

/// The type context named `name`.
fn type_def(name: &str) -> Schema {
    TYPES.iter().find(|t| t.name == name)
}

/// The type context a whole object of `kind` starts in; `None` for unknown kinds.
fn root_type(kind: &str) -> Schema {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .and_then(|(_, ty)| type_def(ty))
}

/// The table entry for field `name` in context `ty`.
fn field_of(ty: Schema, name: &str) -> Option<&'static Field> {
    ty.and_then(|t| t.field(name))
}

/// The type context of a field's value or elements.
fn child_type(field: Option<&'static Field>) -> Schema {
    field.and_then(|f| f.ty).and_then(type_def)
}

// ---------------------------------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------------------------------

/// What a `$patch` directive in a map asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

/// Reads the `$patch` value of a map (absent means merge).
fn patch_directive(value: Option<&Value>) -> Result<Directive, String> {
    match value {
        None => Ok(Directive::Merge),
        Some(Value::String(s)) => match s.as_str() {
            "merge" => Ok(Directive::Merge),
            "replace" => Ok(Directive::Replace),
            "delete" => Ok(Directive::Delete),
            other => Err(format!(
                "unknown $patch directive {other:?}: expected replace, merge or delete"
            )),
        },
        Some(other) => Err(format!("$patch must be a string, not {}", json_type(other))),
    }
}

/// Merges `patch` into `original` (absent when the key is new); `None` means the map is deleted.
fn merge_map(
    original: Option<&Object>,
    patch: &Object,
    ty: Schema,
) -> Result<Option<Object>, String> {
    match patch_directive(patch.get(PATCH_DIRECTIVE))? {
        Directive::Delete => Ok(None),
        Directive::Replace => merge_fields(None, patch, ty).map(Some),
        Directive::Merge => merge_fields(original, patch, ty).map(Some),
    }
}

/// The directives of one map, other than `$patch`.
#[derive(Debug, Default)]
struct MapDirectives<'a> {
    /// `$retainKeys`.
    retain: Option<Vec<&'a str>>,
    /// `$setElementOrder/<field>` entries.
    orders: Vec<(&'a str, &'a [Value])>,
    /// `$deleteFromPrimitiveList/<field>` entries.
    deletions: Vec<(&'a str, &'a [Value])>,
}

/// Collects and validates the directives of a patch map.
fn parse_directives(patch: &Object) -> Result<MapDirectives<'_>, String> {
    let mut directives = MapDirectives::default();
    for (key, value) in patch {
        if key == RETAIN_KEYS {
            directives.retain = Some(retain_list(value)?);
        } else if let Some(field) = directive_field(key, SET_ELEMENT_ORDER)? {
            directives.orders.push((field, directive_list(key, value)?));
        } else if let Some(field) = directive_field(key, DELETE_FROM_PRIMITIVE_LIST)? {
            directives
                .deletions
                .push((field, directive_list(key, value)?));
        }
    }
    Ok(directives)
}

/// The field named by a `<prefix>/<field>` directive key; `None` when `key` is not that directive.
fn directive_field<'a>(key: &'a str, prefix: &str) -> Result<Option<&'a str>, String> {
    let Some(rest) = key.strip_prefix(prefix) else {
        return Ok(None);
    };
    match rest.strip_prefix('/') {
        Some(field) if !field.is_empty() => Ok(Some(field)),
        _ => Err(format!(
            "malformed directive {key:?}: expected {prefix}/<field>"
        )),
    }
}

/// The list a list directive carries.
fn directive_list<'a>(key: &str, value: &'a Value) -> Result<&'a [Value], String> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| format!("{key} must be a list, not {}", json_type(value)))
}

/// The keys a `$retainKeys` directive lists.
fn retain_list(value: &Value) -> Result<Vec<&str>, String> {
    directive_list(RETAIN_KEYS, value)?
        .iter()
        .map(|key| {
            key.as_str()
                .ok_or_else(|| format!("{RETAIN_KEYS} must list strings, found {key}"))
        })
        .collect()
}

/// Merges the fields of `patch` into a copy of `original`, then applies the map's directives.
fn merge_fields(original: Option<&Object>, patch: &Object, ty: Schema) -> Result<Object, String> {
    let directives = parse_directives(patch)?;
    let mut out = original.cloned().unwrap_or_default();
    if let Some(keep) = &directives.retain {
        retain_keys(&mut out, patch, keep)?;
    }
    for (key, value) in patch.iter().filter(|(key, _)| !key.starts_with('$')) {
        merge_field(&mut out, key, value, field_of(ty, key))?;
    }
    for (name, values) in &directives.deletions {
        delete_from_list(&mut out, name, values);
    }
    for (name, order) in &directives.orders {
        let lists = OrderLists {
            order,
            server: list_at(original, name),
            patched: list_at(Some(patch), name),
        };
        set_element_order(&mut out, name, &lists, field_of(ty, name))?;
    }
    Ok(out)
}

/// The list stored under `name`, if there is one.
fn list_at<'a>(map: Option<&'a Object>, name: &str) -> Option<&'a [Value]> {
    map.and_then(|m| m.get(name))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
}

/// Applies `$retainKeys`: every patched field must be listed; unlisted live fields are cleared.
fn retain_keys(out: &mut Object, patch: &Object, keep: &[&str]) -> Result<(), String> {
    let unlisted = patch.iter().find(|(key, value)| {
        !key.starts_with('$') && !value.is_null() && !keep.contains(&key.as_str())
    });
    if let Some((key, _)) = unlisted {
        return Err(format!(
            "{RETAIN_KEYS} does not list the patched field {key:?}"
        ));
    }
    out.retain(|key, _| keep.contains(&key.as_str()));
    Ok(())
}

/// Merges one patch field into `out`.
fn merge_field(
    out: &mut Object,
    key: &str,
    value: &Value,
    field: Option<&'static Field>,
) -> Result<(), String> {
    let merged = match value {
        Value::Null => None,
        Value::Object(patch) => merge_map(
            out.get(key).and_then(Value::as_object),
            patch,
            child_type(field),
        )?
        .map(Value::Object),
        Value::Array(patch) => {
            let live = out.get(key).and_then(Value::as_array).map(Vec::as_slice);
            Some(Value::Array(merge_list(live, patch, key, field)?))
        }
        scalar => Some(scalar.clone()),
    };
    match merged {
        Some(v) => out.insert(key.to_owned(), v),
        None => out.remove(key),
    };
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------------------------

/// Merges the patch list of field `name` into the live list according to the field's strategy.
fn merge_list(
    original: Option<&[Value]>,
    patch: &[Value],
    name: &str,
    field: Option<&'static Field>,
) -> Result<Vec<Value>, String> {
    let strategy = field.map_or(ListStrategy::Atomic, |f| f.list);
    if strategy == ListStrategy::Atomic {
        return replace_list(patch, child_type(field));
    }
    if patch.is_empty() {
        return Ok(original.map(<[Value]>::to_vec).unwrap_or_default());
    }
    match (strategy, holds_objects(patch, name)?) {
        (ListStrategy::Keyed(key), true) => merge_keyed(original, patch, key, child_type(field)),
        (_, true) => Err(format!(
            "cannot merge the list {name:?} of objects: it has no merge key"
        )),
        (_, false) => Ok(merge_set(original, patch)),
    }
}

/// Whether the patch list holds objects (`true`) or primitives (`false`); mixing both is an error.
fn holds_objects(patch: &[Value], name: &str) -> Result<bool, String> {
    let objects = patch.iter().filter(|v| v.is_object()).count();
    if objects == 0 {
        Ok(false)
    } else if objects == patch.len() {
        Ok(true)
    } else {
        Err(format!(
            "the patch list {name:?} mixes objects and other values"
        ))
    }
}

/// A list without a merge strategy: the patch list, with directives processed in its elements.
fn replace_list(patch: &[Value], ty: Schema) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(patch.len());
    for element in patch {
        if let Some(value) = clean_element(element, ty)? {
            out.push(value);
        }
    }
    Ok(out)
}

/// One element of a replaced list; `None` for `$patch` markers, which have nothing to act on there.
fn clean_element(element: &Value, ty: Schema) -> Result<Option<Value>, String> {
    match element {
        Value::Object(item) => match patch_directive(item.get(PATCH_DIRECTIVE))? {
            Directive::Merge => merge_fields(None, item, ty).map(|m| Some(Value::Object(m))),
            Directive::Replace | Directive::Delete => Ok(None),
        },
        Value::Array(inner) => replace_list(inner, None).map(|l| Some(Value::Array(l))),
        scalar => Ok(Some(scalar.clone())),
    }
}

/// A keyed patch list split into its parts.
#[derive(Debug, Default)]
struct KeyedPatch<'a> {
    /// Elements to merge, in patch order.
    items: Vec<&'a Object>,
    /// Whether a `$patch: replace` element asked to replace the whole list.
    replace: bool,
    /// Merge key values of `$patch: delete` elements.
    deleted: Vec<&'a Value>,
}

/// Splits a list of patch objects into elements to merge and `$patch` markers.
fn split_keyed_patch<'a>(patch: &'a [Value], key: &str) -> Result<KeyedPatch<'a>, String> {
    let mut split = KeyedPatch::default();
    for item in patch.iter().filter_map(Value::as_object) {
        match patch_directive(item.get(PATCH_DIRECTIVE))? {
            Directive::Replace => split.replace = true,
            Directive::Delete => split.deleted.push(merge_key(item, key)?),
            Directive::Merge => {
                merge_key(item, key)?;
                split.items.push(item);
            }
        }
    }
    Ok(split)
}

/// The merge key value of a patch list element.
fn merge_key<'a>(item: &'a Object, key: &str) -> Result<&'a Value, String> {
    item.get(key).ok_or_else(|| {
        format!(
            "list element {} has no merge key {key:?}",
            Value::Object(item.clone())
        )
    })
}

/// Merges a list of objects by `key`.
fn merge_keyed(
    original: Option<&[Value]>,
    patch: &[Value],
    key: &'static str,
    ty: Schema,
) -> Result<Vec<Value>, String> {
    let split = split_keyed_patch(patch, key)?;
    if split.replace {
        return split
            .items
            .iter()
            .map(|item| merge_fields(None, item, ty).map(Value::Object))
            .collect();
    }
    let id = Identity::MergeKey(key);
    let mut merged: Vec<Value> = original
        .unwrap_or_default()
        .iter()
        .filter(|element| !id.of(element).is_some_and(|k| split.deleted.contains(&k)))
        .cloned()
        .collect();
    let server = identities(&merged, id);
    for item in &split.items {
        merge_keyed_item(&mut merged, item, key, ty)?;
    }
    let wanted: Vec<Value> = split
        .items
        .iter()
        .filter_map(|item| item.get(key))
        .cloned()
        .collect();
    Ok(interleave(merged, &wanted, &server, id))
}

/// Merges one patch element into the live element with the same key, or adds it.
fn merge_keyed_item(
    merged: &mut Vec<Value>,
    item: &Object,
    key: &str,
    ty: Schema,
) -> Result<(), String> {
    let wanted = item.get(key);
    match merged.iter_mut().find(|element| element.get(key) == wanted) {
        Some(slot) => {
            let result = merge_fields(slot.as_object(), item, ty)?;
            *slot = Value::Object(result);
        }
        None => merged.push(Value::Object(merge_fields(None, item, ty)?)),
    }
    Ok(())
}

/// Merges a list of primitives as a set: the union without duplicates.
fn merge_set(original: Option<&[Value]>, patch: &[Value]) -> Vec<Value> {
    let server = original.unwrap_or_default();
    let mut merged: Vec<Value> = Vec::with_capacity(server.len() + patch.len());
    for value in server.iter().chain(patch) {
        if !merged.contains(value) {
            merged.push(value.clone());
        }
    }
    interleave(merged, patch, server, Identity::Whole)
}

/// Applies `$deleteFromPrimitiveList/<name>`.
fn delete_from_list(out: &mut Object, name: &str, values: &[Value]) {
    if let Some(Value::Array(list)) = out.get_mut(name) {
        list.retain(|v| !values.contains(v));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------------------------

/// How list elements are told apart when ordering.
#[derive(Debug, Clone, Copy)]
enum Identity<'k> {
    /// By the value of a merge key.
    MergeKey(&'k str),
    /// By the whole value (lists of primitives).
    Whole,
}

impl Identity<'_> {
    /// The identity of `element`; `None` for an object lacking its merge key.
    fn of(self, element: &Value) -> Option<&Value> {
        match self {
            Identity::MergeKey(key) => element.get(key),
            Identity::Whole => Some(element),
        }
    }
}

/// The identities of the elements of `list`, in order.
fn identities(list: &[Value], id: Identity<'_>) -> Vec<Value> {
    list.iter()
        .filter_map(|element| id.of(element))
        .cloned()
        .collect()
}

/// Where `element` sits in a list of identities.
fn position_in(ids: &[Value], element: &Value, id: Identity<'_>) -> Option<usize> {
    id.of(element).and_then(|k| ids.iter().position(|x| x == k))
}

/// Orders `items` as apimachinery does: elements named in `wanted` take that order, the others keep the order of
/// `server`, and a server-only element goes before a wanted one only when it comes first in `server`.
fn interleave(
    items: Vec<Value>,
    wanted: &[Value],
    server: &[Value],
    id: Identity<'_>,
) -> Vec<Value> {
    let total = items.len();
    let (mut named, mut rest): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|v| position_in(wanted, v, id).is_some());
    named.sort_by_key(|v| position_in(wanted, v, id));
    rest.sort_by_key(|v| position_in(server, v, id).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(total);
    let mut rest = rest.into_iter().peekable();
    for item in named {
        let mine = position_in(server, &item, id);
        while let Some(next) = rest.peek() {
            let goes_first =
                matches!((position_in(server, next, id), mine), (Some(a), Some(b)) if a < b);
            if !goes_first {
                break;
            }
            out.extend(rest.next());
        }
        out.push(item);
    }
    out.extend(rest);
    out
}

/// The lists a `$setElementOrder` directive works with.
#[derive(Debug)]
struct OrderLists<'a> {
    /// The directive's list.
    order: &'a [Value],
    /// The live list before the patch.
    server: Option<&'a [Value]>,
    /// The patch's own list for the field.
    patched: Option<&'a [Value]>,
}

/// Applies `$setElementOrder/<name>` to the merged list; dropped for lists without a merge strategy.
fn set_element_order(
    out: &mut Object,
    name: &str,
    lists: &OrderLists<'_>,
    field: Option<&'static Field>,
) -> Result<(), String> {
    let id = match field.map(|f| f.list) {
        Some(ListStrategy::Keyed(key)) => Identity::MergeKey(key),
        Some(ListStrategy::Set) => Identity::Whole,
        _ => return Ok(()),
    };
    let wanted = order_identities(lists.order, name, id)?;
    if let Some(patched) = lists.patched {
        check_patch_order(patched, &wanted, name, id)?;
    }
    let server = identities(lists.server.unwrap_or_default(), id);
    if let Some(Value::Array(list)) = out.get_mut(name) {
        let items = std::mem::take(list);
        *list = interleave(items, &wanted, &server, id);
    }
    Ok(())
}

/// The identities a `$setElementOrder` list names; every entry must carry the merge key.
fn order_identities(order: &[Value], name: &str, id: Identity<'_>) -> Result<Vec<Value>, String> {
    order
        .iter()
        .map(|entry| {
            id.of(entry)
                .cloned()
                .ok_or_else(|| format!("{SET_ELEMENT_ORDER}/{name} entry {entry} has no merge key"))
        })
        .collect()
}

/// Checks that the patch list (without `$patch` markers) is a subsequence of the `$setElementOrder` list.
fn check_patch_order(
    patched: &[Value],
    wanted: &[Value],
    name: &str,
    id: Identity<'_>,
) -> Result<(), String> {
    let mut remaining = wanted.iter();
    let in_patch = patched
        .iter()
        .filter(|element| element.get(PATCH_DIRECTIVE).is_none())
        .filter_map(|element| id.of(element));
    for key in in_patch {
        if !remaining.any(|w| w == key) {
            return Err(format!(
                "the patch list {name:?} does not follow {SET_ELEMENT_ORDER}/{name}: {key} is missing or out of order"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/// The JSON type of `value`, for error messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether `value` nests deeper than `budget` levels.
fn too_deep(value: &Value, budget: usize) -> bool {
    let Some(budget) = budget.checked_sub(1) else {
        return true;
    };
    match value {
        Value::Object(map) => map.values().any(|v| too_deep(v, budget)),
        Value::Array(list) => list.iter().any(|v| too_deep(v, budget)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{KINDS, TYPES, apply, type_def};

    /// Applies a patch that must succeed.
    fn patched(original: Value, patch: Value, kind: &str) -> Value {
        apply(&original, &patch, kind).expect("patch applies")
    }

    /// Applies a patch that must fail, returning the message.
    fn rejected(original: Value, patch: Value, kind: &str) -> String {
        apply(&original, &patch, kind).expect_err("patch is rejected")
    }

    /// The names of the containers in a Deployment, in order.
    fn container_names(deployment: &Value) -> Vec<&str> {
        deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect()
    }

    /// Every key starting with `$` anywhere in `value`.
    fn directive_keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map
                .iter()
                .flat_map(|(k, v)| {
                    let mut found = directive_keys(v);
                    if k.starts_with('$') {
                        found.push(k.clone());
                    }
                    found
                })
                .collect(),
            Value::Array(list) => list.iter().flat_map(directive_keys).collect(),
            _ => Vec::new(),
        }
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "app:v1",
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                             "ports": [{"containerPort": 8080, "name": "http"}]},
                            {"name": "sidecar", "image": "proxy:v1"}
                        ],
                        "tolerations": [{"key": "dedicated", "operator": "Exists"}]
                    }
                }
            },
            "status": {"conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"}
            ]}
        })
    }

    #[test]
    fn container_image_change_by_name_leaves_other_containers_untouched() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "proxy:v2"}]}}}});
        let out = patched(deployment(), patch, "Deployment");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(container_names(&out), ["app", "sidecar"]);
        assert_eq!(
            containers[0],
            deployment()["spec"]["template"]["spec"]["containers"][0]
        );
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "proxy:v2"})
        );
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn adding_a_container_keeps_the_existing_ones_and_lands_first_like_the_apiserver() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "logger", "image": "log:v1"}]}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(container_names(&out), ["logger", "app", "sidecar"]);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["image"],
            "app:v1"
        );
    }

    #[test]
    fn adding_a_container_with_set_element_order_puts_it_where_asked() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}, {"name": "logger"}],
            "containers": [{"name": "logger", "image": "log:v1"}]
        }}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(container_names(&out), ["app", "sidecar", "logger"]);
    }

    #[test]
    fn patch_delete_removes_the_list_element_with_that_key() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(container_names(&out), ["app"]);
    }

    #[test]
    fn patch_delete_removes_every_duplicate_and_ignores_missing_keys() {
        let pod = json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}, {"name": "a", "emptyDir": {}}]}});
        let patch = json!({"spec": {"volumes": [{"$patch": "delete", "name": "a"}, {"$patch": "delete", "name": "zz"}]}});
        let out = patched(pod, patch, "Pod");
        assert_eq!(out["spec"]["volumes"], json!([{"name": "b"}]));
    }

    #[test]
    fn env_merges_by_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}
        ]}}}});
        let out = patched(deployment(), patch, "Deployment");
        let app = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            app["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(app["image"], "app:v1");
        assert_eq!(
            app["ports"],
            json!([{"containerPort": 8080, "name": "http"}])
        );
    }

    #[test]
    fn env_entry_field_can_be_removed_with_null() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "A", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
        ]}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"][0],
            json!({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        );
    }

    #[test]
    fn container_ports_volume_mounts_and_devices_merge_by_their_keys() {
        let pod = json!({"spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "volumeMounts": [{"mountPath": "/data", "name": "data"}],
            "volumeDevices": [{"devicePath": "/dev/xvda", "name": "raw"}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}],
            "volumeMounts": [{"mountPath": "/data", "readOnly": true}],
            "volumeDevices": [{"devicePath": "/dev/xvdb", "name": "raw2"}]}]}});
        let out = patched(pod, patch, "Pod");
        let c = &out["spec"]["containers"][0];
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 9090}])
        );
        assert_eq!(
            c["volumeMounts"],
            json!([{"mountPath": "/data", "name": "data", "readOnly": true}])
        );
        assert_eq!(
            c["volumeDevices"],
            json!([{"devicePath": "/dev/xvdb", "name": "raw2"}, {"devicePath": "/dev/xvda", "name": "raw"}])
        );
    }

    #[test]
    fn init_and_ephemeral_containers_merge_by_name() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init", "image": "i:1", "env": [{"name": "X", "value": "1"}]}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
        }});
        let patch = json!({"spec": {
            "initContainers": [{"name": "init", "env": [{"name": "Y", "value": "2"}]}],
            "ephemeralContainers": [{"name": "debug2", "image": "busybox"}]
        }});
        let out = patched(pod, patch, "Pod");
        assert_eq!(out["spec"]["initContainers"][0]["image"], "i:1");
        assert_eq!(
            out["spec"]["initContainers"][0]["env"],
            json!([{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}])
        );
        assert_eq!(
            out["spec"]["ephemeralContainers"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn pod_spec_keyed_lists_and_atomic_tolerations() {
        let pod = json!({"spec": {
            "imagePullSecrets": [{"name": "a"}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
            "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]
        }});
        let patch = json!({"spec": {
            "imagePullSecrets": [{"name": "b"}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
            "tolerations": [{"key": "c", "operator": "Exists"}]
        }});
        let out = patched(pod, patch, "Pod");
        assert_eq!(
            out["spec"]["imagePullSecrets"],
            json!([{"name": "b"}, {"name": "a"}])
        );
        assert_eq!(
            out["spec"]["hostAliases"],
            json!([{"ip": "10.0.0.1", "hostnames": ["b"]}])
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "c", "operator": "Exists"}])
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"kind": "Service", "spec": {"type": "ClusterIP", "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090, "targetPort": 9090}
        ]}});
        let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 8081}, {"name": "https", "port": 443}]}});
        let out = patched(svc, patch, "Service");
        assert_eq!(
            out["spec"]["ports"],
            json!([
                {"name": "http", "port": 80, "targetPort": 8081},
                {"name": "https", "port": 443},
                {"name": "metrics", "port": 9090, "targetPort": 9090}
            ])
        );
        assert_eq!(out["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn patch_replace_on_a_map_replaces_it() {
        let patch = json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn patch_replace_on_the_whole_object_replaces_it() {
        let patch = json!({"$patch": "replace", "kind": "Deployment", "metadata": {"name": "new"}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(
            out,
            json!({"kind": "Deployment", "metadata": {"name": "new"}})
        );
    }

    #[test]
    fn patch_replace_in_a_list_replaces_the_list() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "only", "image": "only:v1"},
            {"$patch": "replace"}
        ]}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "only:v1"}])
        );
    }

    #[test]
    fn patch_delete_on_a_map_removes_it() {
        let patch = json!({"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(out["spec"]["strategy"], json!({"type": "RollingUpdate"}));
        let absent =
            json!({"spec": {"template": {"spec": {"securityContext": {"$patch": "delete"}}}}});
        let out = patched(deployment(), absent, "Deployment");
        assert!(
            out["spec"]["template"]["spec"]
                .get("securityContext")
                .is_none()
        );
    }

    #[test]
    fn patch_merge_is_the_default_and_accepted() {
        let patch = json!({"metadata": {"$patch": "merge", "labels": {"tier": "front"}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "tier": "front"})
        );
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn null_deletes_keys() {
        let patch = json!({
            "metadata": {"labels": {"app": null, "missing": null}},
            "spec": {"strategy": {"rollingUpdate": null}, "paused": null},
            "status": null
        });
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(out["metadata"]["labels"], json!({}));
        assert_eq!(out["spec"]["strategy"], json!({"type": "RollingUpdate"}));
        assert!(out["spec"].get("paused").is_none());
        assert!(out.get("status").is_none());
    }

    #[test]
    fn null_inside_a_new_subtree_is_dropped() {
        let patch =
            json!({"spec": {"template": {"metadata": {"annotations": {"a": "1", "b": null}}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"],
            json!({"a": "1"})
        );
    }

    #[test]
    fn type_mismatch_replaces_the_live_value() {
        let original = json!({"spec": {"replicas": {"weird": true}, "selector": "x"}});
        let patch = json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}}}});
        let out = patched(original, patch, "Deployment");
        assert_eq!(
            out["spec"],
            json!({"replicas": 3, "selector": {"matchLabels": {"a": "b"}}})
        );
    }

    #[test]
    fn finalizers_merge_as_a_union() {
        let original = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
        let out = patched(
            original.clone(),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            "Pod",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = patched(
            original.clone(),
            json!({"metadata": {"finalizers": ["a"]}}),
            "ConfigMap",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        // A value the patch adds comes first, as the apiserver orders it.
        let out = patched(
            original,
            json!({"metadata": {"finalizers": ["c"]}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = patched(
            json!({"metadata": {}}),
            json!({"metadata": {"finalizers": ["x", "x"]}}),
            "Pod",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["x"]));
    }

    #[test]
    fn delete_from_primitive_list_removes_values() {
        let original = json!({"metadata": {"finalizers": ["a", "b", "c", "b"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}});
        let out = patched(original.clone(), patch, "Deployment");
        assert_eq!(out["metadata"], json!({"finalizers": ["a", "c"]}));
        let both = json!({"metadata": {"finalizers": ["d"], "$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = patched(original, both, "Deployment");
        assert_eq!(out["metadata"], json!({"finalizers": ["d", "b", "c"]}));
        let absent = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = patched(json!({"metadata": {"name": "x"}}), absent, "Deployment");
        assert_eq!(out["metadata"], json!({"name": "x"}));
    }

    #[test]
    fn set_element_order_reorders_a_keyed_list() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}});
        let out = patched(pod.clone(), patch, "Pod");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])
        );
        // An element the order does not name keeps its live place relative to the named ones it can be
        // compared with: `b` (live index 1) goes before `c` (live index 2), as apimachinery interleaves.
        let partial =
            json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}});
        let out = patched(pod, partial, "Pod");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b"}, {"name": "c"}, {"name": "a"}])
        );
    }

    #[test]
    fn set_element_order_reorders_a_primitive_list() {
        let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"]}});
        let out = patched(original, patch, "Pod");
        assert_eq!(out["metadata"], json!({"finalizers": ["b", "c", "a"]}));
    }

    #[test]
    fn set_element_order_must_agree_with_the_patch_list() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "x"}, {"name": "a", "image": "y"}]
        }});
        assert!(rejected(pod.clone(), patch, "Pod").contains("$setElementOrder/containers"));
        let unnamed = json!({"spec": {"$setElementOrder/containers": [{"image": "a"}]}});
        assert!(rejected(pod, unnamed, "Pod").contains("no merge key"));
    }

    #[test]
    fn set_element_order_on_an_atomic_list_is_dropped() {
        let pod = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}});
        let patch = json!({"spec": {"$setElementOrder/tolerations": [{"key": "b"}, {"key": "a"}]}});
        let out = patched(pod.clone(), patch, "Pod");
        assert_eq!(out, pod);
    }

    #[test]
    fn patch_order_takes_precedence_over_live_order() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "image": "c"}, {"name": "a", "image": "a"}]}});
        let out = patched(pod, patch, "Pod");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b"}, {"name": "c", "image": "c"}, {"name": "a", "image": "a"}])
        );
    }

    #[test]
    fn empty_patch_list_leaves_a_merge_list_alone() {
        let patch = json!({"spec": {"template": {"spec": {"containers": []}}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(out, deployment());
    }

    #[test]
    fn retain_keys_clears_the_other_fields() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let implicit = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = patched(deployment(), implicit, "Deployment");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let volume = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        let switch = json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}});
        let out = patched(volume, switch, "Pod");
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn retain_keys_must_list_every_patched_field() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        assert!(rejected(deployment(), patch, "Deployment").contains("rollingUpdate"));
        let not_strings = json!({"spec": {"strategy": {"$retainKeys": [1]}}});
        assert!(rejected(deployment(), not_strings, "Deployment").contains("$retainKeys"));
    }

    #[test]
    fn malformed_patches_are_errors() {
        let d = deployment();
        assert!(rejected(d.clone(), json!([{"op": "add"}]), "Deployment").contains("JSON object"));
        assert!(rejected(d.clone(), json!("spec"), "Deployment").contains("JSON object"));
        assert!(rejected(d.clone(), Value::Null, "Deployment").contains("JSON object"));
        assert!(rejected(json!([]), json!({}), "Deployment").contains("object to patch"));
        let bad_directive = json!({"spec": {"strategy": {"$patch": "explode"}}});
        assert!(rejected(d.clone(), bad_directive, "Deployment").contains("explode"));
        let non_string = json!({"metadata": {"$patch": true}});
        assert!(rejected(d.clone(), non_string, "Deployment").contains("$patch"));
        let bad_element = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "$patch": "nope"}]}}}});
        assert!(rejected(d.clone(), bad_element, "Deployment").contains("nope"));
        let no_field = json!({"metadata": {"$setElementOrder": ["a"]}});
        assert!(rejected(d.clone(), no_field, "Deployment").contains("$setElementOrder/<field>"));
        let empty_field = json!({"metadata": {"$deleteFromPrimitiveList/": ["a"]}});
        assert!(
            rejected(d.clone(), empty_field, "Deployment")
                .contains("$deleteFromPrimitiveList/<field>")
        );
        let not_list = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}});
        assert!(rejected(d.clone(), not_list, "Deployment").contains("must be a list"));
        let mixed = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, "b"]}}}});
        assert!(rejected(d.clone(), mixed, "Deployment").contains("mixes"));
        let delete_all = json!({"$patch": "delete"});
        assert!(rejected(d, delete_all, "Deployment").contains("whole object"));
    }

    #[test]
    fn list_element_without_its_merge_key_is_an_error() {
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"image": "nameless:v1"}]}}}});
        let message = rejected(deployment(), patch, "Deployment");
        assert!(message.contains("merge key \"name\""), "{message}");
        let delete = json!({"spec": {"ports": [{"$patch": "delete", "name": "http"}]}});
        assert!(rejected(json!({"spec": {}}), delete, "Service").contains("\"port\""));
        let owner =
            json!({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}]}});
        assert!(rejected(json!({"metadata": {}}), owner, "Pod").contains("\"uid\""));
    }

    #[test]
    fn too_deep_patches_are_rejected_without_overflowing() {
        let mut deep = json!("leaf");
        for _ in 0..200 {
            deep = json!({"a": deep});
        }
        assert!(rejected(json!({}), deep, "Pod").contains("deeper"));
    }

    #[test]
    fn kubectl_apply_patch_of_a_deployment() {
        let last_applied = r#"{"apiVersion":"apps/v1","kind":"Deployment"}"#;
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
            "spec": {
                "replicas": 3,
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}, {"name": "metrics"}],
                    "containers": [
                        {"name": "app", "image": "app:v2",
                         "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                         "env": [{"name": "B", "value": "two"}]},
                        {"name": "metrics", "image": "metrics:v1",
                         "$setElementOrder/ports": [{"containerPort": 9100}],
                         "ports": [{"containerPort": 9100, "name": "metrics"}]}
                    ]
                }}
            }
        });
        let out = patched(deployment(), patch, "Deployment");
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            last_applied
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(container_names(&out), ["app", "sidecar", "metrics"]);
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "app:v2");
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}])
        );
        assert_eq!(
            containers[0]["ports"],
            json!([{"containerPort": 8080, "name": "http"}])
        );
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "proxy:v1"})
        );
        assert_eq!(
            containers[2]["ports"],
            json!([{"containerPort": 9100, "name": "metrics"}])
        );
        assert_eq!(out["status"], deployment()["status"]);
        assert!(
            directive_keys(&out).is_empty(),
            "{:?}",
            directive_keys(&out)
        );
    }

    #[test]
    fn kubectl_rollout_restart_adds_a_template_annotation() {
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"
        }}}}});
        let out = patched(deployment(), patch.clone(), "Deployment");
        let template = &out["spec"]["template"];
        assert_eq!(
            template["metadata"],
            json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}})
        );
        assert_eq!(template["spec"], deployment()["spec"]["template"]["spec"]);
        let mut annotated = deployment();
        annotated["spec"]["template"]["metadata"]["annotations"] = json!({"keep": "me"});
        let out = patched(annotated, patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"],
            json!({"keep": "me", "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"})
        );
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let pod = json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "ReplicaSet", "name": "a"}]}});
        let patch = json!({"metadata": {"ownerReferences": [
            {"uid": "1", "controller": true},
            {"uid": "2", "kind": "Job", "name": "b"}
        ]}});
        let out = patched(pod, patch, "Pod");
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "1", "kind": "ReplicaSet", "name": "a", "controller": true}, {"uid": "2", "kind": "Job", "name": "b"}])
        );
    }

    #[test]
    fn status_conditions_merge_by_type() {
        for kind in [
            "Pod",
            "Node",
            "Deployment",
            "ReplicaSet",
            "Job",
            "StatefulSet",
            "Service",
        ] {
            let original = json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "Starting"},
                {"type": "Other", "status": "True"}
            ]}});
            let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": null}]}});
            let out = patched(original, patch, kind);
            assert_eq!(
                out["status"]["conditions"],
                json!([{"type": "Ready", "status": "True"}, {"type": "Other", "status": "True"}]),
                "{kind}"
            );
        }
    }

    #[test]
    fn node_addresses_and_pod_cidrs_merge() {
        let node = json!({"spec": {"podCIDRs": ["10.0.0.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.1.1.1"}]}});
        let patch = json!({"spec": {"podCIDRs": ["fd00::/64"]},
            "status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        let out = patched(node, patch, "Node");
        assert_eq!(out["spec"]["podCIDRs"], json!(["fd00::/64", "10.0.0.0/24"]));
        assert_eq!(out["status"]["addresses"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn workload_templates_reach_the_pod_spec() {
        for kind in [
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "ReplicationController",
        ] {
            let original = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
            let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
            let out = patched(original, patch, kind);
            assert_eq!(
                out["spec"]["template"]["spec"]["containers"],
                json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]),
                "{kind}"
            );
        }
    }

    #[test]
    fn cronjob_job_template_reaches_the_pod_spec() {
        let cron = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "b:1"}]
        }}}}}});
        let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "a", "env": [{"name": "X", "value": "2"}]}]
        }}}}}});
        let out = patched(cron, patch, "CronJob");
        let containers = &out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[0],
            json!({"name": "a", "image": "a:1", "env": [{"name": "X", "value": "2"}]})
        );
        assert_eq!(containers[1], json!({"name": "b", "image": "b:1"}));
        assert_eq!(out["spec"]["schedule"], "* * * * *");
    }

    #[test]
    fn directives_never_survive_in_added_subtrees() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let patch = json!({"spec": {
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "gone", "$patch": "delete"}],
            "containers": [{"name": "new", "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E", "value": "1"}],
                "securityContext": {"$patch": "replace", "runAsUser": 1}}],
            "affinity": {"$retainKeys": ["nodeAffinity"], "nodeAffinity": {"x": 1}},
            "tolerations": [{"key": "t", "$patch": "merge"}, {"$patch": "replace"}],
            "$unknownDirective": 1
        }});
        let out = patched(pod, patch, "Pod");
        assert!(
            directive_keys(&out).is_empty(),
            "{:?}",
            directive_keys(&out)
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "emptyDir": {}}])
        );
        assert_eq!(
            out["spec"]["containers"][0]["securityContext"],
            json!({"runAsUser": 1})
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "t"}]));
    }

    #[test]
    fn unknown_kinds_get_merge_patch_semantics_with_directives_stripped() {
        let thing = json!({"spec": {"items": [{"name": "a", "v": 1}, {"name": "b"}], "map": {"x": 1, "y": 2}}});
        let patch = json!({"spec": {
            "items": [{"name": "a", "v": 2}],
            "map": {"y": null, "z": 3},
            "$setElementOrder/items": [{"name": "a"}],
            "nested": {"$patch": "replace", "k": "v"}
        }});
        let out = patched(thing, patch, "Rollout");
        assert_eq!(
            out,
            json!({"spec": {"items": [{"name": "a", "v": 2}], "map": {"x": 1, "z": 3}, "nested": {"k": "v"}}})
        );
    }

    #[test]
    fn original_is_not_modified_and_result_is_a_new_value() {
        let original = deployment();
        let patch = json!({"spec": {"replicas": 5}});
        let out = patched(original.clone(), patch, "Deployment");
        assert_eq!(original, deployment());
        assert_eq!(out["spec"]["replicas"], 5);
    }

    #[test]
    fn schema_table_is_consistent() {
        for ty in TYPES {
            for field in ty.fields {
                if let Some(child) = field.ty {
                    assert!(
                        type_def(child).is_some(),
                        "{}.{} refers to unknown type {child}",
                        ty.name,
                        field.name
                    );
                }
            }
            let mut names: Vec<&str> = ty.fields.iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                ty.fields.len(),
                "duplicate field in {}",
                ty.name
            );
        }
        for (kind, ty) in KINDS {
            assert!(
                type_def(ty).is_some(),
                "kind {kind} refers to unknown type {ty}"
            );
        }
    }
}
