//! Counts every request the controller sends to the API server, for Argo's
//! `controller_clientset_k8s_request_total{kind,namespace,name,verb,status_code}`.
//!
//! The count is taken in the client itself (a service wrapped around the [`Client`]), so watches, lists,
//! writes, leader election and the preflight are all counted and no call site can forget to.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response, Uri};
use kube::Client;
use kube::client::Body;

use super::metrics::Metrics;

/// What a request is about, read from its method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The resource's plural as in the path, with the subresource: `rollouts`, `rollouts/status`,
    /// `pods/eviction`.
    pub kind: String,
    pub namespace: String,
    /// The object's name when the path names one (never for a create, a list or a watch).
    pub name: String,
    /// The Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`.
    pub verb: String,
}

/// Reads a request's resource, namespace, name and verb from its method and URI, as the API server does.
pub fn describe(method: &Method, uri: &Uri) -> RequestInfo {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // After `/api/v1` or `/apis/<group>/<version>`.
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    let (namespace, rest): (&str, &[&str]) = match rest {
        // `/api/v1/namespaces/<ns>` alone is the Namespace object itself.
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (ns, tail),
        other => ("", other),
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, "", None),
        [resource, name] => (*resource, *name, None),
        [resource, name, sub, ..] => (*resource, *name, Some(*sub)),
        [] => ("", "", None),
    };
    let watching = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let named = !name.is_empty();
    let verb = match *method {
        Method::GET if watching => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    RequestInfo {
        kind: match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        },
        namespace: namespace.to_string(),
        name: name.to_string(),
        verb: verb.to_string(),
    }
}

/// A client that counts each request in `metrics` once its response (or failure) arrives.
pub fn counted(client: Client, metrics: Arc<Metrics>) -> Client {
    let namespace = client.default_namespace().to_string();
    Client::new(
        Counted {
            inner: client,
            metrics,
        },
        namespace,
    )
}

#[derive(Clone)]
struct Counted {
    inner: Client,
    metrics: Arc<Metrics>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

impl tower_service::Service<Request<Body>> for Counted {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The wrapped client queues requests itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let info = describe(request.method(), request.uri());
        let client = self.inner.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = client.send(request).await;
            // A request that got no HTTP answer (connection refused, timeout) is counted as `error`.
            let status = match &response {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics.request(&info, &status);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, uri: &str) -> (String, String, String, String) {
        let i = describe(&method, &uri.parse().expect("uri"));
        (i.kind, i.namespace, i.name, i.verb)
    }

    fn t(kind: &str, ns: &str, name: &str, verb: &str) -> (String, String, String, String) {
        (kind.into(), ns.into(), name.into(), verb.into())
    }

    #[test]
    fn reads_resource_namespace_name_and_verb_from_the_path() {
        assert_eq!(
            info(
                Method::GET,
                "/apis/argoproj.io/v1alpha1/rollouts?labelSelector=x&limit=500"
            ),
            t("rollouts", "", "", "list")
        );
        assert_eq!(
            info(
                Method::GET,
                "/apis/apps/v1/namespaces/demo/replicasets?watch=true&resourceVersion=7"
            ),
            t("replicasets", "demo", "", "watch")
        );
        assert_eq!(
            info(
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/demo/rollouts/web/status"
            ),
            t("rollouts/status", "demo", "web", "patch")
        );
        assert_eq!(
            info(Method::POST, "/api/v1/namespaces/demo/pods/web-1/eviction"),
            t("pods/eviction", "demo", "web-1", "create")
        );
        assert_eq!(
            info(Method::POST, "/api/v1/namespaces/demo/events"),
            t("events", "demo", "", "create")
        );
        assert_eq!(
            info(
                Method::GET,
                "/apis/coordination.k8s.io/v1/namespaces/ramp-system/leases/lock"
            ),
            t("leases", "ramp-system", "lock", "get")
        );
        assert_eq!(
            info(
                Method::DELETE,
                "/apis/apps/v1/namespaces/demo/replicasets/web-abc"
            ),
            t("replicasets", "demo", "web-abc", "delete")
        );
        assert_eq!(
            info(Method::GET, "/api/v1/namespaces/demo"),
            t("namespaces", "", "demo", "get")
        );
    }

    /// An API server that answers every request with one status code.
    #[derive(Clone)]
    struct Answer(u16);

    impl tower_service::Service<Request<Body>> for Answer {
        type Response = Response<Body>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "code": self.0, "reason": "NotFound", "message": "not found"});
            let response = Response::builder()
                .status(self.0)
                .body(Body::from(body.to_string().into_bytes()))
                .expect("a valid response");
            std::future::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn every_request_is_counted_with_argos_labels() {
        let metrics = Arc::new(Metrics::new());
        let client = counted(Client::new(Answer(404), "default"), metrics.clone());
        let rollouts: kube::Api<crate::api::Rollout> = kube::Api::namespaced(client, "demo");
        for _ in 0..2 {
            let error = rollouts
                .get("web")
                .await
                .expect_err("the server answers 404");
            assert!(
                matches!(error, kube::Error::Api(ref s) if s.code == 404),
                "{error}"
            );
        }
        let _ = rollouts.list(&Default::default()).await;
        let text = metrics.encode();
        assert!(
            text.contains(r#"controller_clientset_k8s_request_total{kind="rollouts",namespace="demo",name="web",verb="get",status_code="404"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"controller_clientset_k8s_request_total{kind="rollouts",namespace="demo",name="",verb="list",status_code="404"} 1"#),
            "{text}"
        );
    }
}
