//! Argument templating (reference 6.4): `{{args.name}}` substituted into the JSON of a whole metric, so
//! even numeric fields such as `count: "{{args.n}}"` can be templated.

use std::collections::BTreeMap;

use crate::api::analysis::{Argument, Metric, SecretKeyRef};

/// Argument values by name; `None` is an argument nobody supplied a value for.
pub type ArgValues = BTreeMap<String, Option<String>>;

/// What a secret argument looks like wherever a value could be shown.
pub const REDACTED: &str = "*****";

/// The metrics with every `{{args.x}}` replaced, or the error Argo reports as
/// `Unable to resolve metric arguments: <error>`.
pub fn resolve_metrics(metrics: &[Metric], args: &ArgValues) -> Result<Vec<Metric>, String> {
    if let Some((name, _)) = args.iter().find(|(_, value)| value.is_none()) {
        return Err(format!("argument \"{name}\" was not supplied"));
    }
    metrics.iter().map(|metric| resolve(metric, args)).collect()
}

fn resolve(metric: &Metric, args: &ArgValues) -> Result<Metric, String> {
    let json = serde_json::to_string(metric).map_err(|e| e.to_string())?;
    let substituted = substitute(&json, args)?;
    serde_json::from_str(&substituted).map_err(|e| {
        format!(
            "metric \"{}\" is not valid once its arguments are substituted: {e}",
            metric.name
        )
    })
}

/// Replaces each `{{ tag }}` in `text`; values are escaped so they stay valid inside JSON strings.
pub fn substitute(text: &str, args: &ArgValues) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            // An opening brace pair with no closing one is literal text.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let tag = &after[..end];
        let value = tag
            .trim()
            .strip_prefix("args.")
            .and_then(|name| args.get(name))
            .and_then(Option::as_deref)
            .ok_or_else(|| format!("failed to resolve {{{{{tag}}}}}"))?;
        out.push_str(&json_escaped(value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A run's argument values twice over: `values` to measure with, `shown` with every secret replaced by
/// [`REDACTED`] for anything a person can read (status, events, logs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arguments {
    pub values: ArgValues,
    pub shown: ArgValues,
    /// The secret values, to scrub from provider messages.
    pub secrets: Vec<String>,
}

impl Arguments {
    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text.to_string(), |text, secret| {
                text.replace(secret.as_str(), REDACTED)
            })
    }
}

/// The Secret keys a run's arguments read.
pub fn secret_refs(args: &[Argument]) -> Vec<&SecretKeyRef> {
    args.iter()
        .filter(|arg| arg.value.is_none())
        .filter_map(|arg| arg.value_from.as_ref()?.secret_key_ref.as_ref())
        .collect()
}

/// The values of a run's arguments; `secret` answers for each Secret key ([`secret_refs`]) with its
/// value, or the reason it has none.
pub fn arguments(
    args: &[Argument],
    secret: impl Fn(&SecretKeyRef) -> Result<String, String>,
) -> Result<Arguments, String> {
    let mut resolved = Arguments::default();
    for arg in args {
        let from_secret = arg
            .value_from
            .as_ref()
            .and_then(|from| from.secret_key_ref.as_ref())
            .filter(|_| arg.value.is_none());
        let (value, shown) = match from_secret {
            Some(reference) => {
                let value = secret(reference).map_err(|why| {
                    format!(
                        "argument \"{}\": secret \"{}\" key \"{}\": {why}",
                        arg.name, reference.name, reference.key
                    )
                })?;
                resolved.secrets.push(value.clone());
                (Some(value), Some(REDACTED.to_string()))
            }
            None => (arg.value.clone(), arg.value.clone()),
        };
        resolved.values.insert(arg.name.clone(), value);
        resolved.shown.insert(arg.name.clone(), shown);
    }
    Ok(resolved)
}

/// The text as it appears between the quotes of a JSON string.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn args(pairs: &[(&str, Option<&str>)]) -> ArgValues {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    fn metric(yaml: &str) -> Metric {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn substitutes_into_strings_and_numbers() {
        let m = metric(
            r#"
name: errors
count: "{{args.n}}"
successCondition: "result[0] < {{ args.max }}"
provider:
  prometheus:
    query: sum(rate(http{service="{{args.service}}"}[1m]))
"#,
        );
        let resolved = resolve_metrics(
            &[m],
            &args(&[
                ("n", Some("3")),
                ("max", Some("0.05")),
                ("service", Some("web\"x")),
            ]),
        )
        .unwrap();
        assert_eq!(resolved[0].count, Some(IntOrString::String("3".into())));
        assert_eq!(resolved[0].success_condition, "result[0] < 0.05");
        assert_eq!(
            resolved[0].provider.prometheus.as_ref().unwrap().query,
            "sum(rate(http{service=\"web\"x\"}[1m]))"
        );
    }

    #[test]
    fn reports_argo_errors() {
        let m = metric(
            "name: a\nsuccessCondition: \"{{args.missing}}\"\nprovider: {web: {url: http://x}}\n",
        );
        assert_eq!(
            resolve_metrics(std::slice::from_ref(&m), &args(&[])),
            Err("failed to resolve {{args.missing}}".into())
        );
        assert_eq!(
            resolve_metrics(&[m], &args(&[("missing", None)])),
            Err("argument \"missing\" was not supplied".into())
        );
        assert_eq!(
            substitute("{{ other.thing }}", &args(&[])),
            Err("failed to resolve {{ other.thing }}".into())
        );
    }

    #[test]
    fn text_without_tags_is_unchanged() {
        assert_eq!(substitute("a {{ b", &args(&[])).unwrap(), "a {{ b");
        assert_eq!(substitute("plain", &args(&[])).unwrap(), "plain");
    }

    #[test]
    fn secrets_are_measured_with_and_never_shown() {
        use crate::api::analysis::ValueFrom;
        let run_args = vec![
            Argument {
                name: "service".into(),
                value: Some("web".into()),
                value_from: None,
            },
            Argument {
                name: "token".into(),
                value: None,
                value_from: Some(ValueFrom {
                    secret_key_ref: Some(SecretKeyRef {
                        name: "creds".into(),
                        key: "token".into(),
                    }),
                    ..Default::default()
                }),
            },
        ];
        assert_eq!(secret_refs(&run_args).len(), 1);
        let resolved = arguments(&run_args, |r| Ok(format!("{}-s3cret", r.key))).unwrap();
        assert_eq!(resolved.values["token"].as_deref(), Some("token-s3cret"));
        assert_eq!(resolved.shown["token"].as_deref(), Some(REDACTED));
        assert_eq!(resolved.shown["service"].as_deref(), Some("web"));
        assert_eq!(
            resolved.redact("401 for Bearer token-s3cret"),
            "401 for Bearer *****"
        );
        let missing = arguments(&run_args, |_| Err("not found".into())).unwrap_err();
        assert_eq!(
            missing,
            "argument \"token\": secret \"creds\" key \"token\": not found"
        );
    }
}
