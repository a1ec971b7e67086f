//! Turning a request path into what it addresses.

/// A path of the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    Resources {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3 {
        group: String,
        version: String,
    },
    Health,
    /// `/kubesim/...`: admin and traffic endpoints.
    Kubesim(Vec<String>),
    Unknown,
}

/// A path under a group version that names a resource, maybe one object, maybe a subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", "v1"] => Route::Resources {
            group: String::new(),
            version: "v1".into(),
        },
        ["apis", group, version] => Route::Resources {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", "v1"] => Route::OpenApiV3 {
            group: String::new(),
            version: "v1".into(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApiV3 {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["kubesim", rest @ ..] => Route::Kubesim(rest.iter().map(|s| s.to_string()).collect()),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let path = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: plural.to_string(),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        })
    };
    let namespace_subresource = |s: &str| matches!(s, "status" | "finalize");
    match rest {
        ["namespaces", ns, plural] if group.is_empty() && !namespace_subresource(plural) => {
            path(Some(ns), plural, None, None)
        }
        ["namespaces", ns, plural] if !group.is_empty() => path(Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => path(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => path(Some(ns), plural, Some(name), Some(sub)),
        [plural] => path(None, plural, None, None),
        [plural, name] => path(None, plural, Some(name), None),
        [plural, name, sub] => path(None, plural, Some(name), Some(sub)),
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(ns: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>) -> ResourcePath {
        ResourcePath {
            group: String::new(),
            version: "v1".into(),
            namespace: ns.map(str::to_string),
            plural: plural.into(),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        }
    }

    #[test]
    fn namespaces_and_namespaced_paths_are_told_apart() {
        assert_eq!(
            parse("/api/v1/namespaces"),
            Route::Resource(rp(None, "namespaces", None, None))
        );
        assert_eq!(
            parse("/api/v1/namespaces/demo"),
            Route::Resource(rp(None, "namespaces", Some("demo"), None))
        );
        assert_eq!(
            parse("/api/v1/namespaces/demo/status"),
            Route::Resource(rp(None, "namespaces", Some("demo"), Some("status")))
        );
        assert_eq!(
            parse("/api/v1/namespaces/demo/pods"),
            Route::Resource(rp(Some("demo"), "pods", None, None))
        );
        assert_eq!(
            parse("/api/v1/namespaces/demo/pods/p/eviction"),
            Route::Resource(rp(Some("demo"), "pods", Some("p"), Some("eviction")))
        );
    }

    #[test]
    fn group_paths() {
        assert_eq!(
            parse("/apis/argoproj.io"),
            Route::Group("argoproj.io".into())
        );
        let Route::Resource(p) = parse("/apis/argoproj.io/v1alpha1/namespaces/d/rollouts/r/status")
        else {
            panic!("not a resource path");
        };
        assert_eq!(
            (
                p.group.as_str(),
                p.plural.as_str(),
                p.subresource.as_deref()
            ),
            ("argoproj.io", "rollouts", Some("status"))
        );
    }
}
