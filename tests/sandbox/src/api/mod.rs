//! The API double: an HTTPS server speaking the Kubernetes REST protocol closely enough that
//! real kubectl and client libraries cannot tell it from an apiserver for the verbs we use.
//!
//! Modules by responsibility: `server` (connections, auth, faults, routing, request log),
//! `routes` (RequestInfo), `store` (objects, resourceVersions, change feed), `watch`,
//! `discovery`, `tables`, `objects` (generic CRUD), `pods` and `ephemeral` (the pod and its
//! subresources), `streams` (exec, attach, log), `sink` (what the node reports), `defaults`,
//! `patch`, `selectors`, `status`, `auth`, `faults`, `audit`, `tls`, `kubeconfig`.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod control;
pub mod defaults;
pub mod discovery;
pub mod ephemeral;
pub mod faults;
pub mod kinds;
pub mod kubeconfig;
pub mod meta;
pub mod objects;
pub mod openapi;
pub mod openapi_v2;
pub mod patch;
pub mod pods;
pub mod protobuf;
pub mod respond;
pub mod routes;
pub mod selectors;
pub mod server;
pub mod sink;
pub mod status;
pub mod store;
pub mod streams;
pub mod tables;
pub mod tls;
pub mod watch;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::runtime::SharedRuntime;
use audit::RequestLog;
use auth::{Access, UserInfo};
use faults::FaultState;
use kinds::Kind;
use routes::{Query, ResourceRequest};
use status::ApiError;
use store::Store;

/// Everything a request handler can reach.
pub struct ApiState {
    pub store: Arc<Store>,
    pub runtime: SharedRuntime,
    pub access: Access,
    pub faults: Arc<FaultState>,
    pub log: RequestLog,
    /// `127.0.0.1:PORT`, for `/api`'s serverAddressByClientCIDRs.
    pub server_address: String,
}

/// One resource request after routing and authentication, with its body read.
pub struct Call {
    pub req: ResourceRequest,
    pub kind: &'static Kind,
    pub query: Query,
    pub content_type: String,
    pub accept: String,
    pub body: Bytes,
    pub user: UserInfo,
}

impl Call {
    pub fn namespace(&self) -> &str {
        self.req.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.req.name.as_deref().unwrap_or("")
    }

    /// `?dryRun=All`: validate and admit, store nothing, start nothing.
    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    /// The request body as JSON (YAML accepted too, as the apiserver does).
    pub fn body_json(&self) -> Result<Value, ApiError> {
        let media = patch::media_type(&self.content_type);
        if media == protobuf::MEDIA_TYPE {
            return protobuf::decode(&self.body, self.kind.kind);
        }
        if media.ends_with("yaml") {
            let text = std::str::from_utf8(&self.body)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            return serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}': {e}",
                String::from_utf8_lossy(&self.body)
            ))
        })
    }
}
