//! The HTTP(S) server: accepts connections, applies faults, authenticates, routes, authorizes,
//! dispatches to the handlers and records every request in the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::audit::RequestRecord;
use super::auth::{self, UserInfo};
use super::faults::Faults;
use super::kinds::{self, PODS};
use super::respond::{self, Body};
use super::routes::{self, Query, ResourceRequest, Route};
use super::status::ApiError;
use super::{ApiState, Call, discovery, objects, openapi, openapi_v2, patch, pods, protobuf};

/// A running server; dropping it does not stop it, `stop` does.
pub struct Server {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Serve `listener` (TLS when `tls` is given) until stopped.
    pub fn spawn(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        state: Arc<ApiState>,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let acceptor = tls.map(TlsAcceptor::from);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    _ = stopped.changed() => break,
                    a = listener.accept() => a,
                };
                while connections.try_join_next().is_some() {}
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(tls), service)
                                .with_upgrades()
                                .await;
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        }
                    }
                });
            }
            connections.abort_all();
        });
        Ok(Server { addr, stop, task })
    }

    /// Ask the server to stop without waiting (for `Drop`).
    pub fn signal_stop(&self) {
        let _ = self.stop.send(true);
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn handle(
    state: Arc<ApiState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = header_str(&req, header::CONTENT_TYPE);
    let accept = header_str(&req, header::ACCEPT);
    let latency = state.faults.latency_for(&method, &path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (resp, user) = match state.faults.take_error(&path) {
        Some(e) => (respond::error(&e), String::new()),
        None => serve(&state, req).await,
    };
    // Served, and now lost: hyper closes the connection when the service fails.
    let dropped = state.faults.take_drop(&method, &path);
    state.log.push(RequestRecord {
        method,
        path,
        query,
        content_type,
        accept,
        status: if dropped { 0 } else { resp.status().as_u16() },
        duration: started.elapsed(),
        received: started,
        user,
    });
    if dropped {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "drop_response fault: the answer is not sent",
        ));
    }
    Ok(resp)
}

/// Serve one request; returns the response and the user name for the log.
async fn serve(state: &Arc<ApiState>, req: Request<Incoming>) -> (Response<Body>, String) {
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let user = match state.access.authenticate(auth_header.as_deref()) {
        Ok(u) => u,
        Err(e) => return (respond::error(&e), String::new()),
    };
    let query = Query::parse(req.uri().query());
    let route = routes::route(req.method(), req.uri().path(), &query);
    let name = user.name.clone();
    let result = match route {
        Route::NonResource(path) => {
            match state
                .access
                .authorize(&user, &auth::non_resource_attributes(req.method(), &path))
            {
                Ok(()) => non_resource(state, &path, req).await,
                Err(e) => Err(e),
            }
        }
        Route::Discovery(parts) => {
            let path = req.uri().path().to_string();
            match state
                .access
                .authorize(&user, &auth::non_resource_attributes(req.method(), &path))
            {
                Ok(()) => discovery_route(state, &parts, &header_str(&req, header::ACCEPT)),
                Err(e) => Err(e),
            }
        }
        Route::Resource(r) => resource(state, r, query, user, req).await,
    };
    (result.unwrap_or_else(|e| respond::error(&e)), name)
}

fn discovery_route(
    state: &ApiState,
    parts: &[String],
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let aggregated = |legacy: bool, version: &str| {
        let content_type =
            format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
        respond::json_as(
            200,
            &discovery::aggregated(legacy, &format!("apidiscovery.k8s.io/{version}")),
            &content_type,
        )
    };
    Ok(match parts.as_slice() {
        ["api"] => match discovery::wants_aggregated(accept) {
            Some(v) => aggregated(true, v),
            None => respond::json(200, &discovery::api_versions(&state.server_address)),
        },
        ["apis"] => match discovery::wants_aggregated(accept) {
            Some(v) => aggregated(false, v),
            None => respond::json(200, &discovery::api_group_list()),
        },
        ["api", v] => respond::json(
            200,
            &discovery::resource_list("", v).ok_or_else(ApiError::path_not_found)?,
        ),
        ["apis", g] => respond::json(
            200,
            &discovery::api_group_doc(g).ok_or_else(ApiError::path_not_found)?,
        ),
        ["apis", g, v] => respond::json(
            200,
            &discovery::resource_list(g, v).ok_or_else(ApiError::path_not_found)?,
        ),
        _ => return Err(ApiError::path_not_found()),
    })
}

async fn read_body(body: Incoming) -> Result<bytes::Bytes, ApiError> {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

async fn non_resource(
    state: &Arc<ApiState>,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    match (req.method(), path) {
        (_, "/version") => Ok(respond::json(200, &discovery::version())),
        (_, "/healthz" | "/livez" | "/readyz") => Ok(respond::text(200, "text/plain", "ok")),
        (_, "/openapi/v3") => Ok(respond::json(200, &openapi::root())),
        (_, "/openapi/v2") => Ok(respond::text(
            200,
            openapi_v2::MEDIA_TYPE,
            openapi_v2::document(),
        )),
        (_, p) if p.starts_with("/openapi/v3/") => openapi::document(&p["/openapi/v3/".len()..])
            .map(|d| respond::json(200, &d))
            .ok_or_else(ApiError::path_not_found),
        (&Method::GET, "/sandbox/faults") => Ok(respond::json(
            200,
            &serde_json::to_value(state.faults.get()).unwrap_or_default(),
        )),
        (&Method::PUT, "/sandbox/faults") => {
            let body = read_body(req.into_body()).await?;
            let text = String::from_utf8_lossy(&body);
            let faults = Faults::from_yaml(&text).map_err(ApiError::bad_request)?;
            state.faults.set(faults.clone());
            Ok(respond::json(
                200,
                &serde_json::to_value(faults).unwrap_or_default(),
            ))
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// The review APIs every authenticated user may call.
fn review(
    state: &ApiState,
    r: &ResourceRequest,
    user: &UserInfo,
    content_type: &str,
    body: &[u8],
) -> Option<Result<Response<Body>, ApiError>> {
    if r.verb != "create" {
        return None;
    }
    match (r.group.as_str(), r.resource.as_str()) {
        ("authorization.k8s.io", "selfsubjectaccessreviews") => {
            // `kubectl auth can-i` sends the review as protobuf.
            let body = if patch::media_type(content_type) == protobuf::MEDIA_TYPE {
                match protobuf::decode_access_review(body) {
                    Ok(v) => serde_json::to_vec(&v).unwrap_or_default(),
                    Err(e) => return Some(Err(e)),
                }
            } else {
                body.to_vec()
            };
            Some(
                state
                    .access
                    .access_review(user, &body)
                    .map(|review| respond::json(201, &review)),
            )
        }
        ("authentication.k8s.io", "selfsubjectreviews") => Some(Ok(respond::json(
            201,
            &auth::self_subject_review(user, body),
        ))),
        _ => None,
    }
}

async fn resource(
    state: &Arc<ApiState>,
    r: ResourceRequest,
    query: Query,
    user: UserInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE);
    let accept = header_str(&req, header::ACCEPT);
    let streaming = matches!(r.subresource.as_deref(), Some("exec" | "attach"));
    let (parts, body) = req.into_parts();
    let (body, upgrade_request) = if streaming {
        (bytes::Bytes::new(), Some(Request::from_parts(parts, body)))
    } else {
        (read_body(body).await?, None)
    };
    if let Some(answer) = review(state, &r, &user, &content_type, &body) {
        return answer;
    }
    let Some(kind) = kinds::lookup(&r.group, &r.version, &r.resource) else {
        return Err(ApiError::path_not_found());
    };
    if kind.namespaced && r.namespace.is_none() && !matches!(r.verb, "list" | "watch") {
        return Err(ApiError::path_not_found());
    }
    // Connect verbs are authorized as `create` (exec and attach by POST and GET alike).
    let mut attrs = auth::resource_attributes(&r);
    if streaming {
        attrs.verb = "create".into();
    }
    state.access.authorize(&user, &attrs)?;
    let call = Call {
        req: r,
        kind,
        query,
        content_type,
        accept,
        body,
        user,
    };
    if kind == &PODS {
        pods::handle(state, call, upgrade_request).await
    } else {
        objects::handle(state, call).await
    }
}
