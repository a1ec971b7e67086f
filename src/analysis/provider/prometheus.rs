//! The Prometheus provider: an instant query (or a range query) whose scalar, vector or matrix becomes
//! `result` as Argo maps it: a scalar is a number, a vector a list with one number per series in response
//! order, a matrix the flattened list of all samples. An empty vector is `[]`, "no data", not 0.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;

use super::{Reading, go_float, http_client};
use crate::api::analysis::{Authentication, PrometheusMetric, PrometheusRangeQueryArgs};
use crate::api::duration::parse_go_duration_nanos;

/// Where metrics without an `address` query, from `--prometheus-address` or
/// `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`.
pub const ADDRESS_ENV: &str = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS";
/// Argo's default query timeout.
const DEFAULT_TIMEOUT_SECONDS: i64 = 30;
/// The metric-result metadata key holding the query after argument substitution.
pub const RESOLVED_QUERY: &str = "ResolvedPrometheusQuery";

/// Measures `metric` now. `default_address` is used when the metric names none.
pub async fn measure(
    metric: &PrometheusMetric,
    default_address: Option<&str>,
    now: Timestamp,
) -> Reading {
    match query(metric, default_address, now).await {
        Ok(data) => reading(&data),
        Err(message) => Reading::Error(message),
    }
}

async fn query(
    metric: &PrometheusMetric,
    default_address: Option<&str>,
    now: Timestamp,
) -> Result<Data, String> {
    let address = Some(metric.address.as_str())
        .filter(|a| !a.is_empty())
        .or(default_address.filter(|a| !a.is_empty()))
        .ok_or_else(|| {
            format!("no Prometheus address: set provider.prometheus.address or {ADDRESS_ENV}")
        })?;
    let http = http_client(metric.insecure)?;
    let client = Client::from(http.clone(), address).map_err(|e| e.to_string())?;
    let mut headers: Vec<(String, String)> = metric
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    if let Some(authorization) = authorization(&http, metric.authentication.as_ref()).await? {
        headers.push(("Authorization".into(), authorization));
    }
    let header_pairs = headers
        .iter()
        .map(|(k, v)| {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header {k:?} is not a valid header name"))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header {k:?} is not valid in a header"))?;
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let timeout = Duration::from_secs(
        u64::try_from(metric.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS))
            .unwrap_or(30)
            .max(1),
    );
    let request = async {
        match &metric.range_query {
            Some(range) => {
                let (start, end, step) = range_bounds(range, now)?;
                let mut builder = client.query_range(&metric.query, start, end, step);
                for (name, value) in &header_pairs {
                    builder = builder.header(name.clone(), value.clone());
                }
                builder.post().await.map_err(|e| e.to_string())
            }
            None => {
                let mut builder = client.query(&metric.query);
                for (name, value) in &header_pairs {
                    builder = builder.header(name.clone(), value.clone());
                }
                builder.post().await.map_err(|e| e.to_string())
            }
        }
    };
    let result = tokio::time::timeout(timeout, request).await.map_err(|_| {
        format!(
            "the query took longer than its timeout of {}s",
            timeout.as_secs()
        )
    })??;
    Ok(result.into_inner().0)
}

/// The `Authorization` header for basic auth or an OAuth2 client-credentials token.
async fn authorization(
    http: &reqwest::Client,
    auth: Option<&Authentication>,
) -> Result<Option<String>, String> {
    let Some(auth) = auth else { return Ok(None) };
    if let Some(basic) = &auth.basic_auth {
        let credentials = format!("{}:{}", basic.username, basic.password);
        return Ok(Some(format!("Basic {}", base64(credentials.as_bytes()))));
    }
    if let Some(oauth2) = &auth.oauth2 {
        let token = super::web::oauth2_token(http, oauth2).await?;
        return Ok(Some(format!("Bearer {token}")));
    }
    if auth.sigv4.is_some() {
        return Err("sigv4 authentication is not supported by Ramp".into());
    }
    Ok(None)
}

/// Standard base64 with padding, for basic auth.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Start, end (unix seconds) and step (seconds) of a range query. `start` and `end` are expressions of
/// the forms Argo documents: `now()`, `now() - duration("5m")`.
fn range_bounds(
    range: &PrometheusRangeQueryArgs,
    now: Timestamp,
) -> Result<(i64, i64, f64), String> {
    let at = |field: &str, text: &str| -> Result<i64, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() || compact == "now()" {
            return Ok(now.as_second());
        }
        let offset = compact
            .strip_prefix("now()-duration(")
            .and_then(|rest| rest.strip_suffix(')'))
            .map(|quoted| quoted.trim_matches(|c| c == '"' || c == '\''))
            .and_then(parse_go_duration_nanos)
            .ok_or_else(|| {
                format!("rangeQuery.{field} {text:?}: use now() or now() - duration(\"5m\")")
            })?;
        Ok(now.as_second() - (offset / 1_000_000_000) as i64)
    };
    let step = parse_go_duration_nanos(&range.step)
        .filter(|nanos| *nanos > 0)
        .ok_or_else(|| {
            format!(
                "rangeQuery.step {:?} is not a positive duration",
                range.step
            )
        })?;
    Ok((
        at("start", &range.start)?,
        at("end", &range.end)?,
        step as f64 / 1e9,
    ))
}

/// Argo's mapping of a query's data to `result` and `value`.
pub fn reading(data: &Data) -> Reading {
    let numbers: Vec<f64> = match data {
        Data::Scalar(sample) => {
            let value = sample.value();
            return Reading::Value {
                result: expr::Value::Float(value),
                text: go_float(value),
                metadata: BTreeMap::new(),
            };
        }
        Data::Vector(series) => series.iter().map(|s| s.sample().value()).collect(),
        Data::Matrix(series) => series
            .iter()
            .flat_map(|s| s.samples().iter().map(|sample| sample.value()))
            .collect(),
    };
    let text = format!(
        "[{}]",
        numbers
            .iter()
            .map(|v| go_float(*v))
            .collect::<Vec<_>>()
            .join(",")
    );
    Reading::Value {
        result: expr::Value::Array(numbers.into_iter().map(expr::Value::Float).collect()),
        text,
        metadata: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn range_bounds_read_argo_expressions() {
        let now = Timestamp::from_second(10_000).unwrap();
        let range = PrometheusRangeQueryArgs {
            start: "now() - duration(\"5m\")".into(),
            end: "now()".into(),
            step: "30s".into(),
        };
        assert_eq!(range_bounds(&range, now).unwrap(), (9_700, 10_000, 30.0));
        let bad = PrometheusRangeQueryArgs {
            start: "yesterday".into(),
            ..range
        };
        assert!(
            range_bounds(&bad, now)
                .unwrap_err()
                .contains("rangeQuery.start")
        );
    }

    fn data(json: &str) -> Data {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn results_map_as_argo_maps_them() {
        let scalar = reading(&data(r#"{"resultType":"scalar","result":[1,"0.99"]}"#));
        assert!(
            matches!(scalar, Reading::Value { ref text, result: expr::Value::Float(v), .. } if text == "0.99" && v == 0.99)
        );
        let vector = reading(&data(
            r#"{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"0.99"]},{"metric":{"a":"2"},"value":[1,"1"]}]}"#,
        ));
        assert!(matches!(vector, Reading::Value { ref text, .. } if text == "[0.99,1]"));
        let empty = reading(&data(r#"{"resultType":"vector","result":[]}"#));
        assert!(
            matches!(empty, Reading::Value { ref text, result: expr::Value::Array(ref v), .. } if text == "[]" && v.is_empty())
        );
        let matrix = reading(&data(
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]},{"metric":{},"values":[[1,"NaN"]]}]}"#,
        ));
        assert!(matches!(matrix, Reading::Value { ref text, .. } if text == "[1,2,NaN]"));
    }
}
