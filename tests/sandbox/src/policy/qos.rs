//! A pod's QoS class, as the apiserver reports it in `status.qosClass` and as the kubelet
//! places the pod's cgroup by it: `ComputePodQOS` of k8s.io/kubernetes/pkg/apis/core/helper/qos.
//!
//! Only cpu and memory count, only positive quantities count, regular and init containers
//! count (ephemeral ones do not), and Guaranteed compares the pod's summed requests with its
//! summed limits (requests were defaulted from limits on create).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    /// The name in `status.qosClass`.
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// A quantity in units of 10^-9 (`1Gi` and `500m` alike), or None when it does not parse.
/// Finer fractions than nano are dropped; the apiserver would have rejected such values.
pub fn nano_units(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (mantissa, exponent10, multiplier): (&str, i32, i128) = match suffix {
        "" => (number, 0, 1),
        "n" => (number, -9, 1),
        "u" => (number, -6, 1),
        "m" => (number, -3, 1),
        "k" => (number, 3, 1),
        "M" => (number, 6, 1),
        "G" => (number, 9, 1),
        "T" => (number, 12, 1),
        "P" => (number, 15, 1),
        "E" => (number, 18, 1),
        "Ki" => (number, 0, 1 << 10),
        "Mi" => (number, 0, 1 << 20),
        "Gi" => (number, 0, 1 << 30),
        "Ti" => (number, 0, 1 << 40),
        "Pi" => (number, 0, 1 << 50),
        "Ei" => (number, 0, 1 << 60),
        s if s.starts_with(['e', 'E']) => (number, s[1..].parse().ok()?, 1),
        _ => return None,
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    // The value as an integer times 10^scale, then brought to 10^-9 units.
    let joined = format!("{whole}{fraction}");
    let mut value: i128 = if joined.is_empty() {
        0
    } else {
        joined.parse().ok()?
    };
    value = value.checked_mul(multiplier)?;
    let scale = exponent10 + 9 - fraction.len() as i32;
    value = if scale >= 0 {
        value.checked_mul(10i128.checked_pow(scale as u32)?)?
    } else {
        value / 10i128.checked_pow((-scale) as u32)?
    };
    Some(if negative { -value } else { value })
}

fn counted(list: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<&str, i128> {
    let mut out = BTreeMap::new();
    for (name, q) in list.into_iter().flatten() {
        if name != "cpu" && name != "memory" {
            continue;
        }
        if let Some(v) = nano_units(&q.0).filter(|v| *v > 0) {
            out.insert(name.as_str(), v);
        }
    }
    out
}

/// `ComputePodQOS` over the pod's regular and init containers.
pub fn qos_class(spec: &PodSpec) -> QosClass {
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.as_ref();
        for (name, v) in counted(r.and_then(|r| r.requests.as_ref())) {
            *requests.entry(name).or_default() += v;
        }
        let found = counted(r.and_then(|r| r.limits.as_ref()));
        if !(found.contains_key("cpu") && found.contains_key("memory")) {
            guaranteed = false;
        }
        for (name, v) in found {
            *limits.entry(name).or_default() += v;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return QosClass::BestEffort;
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
    {
        return QosClass::Guaranteed;
    }
    QosClass::Burstable
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spec(containers: Vec<Container>, init: Vec<Container>) -> PodSpec {
        PodSpec {
            containers,
            init_containers: (!init.is_empty()).then_some(init),
            ..Default::default()
        }
    }

    #[test]
    fn quantities_compare_across_suffixes() {
        assert_eq!(nano_units("500m"), nano_units("0.5"));
        assert_eq!(nano_units("1Gi"), nano_units("1073741824"));
        assert_eq!(nano_units("1k"), nano_units("1e3"));
        assert_eq!(nano_units("0"), Some(0));
        assert_eq!(nano_units("1.5Mi"), Some(1_572_864_000_000_000));
        assert_eq!(nano_units("x"), None);
        assert_eq!(nano_units("1Qi"), None);
    }

    #[test]
    fn qos_follows_compute_pod_qos() {
        let g = || {
            container(
                &[("cpu", "1"), ("memory", "1Gi")],
                &[("cpu", "1000m"), ("memory", "1024Mi")],
            )
        };
        assert_eq!(
            qos_class(&spec(vec![container(&[], &[])], vec![])),
            QosClass::BestEffort
        );
        // Zero quantities and other resources do not count.
        assert_eq!(
            qos_class(&spec(
                vec![container(
                    &[("cpu", "0"), ("ephemeral-storage", "1Gi")],
                    &[]
                )],
                vec![]
            )),
            QosClass::BestEffort
        );
        assert_eq!(qos_class(&spec(vec![g()], vec![])), QosClass::Guaranteed);
        assert_eq!(qos_class(&spec(vec![g()], vec![g()])), QosClass::Guaranteed);
        // An init container without limits makes the pod Burstable.
        assert_eq!(
            qos_class(&spec(vec![g()], vec![container(&[("cpu", "1")], &[])])),
            QosClass::Burstable
        );
        assert_eq!(
            qos_class(&spec(vec![container(&[("memory", "1Gi")], &[])], vec![])),
            QosClass::Burstable
        );
        assert_eq!(
            qos_class(&spec(
                vec![container(
                    &[("cpu", "500m"), ("memory", "1Gi")],
                    &[("cpu", "1"), ("memory", "1Gi")]
                )],
                vec![]
            )),
            QosClass::Burstable
        );
    }
}
