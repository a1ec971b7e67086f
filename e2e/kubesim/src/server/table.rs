//! `meta.k8s.io/v1` `Table` responses, which `kubectl get` asks for: a Name column, the kind's printer
//! columns (CRD `additionalPrinterColumns` or a few built-in ones), and Age.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::json::At;
use crate::registry::{PrinterColumn, ResourceType};

/// Whether the client asked for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// One column of a kind's Table, in the order kube-apiserver sends them.
enum Column<'a> {
    Name,
    Printer(&'a PrinterColumn),
    Age,
}

/// Name, then the printer columns. A built-in kind gets `Age` after its priority-0 columns (unless a column
/// already shows the creation time); a custom resource gets exactly the columns its CRD declares, or `Age`
/// alone when it declares none.
fn layout(rt: &ResourceType) -> Vec<Column<'_>> {
    let mut columns = vec![Column::Name];
    if rt.custom {
        columns.extend(rt.printer_columns.iter().map(Column::Printer));
        if rt.printer_columns.is_empty() {
            columns.push(Column::Age);
        }
        return columns;
    }
    let shows_age = rt
        .printer_columns
        .iter()
        .any(|c| c.name == "Age" || c.json_path == ".metadata.creationTimestamp");
    let (main, wide): (Vec<_>, Vec<_>) = rt.printer_columns.iter().partition(|c| c.priority == 0);
    columns.extend(main.into_iter().map(Column::Printer));
    if !shows_age {
        columns.push(Column::Age);
    }
    columns.extend(wide.into_iter().map(Column::Printer));
    columns
}

pub fn column_definitions(rt: &ResourceType) -> Vec<Value> {
    layout(rt)
        .iter()
        .map(|column| match column {
            Column::Name => {
                json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0})
            }
            Column::Printer(col) => {
                let type_ = if col.type_ == "date" {
                    "string"
                } else {
                    col.type_.as_str()
                };
                json!({"name": col.name, "type": type_, "format": "", "description": col.description, "priority": col.priority})
            }
            Column::Age => {
                json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp of the object.", "priority": 0})
            }
        })
        .collect()
}

pub fn row(rt: &ResourceType, obj: &Value, include_object: &str) -> Value {
    let cells: Vec<Value> = layout(rt)
        .iter()
        .map(|column| match column {
            Column::Name => obj.at("/metadata/name").cloned().unwrap_or(Value::Null),
            Column::Printer(col) => cell(col, obj),
            Column::Age => json!(age(obj
                .at("/metadata/creationTimestamp")
                .and_then(Value::as_str))),
        })
        .collect();
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or_default()})
        }
    };
    json!({"cells": cells, "object": object})
}

pub fn table(
    rt: &ResourceType,
    items: &[Arc<Value>],
    include_object: &str,
    resource_version: u64,
    continue_token: Option<&str>,
) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
        "columnDefinitions": column_definitions(rt),
        "rows": items.iter().map(|obj| row(rt, obj, include_object)).collect::<Vec<_>>(),
    })
}

fn cell(col: &PrinterColumn, obj: &Value) -> Value {
    if let Some(computed) = col.json_path.strip_prefix("kubesim:") {
        return computed_cell(computed, obj);
    }
    let value = json_path(obj, &col.json_path);
    match (col.type_.as_str(), value) {
        ("date", Some(Value::String(ts))) => json!(age(Some(ts))),
        (_, Some(v)) => v.clone(),
        (_, None) => Value::Null,
    }
}

/// Columns of built-in kinds that are not a single field.
fn computed_cell(what: &str, obj: &Value) -> Value {
    let int = |p: &str| obj.at(p).and_then(Value::as_i64).unwrap_or(0);
    if let Some(pointer) = what.strip_prefix("int:") {
        return json!(int(pointer));
    }
    match what {
        "pod-ready" => {
            let statuses = obj
                .at("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = obj
                .at("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.map_or(0, |s| {
                s.iter()
                    .filter(|c| c.get("ready") == Some(&json!(true)))
                    .count()
            });
            json!(format!("{ready}/{total}"))
        }
        "pod-status" => {
            let waiting = obj
                .at("/status/containerStatuses")
                .and_then(Value::as_array)
                .and_then(|s| {
                    s.iter()
                        .find_map(|c| c.at("/state/waiting/reason").and_then(Value::as_str))
                });
            if obj.at("/metadata/deletionTimestamp").is_some() {
                json!("Terminating")
            } else {
                json!(
                    waiting
                        .or_else(|| obj.at("/status/phase").and_then(Value::as_str))
                        .unwrap_or("Pending")
                )
            }
        }
        "pod-restarts" => json!(
            obj.at("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |s| s
                    .iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .sum::<i64>())
        ),
        "deployment-ready" => json!(format!(
            "{}/{}",
            int("/status/readyReplicas"),
            int("/spec/replicas")
        )),
        "service-selector" => json!(
            obj.at("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(","))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "<none>".into())
        ),
        "service-external-ip" => json!(service_external_ip(obj)),
        "service-ports" => json!(service_ports(obj)),
        "endpoints" => json!(endpoint_addresses(obj)),
        "template-containers" => json!(template_containers(obj, "name")),
        "template-images" => json!(template_containers(obj, "image")),
        "workload-selector" => json!(
            obj.at("/spec/selector")
                .and_then(|s| crate::selector::LabelSelector::from_json(s).ok())
                .map(|s| s.to_string())
                .unwrap_or_default()
        ),
        "job-status" => {
            let condition = |t: &str| {
                obj.at("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.get("type") == Some(&json!(t))
                                && c.get("status") == Some(&json!("True"))
                        })
                    })
            };
            json!(if condition("Complete") {
                "Complete"
            } else if condition("Failed") {
                "Failed"
            } else {
                "Running"
            })
        }
        "job-completions" => json!(format!(
            "{}/{}",
            int("/status/succeeded"),
            obj.at("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        )),
        _ => Value::Null,
    }
}

/// A Service's EXTERNAL-IP, as kubectl shows it.
fn service_external_ip(service: &Value) -> String {
    let strings = |p: &str| -> Vec<String> {
        service
            .at(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get("ip").or(Some(v)).and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let external = strings("/spec/externalIPs");
    match service.at("/spec/type").and_then(Value::as_str) {
        Some("ExternalName") => service
            .at("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string(),
        Some("LoadBalancer") => {
            let mut all = strings("/status/loadBalancer/ingress");
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        _ if !external.is_empty() => external.join(","),
        _ => "<none>".into(),
    }
}

/// A Service's PORT(S): `80/TCP`, `80:30080/TCP`, comma-separated.
fn service_ports(service: &Value) -> String {
    let ports: Vec<String> = service
        .at("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(node) => format!("{port}:{node}/{protocol}"),
                        None => format!("{port}/{protocol}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

/// An Endpoints object's ready `ip:port` pairs.
fn endpoint_addresses(endpoints: &Value) -> String {
    let mut pairs = Vec::new();
    for subset in endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ports: Vec<i64> = subset
            .get("ports")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(|p| p.get("port")?.as_i64()).collect())
            .unwrap_or_default();
        for address in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = address.get("ip").and_then(Value::as_str).unwrap_or("");
            if ports.is_empty() {
                pairs.push(ip.to_string());
            }
            pairs.extend(ports.iter().map(|port| format!("{ip}:{port}")));
        }
    }
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// A field of every container of a workload's pod template, comma-separated.
fn template_containers(workload: &Value, field: &str) -> String {
    workload
        .at("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Evaluates the simple JSONPath used by printer columns: `.a.b`, `.a[0].b`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    let mut cursor = obj;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (key, indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            cursor = cursor.get(key)?;
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            cursor = cursor.get(index)?;
        }
    }
    Some(cursor)
}

/// A creation timestamp as kubectl's AGE column shows it (`45s`, `3m2s`, `17m`, `5h3m`, `2d`).
pub fn age(timestamp: Option<&str>) -> String {
    let Some(created) = timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let seconds = (jiff::Timestamp::now().as_second() - created.as_second()).max(0);
    human_duration(seconds)
}

fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 && seconds % 60 != 0 => format!("{minutes}m{}s", seconds % 60),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 && minutes % 60 != 0 => format!("{hours}h{}m", minutes % 60),
        _ if hours < 48 => format!("{hours}h"),
        _ if days < 8 && hours % 24 != 0 => format!("{days}d{}h", hours % 24),
        _ => format!("{days}d"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(182), "3m2s");
        assert_eq!(human_duration(17 * 60), "17m");
        assert_eq!(human_duration(5 * 3600 + 180), "5h3m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    #[test]
    fn json_paths_with_indices() {
        let obj = json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}});
        assert_eq!(
            json_path(&obj, ".status.conditions[1].type"),
            Some(&json!("B"))
        );
        assert_eq!(json_path(&obj, ".status.missing"), None);
    }

    #[test]
    fn table_is_asked_for_by_the_first_media_type() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
