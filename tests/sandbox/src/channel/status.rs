//! The outcome of a session as the error channel (3) carries it: a JSON `metav1.Status` from
//! v4 on, plain text before, worded by whichever upstream server the protocol selects.

use serde::Serialize;

use super::{Operation, Protocol};
use crate::runtime::ProcessExit;

/// `metav1.Status` as Go's `encoding/json` writes it: field order and `omitempty` as upstream,
/// so the frame is byte-for-byte what a real cluster sends.
#[derive(Debug, Serialize)]
struct WireStatus {
    metadata: Empty,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<WireDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Debug, Serialize)]
struct Empty {}

#[derive(Debug, Serialize)]
struct WireDetails {
    causes: Vec<WireCause>,
}

#[derive(Debug, Serialize)]
struct WireCause {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
}

impl WireStatus {
    fn success() -> WireStatus {
        WireStatus {
            metadata: Empty {},
            status: "Success",
            message: None,
            reason: None,
            details: None,
            code: None,
        }
    }

    /// `apierrors.NewInternalError(err)` (k8s.io/apimachinery/pkg/api/errors/errors.go).
    fn internal(err: String) -> WireStatus {
        WireStatus {
            metadata: Empty {},
            status: "Failure",
            message: Some(format!("Internal error occurred: {err}")),
            reason: Some("InternalError"),
            details: Some(WireDetails {
                causes: vec![WireCause {
                    reason: None,
                    message: err,
                }],
            }),
            code: Some(500),
        }
    }

    /// `NonZeroExitCodeReason` with an `ExitCode` cause, as kubelet's `ServeExec` and the
    /// apiserver's `codeExitToStatusError` build it.
    fn non_zero_exit(code: i32, err: String) -> WireStatus {
        WireStatus {
            metadata: Empty {},
            status: "Failure",
            message: Some(format!("command terminated with non-zero exit code: {err}")),
            reason: Some("NonZeroExitCode"),
            details: Some(WireDetails {
                causes: vec![WireCause {
                    reason: Some("ExitCode"),
                    message: code.to_string(),
                }],
            }),
            code: None,
        }
    }
}

/// The payload of the final channel-3 frame (without the channel byte), or `None` when nothing
/// is sent (success before v4).
///
/// - exec, exit 0, and attach: `{"metadata":{},"status":"Success"}`.
/// - exec, non-zero exit, v4 (kubelet `ServeExec` wrapping containerd's
///   `error executing command %v, exit code %d`):
///   `command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7`.
/// - exec, non-zero exit, v5 (the translator re-wraps what client-go's `errorDecoderV4` made
///   of the kubelet's status): `command terminated with non-zero exit code: command terminated
///   with exit code 7`.
/// - start failure: kubelet's `NewInternalError("error executing command in container: " + msg)`
///   (`error attaching to container: ` for attach); v5 wraps that once more in
///   `NewInternalError`, hence the doubled `Internal error occurred: Internal error occurred:`
///   that kubectl prints against 1.31+ clusters.
/// - v1..v3: the Status message as plain text, nothing on success (`v1WriteStatusFunc`).
pub fn exit_status(protocol: Protocol, op: Operation<'_>, exit: &ProcessExit) -> Option<Vec<u8>> {
    let status = match (op, exit) {
        (_, ProcessExit::StartFailed(msg)) => {
            let err = match op {
                Operation::Exec { .. } => format!("error executing command in container: {msg}"),
                Operation::Attach => format!("error attaching to container: {msg}"),
            };
            let kubelet = WireStatus::internal(err);
            if protocol == Protocol::V5 {
                WireStatus::internal(kubelet.message.unwrap_or_default())
            } else {
                kubelet
            }
        }
        (Operation::Attach, _) => WireStatus::success(),
        (Operation::Exec { command }, exit) => match exit.code() {
            0 => WireStatus::success(),
            code if protocol == Protocol::V5 => {
                // client-go parses the cause with ParseUint(.., 8): the translator only ever
                // sees codes 1..=255 from the kubelet.
                WireStatus::non_zero_exit(code, format!("command terminated with exit code {code}"))
            }
            code => WireStatus::non_zero_exit(
                code,
                format!(
                    "error executing command {}, exit code {code}",
                    go_slice(command)
                ),
            ),
        },
    };
    if protocol.json_status() {
        Some(serde_json::to_vec(&status).expect("a Status always serializes"))
    } else if status.status == "Success" {
        None
    } else {
        status.message.map(String::into_bytes)
    }
}

/// Go's `%v` of a `[]string`: `[sh -c exit 7]`.
fn go_slice(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}
