//! Pod-template hash and step hash (reference 3.1, 3.2): FNV-1a 32-bit over JSON, written with
//! Kubernetes' "safe" alphabet so the hash can be a label value and a name suffix.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::constants::POD_TEMPLATE_HASH_LABEL;
use crate::api::rollout::CanaryStep;

/// FNV-1a, 32 bits. Small enough to write out; the constants are the published FNV parameters.
struct Fnv1a32(u32);

impl Fnv1a32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;

    fn new() -> Self {
        Fnv1a32(Self::OFFSET_BASIS)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u32::from(*byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}

/// Kubernetes' `rand.SafeEncodeString`: each character maps into an alphabet with no vowels (no words)
/// and no look-alike characters. Applied to the decimal digits of the hash.
fn safe_encode(text: &str) -> String {
    const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

fn hash_bytes(bytes: &[u8], collision_count: Option<i32>) -> String {
    let mut hasher = Fnv1a32::new();
    hasher.write(bytes);
    if let Some(count) = collision_count {
        // Go writes the collision count as a uint32 in 8 little-endian bytes.
        let mut buffer = [0u8; 8];
        buffer[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hasher.write(&buffer);
    }
    safe_encode(&hasher.0.to_string())
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; serde_json does not.
/// Those characters can only occur inside JSON strings, so replacing them in the text is exact.
fn go_json_escaping(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The step hash of `spec.strategy.canary.steps`; empty for blue-green (no steps given).
///
/// Equal to Argo's for the same steps: the step types serialise their fields in Go's declaration order
/// with Go's `omitempty` behaviour (see `api::rollout`).
pub fn step_hash(steps: Option<&[CanaryStep]>) -> String {
    let Some(steps) = steps else {
        return hash_bytes(b"null", None);
    };
    match serde_json::to_string(steps) {
        Ok(json) => hash_bytes(go_json_escaping(json).as_bytes(), None),
        // Serialising plain data cannot fail; an empty hash only means "steps changed" upstream.
        Err(_) => String::new(),
    }
}

/// The pod-template hash of a template, with the rollout's collision count mixed in.
///
/// Not byte-identical to Argo's (Go's JSON of a PodTemplateSpec differs in field order and zero values),
/// which is why existing ReplicaSets are also found by template equality: see [`TemplateIdentity`].
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    hash_bytes(&json, collision_count)
}

/// A pod template as adoption compares it (reference 3.1): its JSON without the pod-template-hash label,
/// without the ephemeral (canary/stable) metadata injected into it, and without empty values. Two
/// templates are the same one exactly when their identities are equal.
///
/// The controller caches this instead of each ReplicaSet's whole template: a few hundred bytes of text
/// rather than the several KiB a `PodTemplateSpec` takes in memory, for every ReplicaSet it manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateIdentity(Arc<str>);

impl TemplateIdentity {
    /// The identity of a rollout's template, or of a ReplicaSet's with the keys of its injected labels
    /// and annotations.
    pub fn of(
        template: &PodTemplateSpec,
        injected_labels: &[String],
        injected_annotations: &[String],
    ) -> TemplateIdentity {
        let value = normalise(template, injected_labels, injected_annotations);
        TemplateIdentity(value.to_string().into())
    }
}

fn normalise(
    template: &PodTemplateSpec,
    labels: &[String],
    annotations: &[String],
) -> serde_json::Value {
    let mut template = template.clone();
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(map) = meta.labels.as_mut() {
            map.remove(POD_TEMPLATE_HASH_LABEL);
            for key in labels {
                map.remove(key);
            }
            if map.is_empty() {
                meta.labels = None;
            }
        }
        if let Some(map) = meta.annotations.as_mut() {
            for key in annotations {
                map.remove(key);
            }
            if map.is_empty() {
                meta.annotations = None;
            }
        }
        if *meta == Default::default() {
            template.metadata = None;
        }
    }
    // Compare as JSON so that an empty list and an absent one (the API server drops empty values) agree.
    let mut value = serde_json::to_value(&template).unwrap_or_default();
    drop_empty(&mut value);
    value
}

fn drop_empty(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for child in map.values_mut() {
                drop_empty(child);
            }
            map.retain(|_, child| !is_empty(child));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_empty),
        _ => {}
    }
}

fn is_empty(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(json: &str) -> Vec<CanaryStep> {
        serde_json::from_str(json).expect("steps parse")
    }

    fn template(json: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(json).expect("template parses")
    }

    #[test]
    fn a_template_is_identified_without_its_hash_label_injected_metadata_and_empty_values() {
        let rollout = template(serde_json::json!({
            "metadata": {"labels": {"app": "shop"}},
            "spec": {"containers": [{"name": "app", "image": "shop:v1"}]}
        }));
        let replica_set = template(serde_json::json!({
            "metadata": {
                "labels": {"app": "shop", "rollouts-pod-template-hash": "5d8f7b6c9", "role": "canary"},
                "annotations": {"note": "injected"}
            },
            "spec": {"containers": [{"name": "app", "image": "shop:v1", "env": []}], "volumes": []}
        }));
        let injected = TemplateIdentity::of(&replica_set, &["role".into()], &["note".into()]);
        assert_eq!(TemplateIdentity::of(&rollout, &[], &[]), injected);

        // Metadata not injected by Ramp is part of the template.
        assert_ne!(
            TemplateIdentity::of(&rollout, &[], &[]),
            TemplateIdentity::of(&replica_set, &["role".into()], &[])
        );
        // So is every field of the pod.
        let mut other_image = rollout.clone();
        if let Some(spec) = other_image.spec.as_mut() {
            spec.containers[0].image = Some("shop:v2".into());
        }
        assert_ne!(
            TemplateIdentity::of(&rollout, &[], &[]),
            TemplateIdentity::of(&other_image, &[], &[])
        );
    }

    #[test]
    fn safe_encoding_maps_digits_like_kubernetes() {
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn pod_template_hash_of_argo_vector_bytes_matches() {
        // Reference 3.1: the exact bytes Go produces for this template hash to 7fd9b5545c.
        let go_json = r#"{"metadata":{"creationTimestamp":null,"labels":{"app":"abort-retry-promote"}},"spec":{"containers":[{"name":"abort-retry-promote","image":"nginx:1.19-alpine","resources":{"requests":{"cpu":"1m","memory":"16Mi"}}}]}}"#;
        assert_eq!(hash_bytes(go_json.as_bytes(), None), "7fd9b5545c");
    }

    #[test]
    fn step_hash_matches_argo_for_weight_and_indefinite_pause() {
        let s = steps(r#"[{"setWeight":10},{"pause":{}}]"#);
        assert_eq!(step_hash(Some(&s)), "849b756fd4");
    }

    #[test]
    fn step_hash_matches_argo_for_eight_steps_with_integer_durations() {
        let s = steps(
            r#"[{"setWeight":20},{"pause":{}},{"setWeight":40},{"pause":{"duration":10}},{"setWeight":60},{"pause":{"duration":10}},{"setWeight":80},{"pause":{"duration":10}}]"#,
        );
        assert_eq!(step_hash(Some(&s)), "f64cdc9d");
    }

    #[test]
    fn step_hash_keeps_string_durations_as_written() {
        let s = steps(
            r#"[{"setWeight":20},{"pause":{}},{"setWeight":40},{"pause":{"duration":"10s"}},{"setWeight":60},{"pause":{"duration":"10s"}},{"setWeight":80},{"pause":{"duration":"10s"}}]"#,
        );
        assert_eq!(step_hash(Some(&s)), "b9b7958d9");
    }

    #[test]
    fn step_hash_changes_when_steps_change() {
        let a = steps(r#"[{"setWeight":10},{"pause":{}}]"#);
        let b = steps(r#"[{"setWeight":20},{"pause":{}}]"#);
        assert_ne!(step_hash(Some(&a)), step_hash(Some(&b)));
    }

    #[test]
    fn go_escaping_applies_to_html_characters() {
        assert_eq!(
            go_json_escaping(r#"{"a":"<&>"}"#.to_string()),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }

    #[test]
    fn collision_count_changes_the_pod_template_hash() {
        let template = PodTemplateSpec::default();
        assert_ne!(
            pod_template_hash(&template, None),
            pod_template_hash(&template, Some(1))
        );
        assert_eq!(
            pod_template_hash(&template, Some(1)),
            pod_template_hash(&template, Some(1))
        );
    }
}
