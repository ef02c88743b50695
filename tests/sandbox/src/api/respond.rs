//! Building responses: JSON objects, Status errors, and streamed bodies.

use std::convert::Infallible;

use bytes::Bytes;
use futures::channel::mpsc;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use super::status::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;

/// Sends chunks of a streamed body; dropping it ends the body.
pub type ChunkSender = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json(code: u16, value: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// JSON with a specific content type (aggregated discovery needs its own).
pub fn json_as(code: u16, value: &Value, content_type: &str) -> Response<Body> {
    let mut resp = json(code, value);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub fn text(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn error(e: &ApiError) -> Response<Body> {
    let mut resp = json(e.code, &e.body);
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A streamed body: the returned sender feeds it.
pub fn streaming(content_type: &'static str) -> (ChunkSender, Response<Body>) {
    let (tx, rx) = mpsc::channel(16);
    let mut resp = Response::new(StreamBody::new(rx).boxed());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (tx, resp)
}

pub fn frame(bytes: impl Into<Bytes>) -> Result<Frame<Bytes>, Infallible> {
    Ok(Frame::data(bytes.into()))
}

/// Add `Warning: 299 - "<text>"` headers, as the apiserver sends admission warnings.
pub fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}
