//! The resources the sandbox serves: one table read by routing, storage, discovery and tables.

/// A served resource (`pods`, `deployments.apps`, ...).
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name as in URLs.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresources: (name, kind, verbs).
    pub subresources: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// Whether objects carry `metadata.generation` (spec changes bump it).
    pub has_generation: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The path prefix of the group version: `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

pub const PODS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    verbs: ALL_VERBS,
    subresources: &[
        ("attach", "PodAttachOptions", &["create", "get"]),
        ("ephemeralcontainers", "Pod", STATUS_VERBS),
        ("exec", "PodExecOptions", &["create", "get"]),
        ("log", "Pod", &["get"]),
        ("status", "Pod", STATUS_VERBS),
    ],
    has_generation: false,
};

pub const NAMESPACES: Kind = Kind {
    group: "",
    version: "v1",
    resource: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    verbs: &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ],
    subresources: &[("status", "Namespace", STATUS_VERBS)],
    has_generation: false,
};

pub const EVENTS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    verbs: ALL_VERBS,
    subresources: &[],
    has_generation: false,
};

pub const CONFIGMAPS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    short_names: &["cm"],
    categories: &[],
    verbs: ALL_VERBS,
    subresources: &[],
    has_generation: false,
};

pub const SECRETS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "secrets",
    singular: "secret",
    kind: "Secret",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: ALL_VERBS,
    subresources: &[],
    has_generation: false,
};

pub const SERVICE_ACCOUNTS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    namespaced: true,
    short_names: &["sa"],
    categories: &[],
    verbs: ALL_VERBS,
    subresources: &[],
    has_generation: false,
};

const fn apps(
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    short: &'static [&'static str],
    subresources: &'static [(&'static str, &'static str, &'static [&'static str])],
) -> Kind {
    Kind {
        group: "apps",
        version: "v1",
        resource,
        singular,
        kind,
        namespaced: true,
        short_names: short,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources,
        has_generation: true,
    }
}

pub const DEPLOYMENTS: Kind = apps(
    "deployments",
    "deployment",
    "Deployment",
    &["deploy"],
    &[("status", "Deployment", STATUS_VERBS)],
);
pub const REPLICASETS: Kind = apps(
    "replicasets",
    "replicaset",
    "ReplicaSet",
    &["rs"],
    &[("status", "ReplicaSet", STATUS_VERBS)],
);
pub const STATEFULSETS: Kind = apps(
    "statefulsets",
    "statefulset",
    "StatefulSet",
    &["sts"],
    &[("status", "StatefulSet", STATUS_VERBS)],
);
pub const DAEMONSETS: Kind = apps(
    "daemonsets",
    "daemonset",
    "DaemonSet",
    &["ds"],
    &[("status", "DaemonSet", STATUS_VERBS)],
);

/// Stored kinds, in discovery order.
pub const STORED: &[&Kind] = &[
    &CONFIGMAPS,
    &EVENTS,
    &NAMESPACES,
    &PODS,
    &SECRETS,
    &SERVICE_ACCOUNTS,
    &DAEMONSETS,
    &DEPLOYMENTS,
    &REPLICASETS,
    &STATEFULSETS,
];

/// Find a stored kind by group and plural resource name.
pub fn lookup(group: &str, version: &str, resource: &str) -> Option<&'static Kind> {
    STORED
        .iter()
        .copied()
        .find(|k| k.group == group && k.version == version && k.resource == resource)
}
