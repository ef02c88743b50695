//! What a request is about: the apiserver's RequestInfo (verb, group, version, namespace,
//! resource, name, subresource) parsed from method and path.

use std::collections::HashMap;

use http::Method;

/// A request for a resource (as opposed to discovery or a non-resource path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`, `/apis`, `/api/v1`, `/apis/G`, `/apis/G/V`.
    Discovery(Vec<String>),
    Resource(ResourceRequest),
    /// `/version`, `/healthz`, `/openapi/...`, `/sandbox/...`.
    NonResource(String),
}

/// Parsed query string; repeated keys (exec `command`) keep every value.
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, Vec<String>>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(percent_decode(k))
                .or_default()
                .push(percent_decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.get(key).cloned().unwrap_or_default()
    }

    /// `true`/`1` as the apiserver accepts them for boolean parameters.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

pub fn route(method: &Method, path: &str, query: &Query) -> Route {
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(percent_decode)
        .collect();
    let (group, version, rest) = match parts.first().map(String::as_str) {
        Some("api") if parts.len() <= 2 => return Route::Discovery(parts),
        Some("apis") if parts.len() <= 3 => return Route::Discovery(parts),
        Some("api") => (String::new(), parts[1].clone(), &parts[2..]),
        Some("apis") => (parts[1].clone(), parts[2].clone(), &parts[3..]),
        _ => return Route::NonResource(format!("/{}", parts.join("/"))),
    };
    let (namespace, resource, name, subresource) = match rest {
        [ns] if ns == "namespaces" => (None, ns.clone(), None, None),
        [ns, name] if ns == "namespaces" => (None, ns.clone(), Some(name.clone()), None),
        [ns, name, sub] if ns == "namespaces" && (sub == "status" || sub == "finalize") => {
            (None, ns.clone(), Some(name.clone()), Some(sub.clone()))
        }
        [ns, namespace, resource, tail @ ..] if ns == "namespaces" => (
            Some(namespace.clone()),
            resource.clone(),
            tail.first().cloned(),
            tail.get(1).cloned(),
        ),
        [resource, tail @ ..] => (
            None,
            resource.clone(),
            tail.first().cloned(),
            tail.get(1).cloned(),
        ),
        [] => return Route::Discovery(parts),
    };
    // `?watch=true` makes any GET a watch, of one object when the path names it.
    let verb = match *method {
        Method::GET | Method::HEAD if query.flag("watch") && subresource.is_none() => "watch",
        Method::GET | Method::HEAD if name.is_none() => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    };
    Route::Resource(ResourceRequest {
        verb,
        group,
        version,
        namespace,
        resource,
        name,
        subresource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, path: &str, query: &str) -> ResourceRequest {
        match route(&method, path, &Query::parse(Some(query))) {
            Route::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_request_info_like_the_apiserver() {
        let r = resource(
            Method::PATCH,
            "/api/v1/namespaces/default/pods/app/ephemeralcontainers",
            "",
        );
        assert_eq!(
            (
                r.verb,
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            (
                "patch",
                Some("default"),
                "pods",
                Some("app"),
                Some("ephemeralcontainers")
            )
        );
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods", "watch=1");
        assert_eq!(r.verb, "watch");
        let r = resource(Method::GET, "/apis/apps/v1/deployments", "");
        assert_eq!(
            (r.group.as_str(), r.verb, r.namespace),
            ("apps", "list", None)
        );
        let r = resource(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        assert_eq!(
            route(&Method::GET, "/apis/apps", &Query::default()),
            Route::Discovery(vec!["apis".into(), "apps".into()])
        );
    }

    #[test]
    fn query_keeps_repeated_values_and_decodes() {
        let q = Query::parse(Some(
            "command=ls&command=%2Fproc%2F1&labelSelector=app%3Dweb",
        ));
        assert_eq!(q.all("command"), vec!["ls", "/proc/1"]);
        assert_eq!(q.get("labelSelector"), Some("app=web"));
    }
}
