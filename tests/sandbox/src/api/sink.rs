//! What the node reports, turned into API writes: pod status updates and core/v1 Events,
//! as a kubelet writes them through the apiserver.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PodStatus;
use serde_json::{Value, json};

use super::defaults::NODE_NAME;
use super::kinds::{CONFIGMAPS, EVENTS, PODS, SECRETS};
use super::meta;
use super::store::Store;
use crate::runtime::{ConfigData, ConfigKind, StatusSink};

pub struct StoreSink {
    pub store: Arc<Store>,
}

impl StatusSink for StoreSink {
    fn config_data(&self, kind: ConfigKind, namespace: &str, name: &str) -> Option<ConfigData> {
        use base64::Engine;
        let object = match kind {
            ConfigKind::ConfigMap => self.store.get(&CONFIGMAPS, namespace, name)?,
            ConfigKind::Secret => self.store.get(&SECRETS, namespace, name)?,
        };
        let mut data = ConfigData::new();
        for (k, v) in object["data"].as_object().into_iter().flatten() {
            let text = v.as_str().unwrap_or_default();
            let value = match kind {
                ConfigKind::ConfigMap => text.to_string(),
                ConfigKind::Secret => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
            };
            data.insert(k.clone(), value);
        }
        Some(data)
    }

    fn update_status(&self, namespace: &str, name: &str, update: &mut dyn FnMut(&mut PodStatus)) {
        // A pod deleted meanwhile is simply gone: the node's late report is dropped.
        let _ = self.store.update(&PODS, namespace, name, |pod| {
            let mut status: PodStatus =
                serde_json::from_value(pod["status"].clone()).unwrap_or_default();
            update(&mut status);
            pod["status"] = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
            Ok(())
        });
    }

    fn event(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        reason: &str,
        message: &str,
        field_path: Option<&str>,
    ) {
        let Some(pod) = self.store.get(&PODS, namespace, name) else {
            return;
        };
        let mut involved = json!({
            "kind": "Pod",
            "namespace": namespace,
            "name": name,
            "uid": pod["metadata"]["uid"],
            "apiVersion": "v1",
            "resourceVersion": pod["metadata"]["resourceVersion"],
        });
        if let Some(fp) = field_path {
            involved["fieldPath"] = json!(fp);
        }
        let now = meta::now_rfc3339();
        // The kubelet's event correlator folds repeats into one Event with a count.
        let same = |ev: &Value| {
            ev["involvedObject"]["uid"] == involved["uid"]
                && ev["involvedObject"]["fieldPath"] == involved["fieldPath"]
                && ev["reason"] == reason
                && ev["message"] == message
                && ev["type"] == type_
        };
        let (events, _) = self.store.list(&EVENTS, Some(namespace));
        if let Some(existing) = events.iter().find(|e| same(e)) {
            let _ = self
                .store
                .update(&EVENTS, namespace, meta::name_of(existing), |ev| {
                    let count = ev["count"].as_i64().unwrap_or(1);
                    ev["count"] = json!(count + 1);
                    ev["lastTimestamp"] = json!(now);
                    Ok(())
                });
            return;
        }
        let suffix = format!("{:x}", jiff::Timestamp::now().as_nanosecond());
        let event = json!({
            "metadata": { "name": format!("{name}.{suffix}"), "namespace": namespace },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": { "component": "kubelet", "host": NODE_NAME },
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": type_,
            "eventTime": null,
            "reportingComponent": "kubelet",
            "reportingInstance": NODE_NAME,
        });
        let _ = self.store.create(&EVENTS, event);
    }
}
