//! The Web provider: one HTTP request; a JSON body's `jsonPath` match (or a non-JSON body as text) is
//! `result`. Anything but a 2xx answer is an `Error` measurement.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;

use super::condition_value;
use super::{Reading, http_client, jsonpath};
use crate::api::analysis::{OAuth2Config, WebMetric};

const DEFAULT_TIMEOUT_SECONDS: i64 = 10;
const DEFAULT_JSON_PATH: &str = "{$}";

/// Measures `metric` now.
pub async fn measure(metric: &WebMetric) -> Reading {
    match fetch(metric).await {
        Ok(body) => read_body(&body, &metric.json_path),
        Err(message) => Reading::Error(message),
    }
}

async fn fetch(metric: &WebMetric) -> Result<String, String> {
    let http = http_client(metric.insecure)?;
    let method = match metric.method.as_str() {
        "" | "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        other => {
            return Err(format!(
                "method {other:?} is not supported: use GET, POST or PUT"
            ));
        }
    };
    let timeout = Duration::from_secs(
        u64::try_from(metric.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS))
            .unwrap_or(10)
            .max(1),
    );
    let mut request = http.request(method.clone(), &metric.url).timeout(timeout);
    for header in &metric.headers {
        request = request.header(&header.key, &header.value);
    }
    if let Some(oauth2) = metric
        .authentication
        .as_ref()
        .and_then(|a| a.oauth2.as_ref())
    {
        request = request.bearer_auth(oauth2_token(&http, oauth2).await?);
    }
    if method != Method::GET {
        if let Some(json) = &metric.json_body {
            request = request.json(json);
        } else if !metric.body.is_empty() {
            request = request.body(metric.body.clone());
        }
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let code = response.status();
    if !code.is_success() {
        return Err(format!("received non 2xx response code: {}", code.as_u16()));
    }
    response.text().await.map_err(|e| e.to_string())
}

/// `result` from a body: the first `jsonPath` match of a JSON body, or the raw text of any other body.
pub fn read_body(body: &str, json_path: &str) -> Reading {
    let path = if json_path.is_empty() {
        DEFAULT_JSON_PATH
    } else {
        json_path
    };
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(document) => match jsonpath::select(&document, path) {
            Ok(found) => Reading::Value {
                result: condition_value(found),
                text: found.to_string(),
                metadata: BTreeMap::new(),
            },
            Err(message) => Reading::Error(message),
        },
        Err(_) => Reading::Value {
            result: expr::Value::String(body.to_string()),
            text: body.to_string(),
            metadata: BTreeMap::new(),
        },
    }
}

/// A bearer token from an OAuth2 client-credentials grant.
pub async fn oauth2_token(http: &reqwest::Client, oauth2: &OAuth2Config) -> Result<String, String> {
    let mut form = vec![
        ("grant_type", "client_credentials".to_string()),
        ("client_id", oauth2.client_id.clone()),
        ("client_secret", oauth2.client_secret.clone()),
    ];
    if !oauth2.scopes.is_empty() {
        form.push(("scope", oauth2.scopes.join(" ")));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    let response = http
        .post(&oauth2.token_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("oauth2 token request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "oauth2 token request failed: received non 2xx response code: {}",
            response.status().as_u16()
        ));
    }
    let token: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("oauth2 token response is not JSON: {e}"))?;
    token
        .get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| "oauth2 token response has no access_token".into())
}

/// `application/x-www-form-urlencoded` escaping.
fn form_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_become_results() {
        let json = read_body(r#"{"data": {"major": "1", "ratio": 0.5}}"#, "{$.data}");
        let Reading::Value { result, text, .. } = json else {
            panic!("expected a value")
        };
        assert!(text.contains("\"major\":\"1\""));
        assert!(matches!(result, expr::Value::Map(_)));
        let raw = read_body("ok", "");
        assert!(
            matches!(raw, Reading::Value { result: expr::Value::String(ref s), .. } if s == "ok")
        );
        assert!(matches!(read_body("{}", "{$.missing}"), Reading::Error(_)));
    }

    #[test]
    fn form_escaping() {
        assert_eq!(form_escape("a b&c=d"), "a+b%26c%3Dd");
    }
}
