//! Discovery: `/version`, `/api`, `/apis`, the group versions' resource lists, and the
//! aggregated discovery documents (`apidiscovery.k8s.io/v2`, `v2beta1`) that kubectl asks
//! for first. Everything derives from the table in `kinds`.

use serde_json::{Value, json};

use super::kinds::{self, Kind};

/// The Kubernetes version the sandbox claims to be.
pub const GIT_VERSION: &str = "v1.33.1";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T08:19:08Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A group the sandbox serves, with its kinds; review-only groups have virtual resources.
struct Group {
    name: &'static str,
    version: &'static str,
    /// Non-stored resources: (name, kind, verbs).
    virtual_resources: &'static [(&'static str, &'static str, &'static [&'static str])],
}

const GROUPS: &[Group] = &[
    Group {
        name: "apps",
        version: "v1",
        virtual_resources: &[],
    },
    Group {
        name: "authentication.k8s.io",
        version: "v1",
        virtual_resources: &[("selfsubjectreviews", "SelfSubjectReview", &["create"])],
    },
    Group {
        name: "authorization.k8s.io",
        version: "v1",
        virtual_resources: &[(
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            &["create"],
        )],
    },
];

fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

fn stored_in(group: &str, version: &str) -> impl Iterator<Item = &'static Kind> {
    kinds::STORED
        .iter()
        .copied()
        .filter(move |k| k.group == group && k.version == version)
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn api_group(g: &Group) -> Value {
    let gv = json!({ "groupVersion": format!("{}/{}", g.name, g.version), "version": g.version });
    json!({ "name": g.name, "versions": [gv.clone()], "preferredVersion": gv })
}

pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(api_group).collect::<Vec<_>>(),
    })
}

pub fn api_group_doc(name: &str) -> Option<Value> {
    let mut doc = api_group(group(name)?);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn legacy_resources(group_name: &str, version: &str) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for k in stored_in(group_name, version) {
        let mut r = json!({
            "name": k.resource,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": k.verbs,
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if !k.categories.is_empty() {
            r["categories"] = json!(k.categories);
        }
        out.push(r);
        for (sub, kind, verbs) in k.subresources {
            out.push(json!({
                "name": format!("{}/{sub}", k.resource),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": kind,
                "verbs": verbs,
            }));
        }
    }
    if let Some(g) = group(group_name).filter(|g| g.version == version) {
        for (name, kind, verbs) in g.virtual_resources {
            out.push(json!({
                "name": name, "singularName": "", "namespaced": false, "kind": kind, "verbs": verbs,
            }));
        }
    } else if !(group_name.is_empty() && version == "v1") {
        return None;
    }
    Some(out)
}

/// `/api/v1`, `/apis/G/V`.
pub fn resource_list(group_name: &str, version: &str) -> Option<Value> {
    let resources = legacy_resources(group_name, version)?;
    let gv = if group_name.is_empty() {
        version.to_string()
    } else {
        format!("{group_name}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "version": version, "kind": kind })
}

fn aggregated_version(group_name: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for k in stored_in(group_name, version) {
        let mut r = json!({
            "resource": k.resource,
            "responseKind": gvk(k.group, k.version, k.kind),
            "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": k.singular,
            "verbs": k.verbs,
            "subresources": k.subresources.iter().map(|(sub, kind, verbs)| json!({
                "subresource": sub,
                "responseKind": gvk(if *kind == k.kind { k.group } else { "" }, k.version, kind),
                "verbs": verbs,
            })).collect::<Vec<_>>(),
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if !k.categories.is_empty() {
            r["categories"] = json!(k.categories);
        }
        resources.push(r);
    }
    if let Some(g) = group(group_name) {
        for (name, kind, verbs) in g.virtual_resources {
            resources.push(json!({
                "resource": name,
                "responseKind": gvk(group_name, version, kind),
                "scope": "Cluster",
                "singularResource": name.trim_end_matches('s'),
                "verbs": verbs,
            }));
        }
    }
    json!({ "version": version, "resources": resources, "freshness": "Current" })
}

/// The aggregated discovery document for `/api` (`legacy`) or `/apis`.
pub fn aggregated(legacy: bool, api_version: &str) -> Value {
    let items: Vec<Value> = if legacy {
        vec![
            json!({ "metadata": { "creationTimestamp": null }, "versions": [aggregated_version("", "v1")] }),
        ]
    } else {
        GROUPS
            .iter()
            .map(|g| {
                json!({
                    "metadata": { "name": g.name, "creationTimestamp": null },
                    "versions": [aggregated_version(g.name, g.version)],
                })
            })
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

/// Which aggregated discovery version an `Accept` header asks for, if any, in preference
/// order as the client listed them.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r[key] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn core_v1_lists_pod_subresources_with_their_verbs() {
        let list = resource_list("", "v1").unwrap();
        let resources = &list["resources"];
        assert_eq!(find(resources, "name", "pods")["shortNames"], json!(["po"]));
        assert_eq!(
            find(resources, "name", "pods/exec")["verbs"],
            json!(["create", "get"])
        );
        assert_eq!(
            find(resources, "name", "pods/ephemeralcontainers")["verbs"],
            json!(["get", "patch", "update"])
        );
        assert_eq!(find(resources, "name", "pods/log")["kind"], "Pod");
        assert_eq!(
            find(resources, "name", "events")["shortNames"],
            json!(["ev"])
        );
        assert!(resource_list("", "v2").is_none());
    }

    #[test]
    fn aggregated_discovery_carries_scope_and_subresources() {
        let doc = aggregated(true, "apidiscovery.k8s.io/v2");
        let pods = find(
            &doc["items"][0]["versions"][0]["resources"],
            "resource",
            "pods",
        );
        assert_eq!(pods["scope"], "Namespaced");
        let attach = find(&pods["subresources"], "subresource", "attach");
        assert_eq!(attach["responseKind"]["kind"], "PodAttachOptions");
        let apis = aggregated(false, "apidiscovery.k8s.io/v2");
        let apps = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = find(&apps["versions"][0]["resources"], "resource", "deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
    }

    #[test]
    fn accept_header_selects_the_aggregated_version() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(kubectl), Some("v2"));
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some("v2beta1")
        );
        assert_eq!(wants_aggregated("application/json, */*"), None);
    }
}
