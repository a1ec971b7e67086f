//! Validation of the object metadata every kind shares, worded as `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate` word it: label keys and values, annotation keys and their total size, and no new
//! finalizers on an object that is being deleted.

use serde_json::{Map, Value};

use super::ApiError;
use crate::json::At;
use crate::registry::ResourceType;
use crate::selector::{label_value_errors, qualified_name_errors};
use crate::store::name_of;

/// `(field, reason, message)`, as [`ApiError::invalid`] takes them.
type Cause = (String, String, String);

/// The most bytes all annotation keys and values of one object may take together.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Drops metadata fields that are null or empty (`""`, `{}`, `[]`): every field of `ObjectMeta` is `omitempty`,
/// so a real server never stores or returns them.
pub(super) fn drop_empty(meta: &mut Map<String, Value>) {
    meta.retain(|_, value| match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    });
}

/// Checks the metadata of an object being created or written.
pub(super) fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let labels = string_map(rt, obj, "labels")?;
    let annotations = string_map(rt, obj, "annotations")?;
    let mut causes = Vec::new();
    label_causes(&labels, &mut causes);
    annotation_causes(&annotations, &mut causes);
    reject(rt, obj, causes)
}

/// Checks what an update may not change in metadata.
pub(super) fn validate_update(
    rt: &ResourceType,
    existing: &Value,
    desired: &Value,
) -> Result<(), ApiError> {
    if existing.at("/metadata/deletionTimestamp").is_none() {
        return Ok(());
    }
    let finalizers = |obj: &Value| -> Vec<String> {
        obj.at("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let old = finalizers(existing);
    let mut added: Vec<String> = finalizers(desired)
        .into_iter()
        .filter(|f| !old.contains(f))
        .collect();
    added.sort();
    added.dedup();
    if added.is_empty() {
        return Ok(());
    }
    let quoted: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
    let cause = (
        "metadata.finalizers".to_string(),
        "FieldValueForbidden".to_string(),
        format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            quoted.join(", ")
        ),
    );
    reject(rt, existing, vec![cause])
}

fn reject(rt: &ResourceType, obj: &Value, causes: Vec<Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, name_of(obj), &causes))
    }
}

/// `metadata.labels` or `metadata.annotations` as pairs; anything but a map of strings cannot be decoded.
fn string_map(
    rt: &ResourceType,
    obj: &Value,
    field: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(value) = obj.at(&format!("/metadata/{field}")) else {
        return Ok(Vec::new());
    };
    let undecodable = |found: &Value| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{field} of type {}",
            rt.kind,
            rt.version,
            rt.kind,
            json_type(found),
            if found.is_object() || found.is_array() {
                "map[string]string"
            } else {
                "string"
            },
        ))
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                other => Err(undecodable(other)),
            })
            .collect(),
        other => Err(undecodable(other)),
    }
}

/// Go's name for a JSON value's type in decoding errors.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(field: &str, value: &str, message: &str) -> Cause {
    (
        field.to_string(),
        "FieldValueInvalid".to_string(),
        format!("Invalid value: {value:?}: {message}"),
    )
}

fn label_causes(labels: &[(String, String)], causes: &mut Vec<Cause>) {
    for (key, value) in labels {
        for message in qualified_name_errors(key) {
            causes.push(invalid("metadata.labels", key, &message));
        }
        for message in label_value_errors(value) {
            causes.push(invalid("metadata.labels", value, &message));
        }
    }
}

fn annotation_causes(annotations: &[(String, String)], causes: &mut Vec<Cause>) {
    let mut total = 0;
    for (key, value) in annotations {
        for message in qualified_name_errors(&key.to_lowercase()) {
            causes.push(invalid("metadata.annotations", key, &message));
        }
        total += key.len() + value.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push((
            "metadata.annotations".to_string(),
            "FieldValueTooLong".to_string(),
            format!("Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_maps() -> ResourceType {
        crate::registry::Registry::with_builtins()
            .get("", "v1", "configmaps")
            .map(|rt| (*rt).clone())
            .expect("configmaps are built in")
    }

    #[test]
    fn labels_and_annotations_are_validated() {
        let rt = config_maps();
        let ok = json!({"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web", "empty": ""},
            "annotations": {"Example.com/Note": "anything at all: {}"}}});
        assert_eq!(validate(&rt, &ok), Ok(()));

        let bad = json!({"metadata": {"name": "x", "labels": {"-bad": "ok", "good": "not ok!"}}});
        let err = validate(&rt, &bad).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.starts_with("ConfigMap \"x\" is invalid: [metadata.labels: Invalid value: \"-bad\": name part must consist of alphanumeric characters"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("metadata.labels: Invalid value: \"not ok!\": a valid label must be"),
            "{}",
            err.message
        );

        let huge = json!({"metadata": {"name": "x", "annotations": {"big": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}});
        let err = validate(&rt, &huge).unwrap_err();
        assert!(
            err.message
                .ends_with("metadata.annotations: Too long: must have at most 262144 bytes"),
            "{}",
            err.message
        );

        let typed = json!({"metadata": {"name": "x", "labels": {"n": 1}}});
        let err = validate(&rt, &typed).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"), "{}", err.message);
    }

    #[test]
    fn no_finalizer_may_be_added_while_deleting() {
        let rt = config_maps();
        let deleting = json!({"metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["a"]}});
        let removed = json!({"metadata": {"name": "x", "finalizers": []}});
        assert_eq!(validate_update(&rt, &deleting, &removed), Ok(()));
        let added = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
        let err = validate_update(&rt, &deleting, &added).unwrap_err();
        assert_eq!(
            err.message,
            "ConfigMap \"x\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b\"}"
        );
        let live = json!({"metadata": {"name": "x"}});
        assert_eq!(validate_update(&rt, &live, &added), Ok(()));
    }
}
