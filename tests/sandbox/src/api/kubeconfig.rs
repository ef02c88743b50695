//! The kubeconfig a sandbox writes for its clients: one cluster (the CA's data inline), one
//! token user, context `sandbox`, namespace `default`.

use base64::Engine;

/// Render a kubeconfig for `server` trusting `ca_pem` (none for plain http) with `token`.
pub fn render(server: &str, ca_pem: Option<&str>, token: &str, user: &str) -> String {
    let cluster = match ca_pem {
        Some(pem) => format!(
            "    server: {server}\n    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => format!("    server: {server}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n{cluster}\
         users:\n- name: {user}\n  user:\n    token: {token}\n\
         contexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: {user}\n    namespace: default\n\
         current-context: sandbox\npreferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_is_valid_yaml_with_the_ca_inline() {
        let text = render("https://127.0.0.1:6443", Some("PEM"), "tok", "admin");
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(v["current-context"], "sandbox");
    }
}
