//! The Prometheus and Web providers against local HTTP servers: what they send (method, path, headers,
//! credentials, body) and how they read what comes back (reference 6.9).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ramp::analysis::provider::{Reading, prometheus, web};
use ramp::api::analysis::{PrometheusMetric, WebMetric};

/// A request as the server received it.
#[derive(Clone, Debug, Default)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// A reply: status code, JSON body, and a delay before it is sent.
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

/// An HTTP/1.1 server on a loopback port answering every request with `answer(request)`; the requests
/// it received are in the returned list.
fn serve(
    answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = format!("http://{}", listener.local_addr().expect("bound address"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = read_request(&mut stream) else {
                continue;
            };
            log.lock().expect("request log").push(request.clone());
            let reply = answer(&request);
            std::thread::sleep(reply.delay);
            let head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.status,
                reply.body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(reply.body.as_bytes());
        }
    });
    (address, received)
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().expect("valid time")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn prometheus_metric(yaml: &str) -> PrometheusMetric {
    serde_norway::from_str(yaml).expect("metric parses")
}

fn vector(values: &[&str]) -> String {
    let series: Vec<String> = values
        .iter()
        .map(|v| format!(r#"{{"metric":{{"code":"500"}},"value":[1780315200,"{v}"]}}"#))
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

fn value_text(reading: &Reading) -> &str {
    match reading {
        Reading::Value { text, .. } => text,
        other => panic!("expected a value, got {other:?}"),
    }
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs.
fn form(body: &str) -> BTreeMap<String, String> {
    serde_urlencoded::from_str(body).expect("a form body")
}

#[test]
fn prometheus_sends_the_query_headers_and_basic_auth_and_reads_a_vector() {
    let (address, received) = serve(|_| reply(200, &vector(&["0.25", "0.5"])));
    let metric = prometheus_metric(&format!(
        r#"
address: {address}
query: sum(rate(http_requests_total{{code="500"}}[1m]))
headers: [{{key: X-Scope-OrgID, value: tenant-a}}]
authentication: {{basicAuth: {{username: ramp, password: s3cret}}}}
"#
    ));
    let reading = runtime().block_on(prometheus::measure(&metric, None, now()));
    assert_eq!(value_text(&reading), "[0.25,0.5]");

    let requests = received.lock().expect("log").clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert!(
        request.path.starts_with("/api/v1/query"),
        "{}",
        request.path
    );
    assert_eq!(
        form(&request.body).get("query").map(String::as_str),
        Some("sum(rate(http_requests_total{code=\"500\"}[1m]))")
    );
    assert_eq!(request.header("x-scope-orgid"), "tenant-a");
    // base64("ramp:s3cret")
    assert_eq!(request.header("authorization"), "Basic cmFtcDpzM2NyZXQ=");
}

#[test]
fn prometheus_takes_the_default_address_when_the_metric_has_none() {
    let (address, received) = serve(|_| reply(200, &vector(&["1"])));
    let metric = prometheus_metric("query: up");
    let reading = runtime().block_on(prometheus::measure(&metric, Some(&address), now()));
    assert_eq!(value_text(&reading), "[1]");
    assert_eq!(received.lock().expect("log").len(), 1);

    let Reading::Error(message) = runtime().block_on(prometheus::measure(&metric, None, now()))
    else {
        panic!("no address at all must be an error");
    };
    assert!(
        message.contains("provider.prometheus.address")
            && message.contains("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"),
        "the error names both ways to set it: {message}"
    );
}

#[test]
fn prometheus_gets_an_oauth2_token_first_and_sends_it_as_a_bearer() {
    let (address, received) = serve(|request| {
        if request.path == "/token" {
            reply(200, r#"{"access_token":"tok-123","token_type":"bearer"}"#)
        } else {
            reply(200, &vector(&["0"]))
        }
    });
    let metric = prometheus_metric(&format!(
        r#"
address: {address}
query: up
authentication:
  oauth2: {{tokenUrl: "{address}/token", clientId: ramp, clientSecret: "p@ss word", scopes: [read, metrics]}}
"#
    ));
    let reading = runtime().block_on(prometheus::measure(&metric, None, now()));
    assert_eq!(value_text(&reading), "[0]");

    let requests = received.lock().expect("log").clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let token = form(&requests[0].body);
    assert_eq!(requests[0].path, "/token");
    assert_eq!(token["grant_type"], "client_credentials");
    assert_eq!(token["client_id"], "ramp");
    assert_eq!(token["client_secret"], "p@ss word");
    assert_eq!(token["scope"], "read metrics");
    assert_eq!(requests[1].header("authorization"), "Bearer tok-123");
}

#[test]
fn an_empty_vector_is_no_data_not_zero() {
    let (address, _) = serve(|_| reply(200, &vector(&[])));
    let metric = prometheus_metric(&format!("address: {address}\nquery: up"));
    let reading = runtime().block_on(prometheus::measure(&metric, None, now()));
    assert_eq!(value_text(&reading), "[]");

    let judged = |condition: &str| {
        let metric: ramp::api::analysis::Metric = serde_norway::from_str(&format!(
            "{{name: m, successCondition: '{condition}', provider: {{prometheus: {{query: up}}}}}}"
        ))
        .expect("metric parses");
        ramp::analysis::provider::measurement(&metric, reading.clone(), now(), now()).phase
    };
    // `result[0]` of no data is an error to look at, not a 0 that passes a `< 0.05` check.
    assert_eq!(judged("result[0] < 0.05"), ramp::api::AnalysisPhase::Error);
    assert_eq!(
        judged("len(result) == 0"),
        ramp::api::AnalysisPhase::Successful
    );
}

#[test]
fn a_prometheus_error_and_a_slow_answer_are_measurement_errors() {
    let (address, _) = serve(|request| {
        if request.path.contains("slow") || request.body.contains("slow") {
            Reply {
                status: 200,
                body: vector(&["1"]),
                delay: Duration::from_secs(4),
            }
        } else {
            reply(
                400,
                r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4: unexpected end of input"}"#,
            )
        }
    });
    let bad = prometheus_metric(&format!("address: {address}\nquery: 'sum('"));
    let Reading::Error(message) = runtime().block_on(prometheus::measure(&bad, None, now())) else {
        panic!("a bad query must be an error");
    };
    assert!(
        message.contains("parse error"),
        "Prometheus' own words: {message}"
    );

    let slow = prometheus_metric(&format!("address: {address}\nquery: slow\ntimeout: 1"));
    let started = Instant::now();
    let Reading::Error(message) = runtime().block_on(prometheus::measure(&slow, None, now()))
    else {
        panic!("a query past its timeout must be an error");
    };
    assert!(message.contains("timeout of 1s"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "given up at the timeout, not when the server answered: {:?}",
        started.elapsed()
    );
}

#[test]
fn prometheus_range_query_sends_start_end_and_step() {
    let (address, received) = serve(|_| {
        reply(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1780314900,"1"],[1780315200,"3"]]}]}}"#,
        )
    });
    let metric = prometheus_metric(&format!(
        r#"
address: {address}
query: up
rangeQuery: {{start: 'now() - duration("5m")', end: 'now()', step: 1m}}
"#
    ));
    let reading = runtime().block_on(prometheus::measure(&metric, None, now()));
    assert_eq!(value_text(&reading), "[1,3]");
    let request = received.lock().expect("log")[0].clone();
    assert!(
        request.path.starts_with("/api/v1/query_range"),
        "{}",
        request.path
    );
    let params = form(&request.body);
    let now = now().as_second();
    assert_eq!(
        params["start"].parse::<f64>().ok(),
        Some((now - 300) as f64)
    );
    assert_eq!(params["end"].parse::<f64>().ok(), Some(now as f64));
    assert_eq!(params["step"].parse::<f64>().ok(), Some(60.0));
}

fn web_metric(yaml: &str) -> WebMetric {
    serde_norway::from_str(yaml).expect("web metric parses")
}

#[test]
fn web_sends_method_headers_and_body_and_reads_the_json_path() {
    let (address, received) = serve(|_| reply(200, r#"{"data":{"ok":true,"ratio":0.02}}"#));
    let metric = web_metric(&format!(
        r#"
url: {address}/check?service=web
method: POST
headers: [{{key: X-Team, value: payments}}]
body: '{{"window":"5m"}}'
jsonPath: "{{$.data.ratio}}"
"#
    ));
    let reading = runtime().block_on(web::measure(&metric));
    assert_eq!(value_text(&reading), "0.02");
    let request = received.lock().expect("log")[0].clone();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/check?service=web");
    assert_eq!(request.header("x-team"), "payments");
    assert_eq!(request.body, r#"{"window":"5m"}"#);
}

#[test]
fn web_reports_a_non_2xx_answer_and_a_missing_json_path_as_errors() {
    let (address, _) = serve(|request| {
        if request.path == "/down" {
            reply(503, r#"{"error":"unavailable"}"#)
        } else {
            reply(200, r#"{"data":{}}"#)
        }
    });
    let down = web_metric(&format!("url: {address}/down"));
    let Reading::Error(message) = runtime().block_on(web::measure(&down)) else {
        panic!("a 503 must be an error");
    };
    assert_eq!(message, "received non 2xx response code: 503");

    let missing = web_metric(&format!("url: {address}/ok\njsonPath: \"{{$.data.ok}}\""));
    assert!(
        matches!(
            runtime().block_on(web::measure(&missing)),
            Reading::Error(_)
        ),
        "a path that matches nothing is an error, not a value"
    );
}
