//! The endpoint the demo's Web metric measures: the error rate of the image in `?image=`.

use axum::Router;
use axum::http::Uri;
use axum::routing::get;

/// The error rate a version reports: images tagged `bad-*` fail 42% of requests.
pub fn of(image: &str) -> f64 {
    let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
    if tag.starts_with("bad-") { 0.42 } else { 0.01 }
}

/// The value of `key` in a query string, decoded.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

async fn error_rate(uri: Uri) -> (axum::http::StatusCode, String) {
    match uri.query().and_then(|q| query_value(q, "image")) {
        Some(image) => (
            axum::http::StatusCode::OK,
            serde_json::json!({"image": image, "errorRate": of(&image)}).to_string(),
        ),
        None => (
            axum::http::StatusCode::BAD_REQUEST,
            r#"{"error": "add ?image=IMAGE to the URL"}"#.to_string(),
        ),
    }
}

/// Serves `/error-rate` on a free loopback port: its base URL and the server task.
pub async fn serve() -> anyhow::Result<(String, super::AbortOnDrop)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = Router::new().route("/error-rate", get(error_rate));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("the demo's error-rate endpoint stopped: {e}");
        }
    });
    Ok((url, super::AbortOnDrop(task)))
}
