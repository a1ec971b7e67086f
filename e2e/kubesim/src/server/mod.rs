//! The HTTP face of kubesim: routes Kubernetes API requests to the in-process API server, answers discovery,
//! streams watches, converts lists to Tables for kubectl, injects faults and counts every request.

mod discovery;
pub mod route;
pub mod table;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::apiserver::{
    ApiError, Cluster, DeleteOptions, ListOptions, PatchType, Subresource, WatchOptions,
    WriteOptions,
};
use crate::faults::{FaultState, Faults, RequestKey};
use crate::json::At;
use crate::registry::ResourceType;
use crate::sim::traffic::Traffic;
use route::{ResourcePath, Route};

/// Shared state of the HTTP server.
pub struct App {
    pub cluster: Arc<Cluster>,
    pub faults: Arc<FaultState>,
    pub traffic: Arc<Traffic>,
    /// `127.0.0.1:PORT`, for discovery's server address.
    pub address: String,
}

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

type Query = HashMap<String, String>;

async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Query = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let route = route::parse(uri.path());
    match route {
        Route::Resource(path) => resource_request(&app, method, path, &query, &headers, body).await,
        Route::Kubesim(rest) => admin_request(&app, &method, &rest, body),
        other => discovery_request(&app, other, uri.path()),
    }
}

fn discovery_request(app: &App, route: Route, path: &str) -> Response {
    let registry = app.cluster.registry();
    let found = match route {
        Route::Version => Some(discovery::version()),
        Route::Health => return text(StatusCode::OK, "ok".into(), "text/plain"),
        Route::CoreVersions => Some(discovery::core_versions(&app.address)),
        Route::Groups => Some(discovery::groups(&registry)),
        Route::Group(g) => discovery::one_group(&registry, &g),
        Route::Resources { group, version } => {
            discovery::resource_list(&registry, &group, &version)
        }
        Route::OpenApiV3Index => Some(discovery::openapi_v3_index(&registry)),
        Route::OpenApiV3 { group, version } => {
            Some(discovery::openapi_v3_document(&registry, &group, &version))
        }
        Route::OpenApiV2 | Route::Unknown | Route::Resource(_) | Route::Kubesim(_) => None,
    };
    match found {
        Some(v) => json_response(StatusCode::OK, &v),
        None => error_response(&ApiError::page_not_found(path)),
    }
}

/// The audit-style verb of a request.
fn verb_of(method: &Method, path: &ResourcePath, query: &Query) -> &'static str {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), path.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn resource_request(
    app: &App,
    method: Method,
    path: ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let verb = verb_of(&method, &path, query);
    let resource = match &path.subresource {
        Some(sub) => format!("{}/{sub}", path.plural),
        None => path.plural.clone(),
    };
    let group = path.group.clone();
    let user_agent = header_str(headers, header::USER_AGENT).to_string();
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resuming = verb == "watch"
        && query
            .get("resourceVersion")
            .is_some_and(|rv| !rv.is_empty() && rv != "0");
    let response = match app.faults.injected_error(verb, &resource, resuming) {
        Some(error) if verb == "watch" && error.code == 410 => watch::failed(&error),
        Some(error) => error_response(&error),
        None if app.faults.injected_conflict(verb) => {
            let rt = app
                .cluster
                .resource_type(&path.group, &path.version, &path.plural);
            match rt {
                Some(rt) => {
                    error_response(&ApiError::conflict(&rt, path.name.as_deref().unwrap_or("")))
                }
                None => error_response(&ApiError::page_not_found(&path.plural)),
            }
        }
        None => serve(app, verb, path, query, headers, body, &user_agent),
    };
    app.faults.count(RequestKey {
        verb: verb.to_string(),
        group,
        resource,
        code: response.status().as_u16(),
        user_agent,
    });
    response
}

fn serve(
    app: &App,
    verb: &str,
    path: ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
    user_agent: &str,
) -> Response {
    let Some(rt) = app
        .cluster
        .resource_type(&path.group, &path.version, &path.plural)
    else {
        return error_response(&ApiError::page_not_found(&format!(
            "{}/{}",
            path.plural,
            path.name.clone().unwrap_or_default()
        )));
    };
    if rt.namespaced != path.namespace.is_some() && !(rt.namespaced && path.name.is_none()) {
        return error_response(&ApiError::page_not_found(&path.plural));
    }
    let namespace = path.namespace.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    let sub = match path.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some("scale") if rt.scale.is_some() => Subresource::Scale,
        Some("eviction") if rt.kind == "Pod" && verb == "create" => {
            return match app
                .cluster
                .delete(&rt, &namespace, &name, &DeleteOptions::default())
            {
                Ok(_) => json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ),
                Err(e) => error_response(&e),
            };
        }
        Some(other) => {
            return error_response(&ApiError::page_not_found(&format!(
                "{}/{name}/{other}",
                path.plural
            )));
        }
    };
    let options = write_options(query, user_agent);
    let accept = header_str(headers, header::ACCEPT);
    let result = match verb {
        "get" => app
            .cluster
            .get_subresource(&rt, &namespace, &name, sub)
            .map(|obj| {
                if table::wants_table(accept) && sub == Subresource::Main {
                    let rv = obj
                        .at("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    Arc::new(table::table(&rt, &[obj], include_object(query), rv, None))
                } else {
                    obj
                }
            }),
        "list" => list(app, &rt, path.namespace.as_deref(), query, accept).map(Arc::new),
        "watch" => return watch_request(app, &rt, path.namespace.as_deref(), query, accept),
        "create" => parse_body(&body, headers)
            .and_then(|b| app.cluster.create(&rt, &namespace, b, &options)),
        "update" => parse_body(&body, headers)
            .and_then(|b| app.cluster.update(&rt, &namespace, &name, b, sub, &options)),
        "patch" => patch(app, &rt, &namespace, &name, sub, headers, &body, &options),
        "delete" => {
            let mut delete =
                DeleteOptions::from_body(&serde_json::from_slice(&body).unwrap_or(Value::Null));
            apply_delete_query(&mut delete, query);
            app.cluster
                .delete(&rt, &namespace, &name, &delete)
                .map(Arc::new)
        }
        "deletecollection" => {
            let mut delete =
                DeleteOptions::from_body(&serde_json::from_slice(&body).unwrap_or(Value::Null));
            apply_delete_query(&mut delete, query);
            app.cluster
                .delete_collection(&rt, path.namespace.as_deref(), &list_options(query), &delete)
                .map(|items| Arc::new(json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": items})))
        }
        _ => Err(ApiError::method_not_supported(&rt, verb)),
    };
    match result {
        Ok(v) if verb == "create" => json_response(StatusCode::CREATED, &v),
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}

#[allow(clippy::too_many_arguments)]
fn patch(
    app: &App,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    sub: Subresource,
    headers: &HeaderMap,
    body: &Bytes,
    options: &WriteOptions,
) -> Result<Arc<Value>, ApiError> {
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let patch_type = PatchType::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(PatchType::accepted(rt)))?;
    let patch: Value = if patch_type == PatchType::Apply {
        serde_norway::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the apply configuration is not valid YAML or JSON: {e}"
            ))
        })?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?
    };
    if patch_type == PatchType::Apply && options.field_manager.is_none() {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requires fieldManager to be set",
        ));
    }
    app.cluster
        .patch(rt, namespace, name, patch_type, patch, sub, options)
}

fn list(
    app: &App,
    rt: &ResourceType,
    namespace: Option<&str>,
    query: &Query,
    accept: &str,
) -> Result<Value, ApiError> {
    let page = app.cluster.list(rt, namespace, &list_options(query))?;
    if table::wants_table(accept) {
        return Ok(table::table(
            rt,
            &page.items,
            include_object(query),
            page.resource_version,
            page.continue_token.as_deref(),
        ));
    }
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(json!({
        "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata,
        "items": page.items.iter().map(|i| (**i).clone()).collect::<Vec<_>>(),
    }))
}

fn watch_request(
    app: &App,
    rt: &ResourceType,
    namespace: Option<&str>,
    query: &Query,
    accept: &str,
) -> Response {
    let resource_version = match query
        .get("resourceVersion")
        .map(String::as_str)
        .filter(|rv| !rv.is_empty())
    {
        None => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return error_response(&ApiError::bad_request(format!(
                    "invalid resource version: {rv}"
                )));
            }
        },
    };
    let options = WatchOptions {
        list: list_options(query),
        resource_version,
        send_initial_events: query.get("sendInitialEvents").is_some_and(|v| v == "true"),
    };
    let start = match app.cluster.watch(rt, namespace, &options) {
        Ok(start) => start,
        Err(e) if e.code == 410 => return watch::failed(&e),
        Err(e) => return error_response(&e),
    };
    let settings = watch::Settings {
        timeout: query
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map(std::time::Duration::from_secs),
        bookmarks: query
            .get("allowWatchBookmarks")
            .is_some_and(|v| v == "true"),
        send_initial_events: options.send_initial_events,
        table: table::wants_table(accept).then(|| include_object(query).to_string()),
        faults: app.faults.get(),
    };
    watch::stream(app.cluster.clone(), Arc::new(rt.clone()), start, settings)
}

fn list_options(query: &Query) -> ListOptions {
    ListOptions {
        label_selector: query
            .get("labelSelector")
            .cloned()
            .filter(|s| !s.is_empty()),
        field_selector: query
            .get("fieldSelector")
            .cloned()
            .filter(|s| !s.is_empty()),
        limit: query.get("limit").and_then(|l| l.parse().ok()),
        continue_token: query.get("continue").cloned().filter(|s| !s.is_empty()),
    }
}

fn write_options(query: &Query, user_agent: &str) -> WriteOptions {
    WriteOptions {
        dry_run: query.get("dryRun").is_some_and(|d| d == "All"),
        field_manager: query.get("fieldManager").cloned(),
        strict: query.get("fieldValidation").is_some_and(|v| v == "Strict"),
        user_agent: Some(user_agent.to_string()).filter(|u| !u.is_empty()),
    }
}

fn apply_delete_query(options: &mut DeleteOptions, query: &Query) {
    if let Some(policy) = query.get("propagationPolicy") {
        options.propagation_policy = Some(policy.clone());
    }
    if query.get("dryRun").is_some_and(|d| d == "All") {
        options.dry_run = true;
    }
}

fn include_object(query: &Query) -> &str {
    query
        .get("includeObject")
        .map(String::as_str)
        .unwrap_or("PartialObjectMetadata")
}

fn parse_body(body: &Bytes, headers: &HeaderMap) -> Result<Value, ApiError> {
    let content_type = header_str(headers, header::CONTENT_TYPE);
    if content_type.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(&[
            "application/json",
            "application/yaml",
        ]));
    }
    if content_type.contains("yaml") {
        return serde_norway::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn admin_request(app: &App, method: &Method, rest: &[String], body: Bytes) -> Response {
    let parts: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["admin", "requests"]) => {
            json_response(StatusCode::OK, &json!(app.faults.counts()))
        }
        ("DELETE", ["admin", "requests"]) => {
            app.faults.reset_counts();
            json_response(StatusCode::OK, &json!({}))
        }
        ("GET", ["admin", "faults"]) => json_response(StatusCode::OK, &json!(app.faults.get())),
        ("PUT", ["admin", "faults"]) => match serde_json::from_slice::<Faults>(&body) {
            Ok(faults) => {
                app.faults.set(faults);
                json_response(StatusCode::OK, &json!(app.faults.get()))
            }
            Err(e) => error_response(&ApiError::bad_request(format!("faults: {e}"))),
        },
        ("POST", ["admin", "compact"]) => {
            app.cluster.compact();
            json_response(
                StatusCode::OK,
                &json!({"resourceVersion": app.cluster.resource_version().to_string()}),
            )
        }
        ("GET", ["traffic", "metrics"]) => text(
            StatusCode::OK,
            app.traffic.exposition(),
            "text/plain; version=0.0.4",
        ),
        ("PUT", ["traffic", namespace, service]) => match serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("requestsPerSecond").and_then(Value::as_f64))
        {
            Some(rate) => {
                app.traffic.set_rate(namespace, service, rate);
                json_response(StatusCode::OK, &json!({"requestsPerSecond": rate}))
            }
            None => error_response(&ApiError::bad_request(
                "body must be {\"requestsPerSecond\": NUMBER}",
            )),
        },
        _ => error_response(&ApiError::page_not_found(&format!(
            "/kubesim/{}",
            parts.join("/")
        ))),
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    // Straight into bytes: `to_string` goes through `Display` and a formatter per token, which made
    // answering 9 % of kubesim's CPU.
    let body = serde_json::to_vec(value).unwrap_or_default();
    respond(code, Body::from(body), "application/json")
}

fn text(code: StatusCode, body: String, content_type: &'static str) -> Response {
    respond(code, Body::from(body), content_type)
}

fn respond(code: StatusCode, body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn error_response(error: &ApiError) -> Response {
    let mut response = json_response(
        StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.status(),
    );
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
