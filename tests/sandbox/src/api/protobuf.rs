//! Just enough of the Kubernetes protobuf encoding to accept what kubectl sends as protobuf
//! for the kinds it creates that way (`kubectl create namespace`): the `k8s\0` envelope
//! (runtime.Unknown) and the object's `metadata` (name, generateName, namespace, labels,
//! annotations). Anything else in such a body is refused with 415, and responses are always
//! JSON (kubectl accepts `application/json` next to protobuf).

use serde_json::{Map, Value, json};

use super::status::ApiError;

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// The next field: number and, for length-delimited fields, the bytes.
    fn field(&mut self) -> Option<(u64, Option<&'a [u8]>)> {
        if self.buf.is_empty() {
            return None;
        }
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                self.varint()?;
                Some((number, None))
            }
            1 => {
                self.buf = self.buf.get(8..)?;
                Some((number, None))
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let bytes = self.buf.get(..len)?;
                self.buf = &self.buf[len..];
                Some((number, Some(bytes)))
            }
            5 => {
                self.buf = self.buf.get(4..)?;
                Some((number, None))
            }
            _ => None,
        }
    }
}

fn fields(buf: &[u8]) -> Vec<(u64, Option<&[u8]>)> {
    let mut r = Reader { buf };
    std::iter::from_fn(|| r.field()).collect()
}

fn string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn string_map(entry: &[u8]) -> (String, String) {
    let mut key = String::new();
    let mut value = String::new();
    for (n, b) in fields(entry) {
        match (n, b) {
            (1, Some(b)) => key = string(b),
            (2, Some(b)) => value = string(b),
            _ => {}
        }
    }
    (key, value)
}

fn object_meta(buf: &[u8]) -> Value {
    let mut md = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for (n, b) in fields(buf) {
        let Some(b) = b else { continue };
        match n {
            1 => {
                md.insert("name".into(), json!(string(b)));
            }
            2 => {
                md.insert("generateName".into(), json!(string(b)));
            }
            3 => {
                md.insert("namespace".into(), json!(string(b)));
            }
            11 => {
                let (k, v) = string_map(b);
                labels.insert(k, json!(v));
            }
            12 => {
                let (k, v) = string_map(b);
                annotations.insert(k, json!(v));
            }
            _ => {}
        }
    }
    if !labels.is_empty() {
        md.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        md.insert("annotations".into(), Value::Object(annotations));
    }
    Value::Object(md)
}

/// The envelope's type (apiVersion, kind) and raw object bytes.
fn unwrap_envelope(body: &[u8]) -> Result<((String, String), &[u8]), ApiError> {
    let unsupported = || ApiError::unsupported_media_type(MEDIA_TYPE);
    let envelope = body.strip_prefix(b"k8s\0").ok_or_else(unsupported)?;
    let mut raw = None;
    let mut type_meta = (String::new(), String::new());
    for (n, b) in fields(envelope) {
        match (n, b) {
            (1, Some(tm)) => {
                for (m, v) in fields(tm) {
                    match (m, v) {
                        (1, Some(v)) => type_meta.0 = string(v),
                        (2, Some(v)) => type_meta.1 = string(v),
                        _ => {}
                    }
                }
            }
            (2, Some(r)) => raw = Some(r),
            _ => {}
        }
    }
    Ok((type_meta, raw.ok_or_else(unsupported)?))
}

/// Strings of a message by field number (the attribute messages have only strings).
fn strings(buf: &[u8], names: &[(u64, &str)]) -> Value {
    let mut out = Map::new();
    for (n, b) in fields(buf) {
        if let (Some(b), Some((_, name))) = (b, names.iter().find(|(m, _)| *m == n)) {
            out.insert((*name).into(), json!(string(b)));
        }
    }
    Value::Object(out)
}

/// A SelfSubjectAccessReview as `kubectl auth can-i` sends it (authorization/v1
/// generated.proto: spec=2 {resourceAttributes=1, nonResourceAttributes=2}).
pub fn decode_access_review(body: &[u8]) -> Result<Value, ApiError> {
    let ((api_version, kind), raw) = unwrap_envelope(body)?;
    if kind != "SelfSubjectAccessReview" {
        return Err(ApiError::unsupported_media_type(MEDIA_TYPE));
    }
    let mut spec = Map::new();
    for (n, b) in fields(raw) {
        if let (2, Some(spec_bytes)) = (n, b) {
            for (m, a) in fields(spec_bytes) {
                match (m, a) {
                    (1, Some(a)) => {
                        let names = [
                            (1, "namespace"),
                            (2, "verb"),
                            (3, "group"),
                            (4, "version"),
                            (5, "resource"),
                            (6, "subresource"),
                            (7, "name"),
                        ];
                        spec.insert("resourceAttributes".into(), strings(a, &names));
                    }
                    (2, Some(a)) => {
                        let names = [(1, "path"), (2, "verb")];
                        spec.insert("nonResourceAttributes".into(), strings(a, &names));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(json!({ "apiVersion": api_version, "kind": kind, "metadata": {}, "spec": spec }))
}

/// Decode a protobuf body of `kind` (only Namespace is supported).
pub fn decode(body: &[u8], kind: &str) -> Result<Value, ApiError> {
    let unsupported = || ApiError::unsupported_media_type(MEDIA_TYPE);
    let (type_meta, raw) = unwrap_envelope(body)?;
    if kind != "Namespace" || type_meta.1 != "Namespace" {
        return Err(unsupported());
    }
    let mut object = json!({ "apiVersion": type_meta.0, "kind": type_meta.1 });
    for (n, b) in fields(raw) {
        if let (1, Some(b)) = (n, b) {
            object["metadata"] = object_meta(b);
        }
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(field << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_namespace_as_kubectl_create_sends_it() {
        let label = [ld(1, b"team"), ld(2, b"a")].concat();
        let meta = [ld(1, b"r"), ld(11, &label)].concat();
        let raw = [ld(1, &meta), ld(2, b""), ld(3, b"")].concat();
        let tm = [ld(1, b"v1"), ld(2, b"Namespace")].concat();
        let body = [b"k8s\0".to_vec(), ld(1, &tm), ld(2, &raw)].concat();
        let v = decode(&body, "Namespace").unwrap();
        assert_eq!(v["metadata"]["name"], "r");
        assert_eq!(v["metadata"]["labels"]["team"], "a");
        assert!(decode(&body, "Pod").is_err());
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
        let ra = [
            ld(1, b"default"),
            ld(2, b"patch"),
            ld(5, b"pods"),
            ld(6, b"ephemeralcontainers"),
        ]
        .concat();
        let raw = [ld(1, b""), ld(2, &ld(1, &ra))].concat();
        let tm = [
            ld(1, b"authorization.k8s.io/v1"),
            ld(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [b"k8s\0".to_vec(), ld(1, &tm), ld(2, &raw)].concat();
        let v = decode_access_review(&body).unwrap();
        assert_eq!(
            v["spec"]["resourceAttributes"]["subresource"],
            "ephemeralcontainers"
        );
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "patch");
    }
}
