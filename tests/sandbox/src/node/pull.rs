//! Image "pulls": a lookup in the local image store dressed as a kubelet pull, with the
//! kubelet's events and the pull faults (delay, failure) applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;

use super::images::{Image, normalize_reference};
use super::pod::PodRuntime;
use super::{Node, lock};

/// Go's `time.Duration` formatting, roughly: `12.345ms`, `2.615s`.
fn go_duration(d: Duration) -> String {
    let (value, unit) = if d < Duration::from_millis(1) {
        (d.as_secs_f64() * 1e6, "µs")
    } else if d < Duration::from_secs(1) {
        (d.as_secs_f64() * 1000.0, "ms")
    } else {
        (d.as_secs_f64(), "s")
    };
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

/// Whether `reference` parses as an image reference (lower-case repository, no spaces).
fn valid_reference(reference: &str) -> bool {
    if reference.is_empty() || reference.chars().any(|c| c.is_whitespace()) {
        return false;
    }
    let name = reference.split('@').next().unwrap_or("");
    let repo = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    // The domain part may carry upper case in theory; kubelets reject upper-case paths.
    let path = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    };
    !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
}

impl Node {
    /// `Err(None)`: the pod is being stopped. `Err(Some((reason, message)))`: the waiting
    /// reason and message to report.
    pub(super) async fn pull(
        &self,
        p: &PodRuntime,
        field: Option<&str>,
        c: &Container,
    ) -> Result<Arc<Image>, Option<(String, String)>> {
        let image = c.image.clone().unwrap_or_default();
        if !valid_reference(&image) {
            let message = format!(
                "Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format"
            );
            self.event(p, "Warning", "InspectFailed", &message, field);
            self.event(p, "Warning", "Failed", "Error: InvalidImageName", field);
            return Err(Some(("InvalidImageName".into(), message)));
        }
        let normalized = normalize_reference(&image);
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            let last = normalized.rsplit('/').next().unwrap_or("");
            if last.ends_with(":latest") {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let present = lock(&self.pulled).contains(&normalized);
        if policy != "Always"
            && present
            && let Some(img) = self.images.get(&image)
        {
            self.event(
                p,
                "Normal",
                "Pulled",
                &format!("Container image {image:?} already present on machine"),
                field,
            );
            return Ok(img);
        }
        if policy == "Never" {
            let message =
                format!("Container image {image:?} is not present with pull policy of Never");
            self.event(p, "Warning", "ErrImageNeverPull", &message, field);
            self.event(p, "Warning", "Failed", "Error: ErrImageNeverPull", field);
            return Err(Some(("ErrImageNeverPull".into(), message)));
        }

        self.event(
            p,
            "Normal",
            "Pulling",
            &format!("Pulling image {image:?}"),
            field,
        );
        let started = Instant::now();
        let (delay, failing) = {
            let faults = self.faults.read().unwrap_or_else(|e| e.into_inner());
            let failing = faults
                .fail_pulls
                .iter()
                .any(|f| f == &image || normalize_reference(f) == normalized);
            (faults.pull_delay, failing)
        };
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = p.cancel.cancelled() => return Err(None),
            }
        }
        match self.images.get(&image).filter(|_| !failing) {
            Some(img) => {
                lock(&self.pulled).insert(normalized);
                let took = go_duration(started.elapsed());
                self.event(
                    p,
                    "Normal",
                    "Pulled",
                    &format!(
                        "Successfully pulled image {image:?} in {took} ({took} including waiting). Image size: {} bytes.",
                        img.size
                    ),
                    field,
                );
                Ok(img)
            }
            None => {
                let message = format!(
                    "rpc error: code = NotFound desc = failed to pull and unpack image {normalized:?}: failed to resolve reference {normalized:?}: {normalized}: not found"
                );
                self.event(
                    p,
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image {image:?}: {message}"),
                    field,
                );
                self.event(p, "Warning", "Failed", "Error: ErrImagePull", field);
                Err(Some(("ErrImagePull".into(), message)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked_like_the_kubelet() {
        assert!(valid_reference("sandbox.local/busybox:latest"));
        assert!(valid_reference("busybox"));
        assert!(valid_reference("localhost:5000/a/b@sha256:00"));
        assert!(!valid_reference("Busybox"));
        assert!(!valid_reference("bad image"));
        assert!(!valid_reference(""));
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(go_duration(Duration::from_micros(12_500)), "12.5ms");
        assert_eq!(go_duration(Duration::from_millis(2615)), "2.615s");
        assert_eq!(go_duration(Duration::from_micros(13)), "13µs");
    }
}
