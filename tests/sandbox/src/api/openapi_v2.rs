//! `/openapi/v2` as kubectl ≤ 1.27 reads it: a protobuf-encoded (gnostic `openapi.v2.Document`)
//! Swagger document with, per kind, the PATCH operation, its
//! `x-kubernetes-group-version-kind` extension and the `fieldValidation` query parameter.
//! That is what kubectl's QueryParamVerifier looks for before `create -f` and `apply`
//! (k8s.io/cli-runtime/pkg/resource/query_param_verifier.go); without it they fail.
//! Field numbers from gnostic's openapiv2/OpenAPIv2.proto.

use super::discovery::GIT_VERSION;
use super::kinds::{self, Kind};

/// Go's mime parser rejects the `@` of the media type clients ask for, so the body goes out
/// as plain octets (client-go reads the raw bytes either way).
pub const MEDIA_TYPE: &str = "application/octet-stream";

fn varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (strings and messages).
fn ld(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    varint(((field << 3) | 2) as usize, &mut out);
    varint(bytes.len(), &mut out);
    out.extend_from_slice(bytes);
    out
}

fn query_param(name: &str) -> Vec<u8> {
    // QueryParameterSubSchema{in=2, name=4, type=6} in NonBodyParameter{query=3} in
    // Parameter{non_body=2} in ParametersItem{parameter=1}.
    let sub = [ld(2, b"query"), ld(4, name.as_bytes()), ld(6, b"string")].concat();
    ld(1, &ld(2, &ld(3, &sub)))
}

fn operation(kind: &Kind, id: &str) -> Vec<u8> {
    let gvk_yaml = format!(
        "group: \"{}\"\nkind: {}\nversion: {}\n",
        kind.group, kind.kind, kind.version
    );
    // NamedAny{name=1, value=2 Any{yaml=2}}
    let extension = [
        ld(1, b"x-kubernetes-group-version-kind"),
        ld(2, &ld(2, gvk_yaml.as_bytes())),
    ]
    .concat();
    let mut op = ld(5, id.as_bytes());
    for p in ["dryRun", "fieldManager", "fieldValidation"] {
        op.extend(ld(8, &query_param(p)));
    }
    op.extend(ld(13, &extension));
    op
}

/// The whole document.
pub fn document() -> Vec<u8> {
    let mut paths = Vec::new();
    for k in kinds::STORED {
        let base = if k.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}",
                k.group_version_path(),
                k.resource
            )
        } else {
            format!("{}/{}", k.group_version_path(), k.resource)
        };
        // PathItem{post=4} and PathItem{patch=8}, each in NamedPathItem{name=1, value=2}.
        let collection = ld(4, &operation(k, &format!("create{}", k.kind)));
        let item = ld(8, &operation(k, &format!("patch{}", k.kind)));
        paths.extend(ld(
            2,
            &[ld(1, base.as_bytes()), ld(2, &collection)].concat(),
        ));
        paths.extend(ld(
            2,
            &[ld(1, format!("{base}/{{name}}").as_bytes()), ld(2, &item)].concat(),
        ));
    }
    let info = [ld(1, b"Kubernetes"), ld(2, GIT_VERSION.as_bytes())].concat();
    [ld(1, b"2.0"), ld(2, &info), ld(8, &paths)].concat()
}
