//! `pods/exec` and `pods/attach` (WebSocket, `v5`/`v4.channel.k8s.io`) and `pods/log`.
//!
//! Errors found before the upgrade (unknown container, missing command, container not
//! running) are answered as plain HTTP Status responses, as the apiserver does before it
//! hands the connection over; after the upgrade, `channel` speaks the protocol.

use std::sync::Arc;

use futures::SinkExt;
use http::{Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::kinds::PODS;
use super::respond::{self, Body};
use super::status::ApiError;
use super::{ApiState, Call};
use crate::channel;
use crate::runtime::{RuntimeError, StreamOptions};

fn runtime_error(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::NotFound(m) => ApiError::from_status(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": m, "reason": "NotFound", "code": 404,
        })),
        RuntimeError::BadRequest(m) => ApiError::bad_request(m),
        RuntimeError::Internal(m) => ApiError::internal(m),
    }
}

fn container_names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

/// The container a request names, checked against the pod; with none named, the only
/// container (or the default-container annotation), as the apiserver resolves it.
fn resolve_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let containers = container_names(pod, "containers");
    let init = container_names(pod, "initContainers");
    let ephemeral = container_names(pod, "ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            if let Some(d) =
                pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str()
            {
                return Ok(d.to_string());
            }
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            if !ephemeral.is_empty() {
                msg.push_str(&format!(
                    " or one of the ephemeral containers: [{}]",
                    ephemeral.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

fn pod_of(state: &ApiState, call: &Call) -> Result<Value, ApiError> {
    state
        .store
        .get(&PODS, call.namespace(), call.name())
        .ok_or_else(|| ApiError::not_found("", "pods", call.name()))
}

/// Whether the container's last reported state is terminated.
fn terminated(pod: &Value, container: &str) -> bool {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|list| pod["status"][*list].as_array().into_iter().flatten())
    .any(|s| s["name"].as_str() == Some(container) && s["state"].get("terminated").is_some())
}

/// The waiting reason of a container that has not started yet, if it is waiting.
fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    let all = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ];
    for list in all {
        for s in pod["status"][list].as_array().into_iter().flatten() {
            if s["name"].as_str() == Some(container) {
                return s["state"]["waiting"]["reason"].as_str().map(String::from);
            }
        }
    }
    if pod["status"]["phase"].as_str() == Some("Pending") {
        return Some("ContainerCreating".into());
    }
    None
}

pub async fn exec_or_attach(
    state: &Arc<ApiState>,
    call: &Call,
    mut request: http::Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    let is_exec = call.req.subresource.as_deref() == Some("exec");
    if call.req.verb != "get" && call.req.verb != "create" {
        return Err(ApiError::method_not_supported("", "pods", call.req.verb));
    }
    let pod = pod_of(state, call)?;
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        let what = if is_exec { "exec into" } else { "attach to" };
        return Err(ApiError::bad_request(format!(
            "cannot {what} a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = resolve_container(&pod, call.query.get("container"))?;
    let command = call.query.all("command");
    if is_exec && command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let tty = call.query.flag("tty");
    let streams = StreamOptions {
        stdin: call.query.flag("stdin"),
        stdout: call.query.flag("stdout"),
        stderr: call.query.flag("stderr") && !tty,
        tty,
    };
    if !streams.stdin && !streams.stdout && !call.query.flag("stderr") {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if waiting_reason(&pod, &container).is_some() || terminated(&pod, &container) {
        // What the kubelet answers for a container without a running process.
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found ({container:?})"
        )));
    }
    let headers = request.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if upgrade != "websocket" {
        // kubectl falls back to SPDY when the WebSocket attempt fails; by then every error
        // above has been answered the same way, so this one only shows for SPDY-only clients.
        return Err(ApiError::bad_request(format!(
            "Upgrade request required: the sandbox serves {} over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) only; SPDY ({}) is not supported — use kubectl 1.30 or newer",
            call.req.subresource.as_deref().unwrap_or(""),
            if upgrade.is_empty() {
                "no upgrade"
            } else {
                upgrade.as_str()
            }
        )));
    }
    let key = headers
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let offered_refs: Vec<&str> = offered.iter().map(String::as_str).collect();
    let upgrade = channel::upgrade_response(&key, &offered_refs)
        .ok_or_else(|| ApiError::bad_request(format!("unsupported subprotocols: {offered:?}")))?;

    let runtime = state.runtime.clone();
    let (ns, name) = (call.namespace().to_string(), call.name().to_string());
    let drop_after = state.faults.drop_exec_after();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let process_future = if is_exec {
        runtime.exec(ns, name, container.clone(), command.clone(), streams)
    } else {
        runtime.attach(ns, name, container.clone(), streams)
    };
    // The node's answer decides between an HTTP error and the upgrade, so it is awaited
    // before the 101 goes out. A container that is not running yet is the usual error.
    let process = process_future.await.map_err(runtime_error)?;

    let protocol = upgrade.protocol;
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if is_exec {
            channel::serve_exec(ws, protocol, process, &command, drop_after).await;
        } else {
            channel::serve_attach(ws, protocol, process, drop_after).await;
        }
    });
    let mut resp = Response::new(respond::full(""));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        header::CONNECTION,
        "Upgrade".parse().expect("static header"),
    );
    h.insert(header::UPGRADE, "websocket".parse().expect("static header"));
    if let Ok(v) = upgrade.accept.parse() {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(p) = upgrade.protocol_header {
        h.insert("sec-websocket-protocol", p.parse().expect("static header"));
    }
    Ok(resp)
}

pub async fn log(state: &Arc<ApiState>, call: &Call) -> Result<Response<Body>, ApiError> {
    if call.req.verb != "get" {
        return Err(ApiError::method_not_supported(
            "",
            "pods/log",
            call.req.verb,
        ));
    }
    let pod = pod_of(state, call)?;
    let container = resolve_container(&pod, call.query.get("container"))?;
    let follow = call.query.flag("follow");
    let tail = call.query.int("tailLines");
    let (ns, name) = (call.namespace().to_string(), call.name().to_string());
    let reader = if call.query.flag("previous") {
        // The previous instance has ended: nothing to follow, whatever the current state.
        state.runtime.previous_logs(ns, name, container, tail).await
    } else {
        if let Some(reason) = waiting_reason(&pod, &container) {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{}\" is waiting to start: {reason}",
                call.name()
            )));
        }
        state.runtime.logs(ns, name, container, follow, tail).await
    };
    let mut reader = reader.map_err(runtime_error)?;
    let (mut tx, resp) = respond::streaming("text/plain");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(respond::frame(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(resp)
}
