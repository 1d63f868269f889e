//! The kubeadm configuration inside a deploy's user data, as cloud-init would write it: the
//! cloud-config Cluster API's kubeadm bootstrap provider renders carries it in `write_files`
//! (`/run/kubeadm/kubeadm.yaml` for `kubeadm init`, `/run/kubeadm/kubeadm-join-config.yaml` for
//! `kubeadm join`; older releases wrote them under `/tmp`), plain or in one of cloud-init's
//! encodings. Pure; anything else (Ignition, a script, junk) has none.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// Where the kubeadm bootstrap provider writes the configuration, the init one first.
const KUBEADM_PATHS: [&str; 4] = [
    "/run/kubeadm/kubeadm.yaml",
    "/run/kubeadm/kubeadm-join-config.yaml",
    "/tmp/kubeadm.yaml",
    "/tmp/kubeadm-join-config.yaml",
];

/// The jinja variables cloud-init's MAAS datasource renders to the machine's host name.
const HOSTNAME_VARIABLES: [&str; 3] = [
    "{{ ds.meta_data.local_hostname }}",
    "{{ ds.meta_data.hostname }}",
    "{{ v1.local_hostname }}",
];

/// The kubeadm configuration file of `user_data` (decoded as MAAS stores it), decoded as
/// cloud-init writes it, with the host-name templates rendered for `hostname`.
pub fn kubeadm_config(user_data: &str, hostname: &str) -> Option<String> {
    let doc = cloud_config(user_data, hostname)?;
    let files = doc.get("write_files")?.as_array()?;
    KUBEADM_PATHS.iter().find_map(|path| {
        let file = files.iter().find(|f| f["path"] == *path)?;
        let bytes = decode(&file["content"], file["encoding"].as_str().unwrap_or(""))?;
        String::from_utf8(bytes).ok()
    })
}

/// The cloud-config document, after the jinja header cloud-init strips and the host-name
/// variables it renders.
fn cloud_config(user_data: &str, hostname: &str) -> Option<Value> {
    let mut body = user_data.trim_start();
    if body.starts_with("## template:") {
        body = body.split_once('\n')?.1;
    }
    if !body.starts_with("#cloud-config") {
        return None;
    }
    let body = HOSTNAME_VARIABLES
        .iter()
        .fold(body.to_string(), |text, variable| {
            text.replace(variable, hostname)
        });
    // A `!!binary` scalar the reader turns into text unless it is no UTF-8 (gzip never is):
    // such a document is read again with those scalars left as their base64.
    let binary_as_base64 = serde_saphyr::options! { ignore_binary_tag_for_string: true };
    serde_saphyr::from_str::<Value>(&body)
        .or_else(|_| serde_saphyr::from_str_with_options::<Value>(&body, binary_as_base64))
        .ok()
        .filter(Value::is_object)
}

/// A `write_files` content in cloud-init's `encoding`: `b64`/`base64`, `gz`/`gzip` (the bytes of
/// a `!!binary` scalar, here its base64), `gz+b64` and its spellings, else plain text.
fn decode(content: &Value, encoding: &str) -> Option<Vec<u8>> {
    let text = content.as_str()?;
    match encoding.trim().to_ascii_lowercase().as_str() {
        "b64" | "base64" => base64(text),
        "gz" | "gzip" | "gz+b64" | "gz+base64" | "gzip+b64" | "gzip+base64" => {
            gunzip(&base64(text)?)
        }
        _ => Some(text.as_bytes().to_vec()),
    }
}

/// A gzip stream's content; `None` when it is not one.
fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Base64 as cloud-init reads it: line breaks and spaces ignored.
fn base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOIN: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n\
        nodeRegistration:\n  name: '{{ ds.meta_data.local_hostname }}'\n  taints: []\n";

    fn indent(text: &str) -> String {
        text.lines().map(|l| format!("      {l}\n")).collect()
    }

    /// User data shaped as the kubeadm bootstrap provider renders it.
    fn rendered(path: &str, encoding: Option<&str>, content: &str) -> String {
        let encoding = encoding
            .map(|e| format!("    encoding: \"{e}\"\n"))
            .unwrap_or_default();
        format!(
            "## template: jinja\n#cloud-config\nwrite_files:\n-   path: /etc/other\n    \
             content: |\n      other\n-   path: {path}\n{encoding}    owner: root:root\n    \
             permissions: '0640'\n    content: |\n{}runcmd:\n  - kubeadm join --config {path}\n",
            indent(content)
        )
    }

    fn gzipped_join() -> Vec<u8> {
        // Python's `gzip.compress` of JOIN with `n1` for the quoted host-name variable.
        STANDARD
            .decode(concat!(
                "H4sIAAAAAAACAyXKMQqAMAxA0b2nyAkqgoNkdXN0cBGHSKOEYiJt9PwKbp/Hp0tmLlVMEfK9MaUz5r5GseZpN3bq",
                "QhZNCKOJDqa7HHch//6glnjiQ6r/gAFA6WQEbb90EvWKsKzhBSH1cFxlAAAA"
            ))
            .unwrap()
    }

    #[test]
    fn the_plain_join_configuration_with_the_host_name_rendered() {
        let data = rendered("/run/kubeadm/kubeadm-join-config.yaml", None, JOIN);
        let config = kubeadm_config(&data, "node-007").unwrap();
        assert!(config.contains("kind: JoinConfiguration"), "{config}");
        assert!(config.contains("name: 'node-007'"), "{config}");
    }

    #[test]
    fn the_init_configuration_goes_first() {
        let join = rendered("/tmp/kubeadm-join-config.yaml", None, JOIN);
        let both = join.replace(
            "runcmd:",
            "-   path: /run/kubeadm/kubeadm.yaml\n    content: |\n      kind: InitConfiguration\nruncmd:",
        );
        assert_eq!(
            kubeadm_config(&both, "h").as_deref(),
            Some("kind: InitConfiguration\n")
        );
        assert!(
            kubeadm_config(&join, "h")
                .unwrap()
                .contains("JoinConfiguration")
        );
    }

    #[test]
    fn base64_and_gzip_encodings() {
        let path = "/run/kubeadm/kubeadm-join-config.yaml";
        let b64 = STANDARD.encode(JOIN);
        let wrapped: String = b64
            .as_bytes()
            .chunks(40)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        for encoding in ["b64", "base64"] {
            let config = kubeadm_config(&rendered(path, Some(encoding), &wrapped), "h").unwrap();
            assert!(config.contains("JoinConfiguration"), "{encoding}: {config}");
        }
        let gz = STANDARD.encode(gzipped_join());
        for encoding in ["gz+b64", "gzip+base64", "GZ+BASE64"] {
            let config = kubeadm_config(&rendered(path, Some(encoding), &gz), "h").unwrap();
            assert!(config.contains("name: n1"), "{encoding}: {config}");
        }
        let binary = format!(
            "#cloud-config\nwrite_files:\n- path: {path}\n  encoding: gzip\n  content: !!binary |\n    {gz}\n"
        );
        let config = kubeadm_config(&binary, "h").unwrap();
        assert!(config.contains("name: n1"), "{config}");
        // A `!!binary` of text without an encoding is that text.
        let text = format!(
            "#cloud-config\nwrite_files:\n- path: {path}\n  content: !!binary |\n    {b64}\n"
        );
        assert_eq!(kubeadm_config(&text, "h").as_deref(), Some(JOIN));
    }

    #[test]
    fn no_configuration_in_ignition_scripts_or_junk() {
        let ignition = r#"{"ignition":{"version":"3.2.0","config":{"merge":[{"source":"https://x/ignition"}]}}}"#;
        let path = "/run/kubeadm/kubeadm.yaml";
        for data in [
            ignition.to_string(),
            "#!/bin/bash\nkubeadm join\n".to_string(),
            "#cloud-config\nruncmd: [true]\n".to_string(),
            "#cloud-config\nwrite_files: 7\n".to_string(),
            "#cloud-config\n: : [\n".to_string(),
            rendered(path, Some("b64"), "!!! not base64"),
            rendered(path, Some("gz+b64"), &STANDARD.encode("not gzip")),
            String::new(),
        ] {
            assert_eq!(kubeadm_config(&data, "h"), None, "{data}");
        }
    }
}
