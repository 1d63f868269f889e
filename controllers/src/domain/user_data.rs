//! Which bootstrap format a data secret holds, so the deploy can treat Ignition and cloud-config
//! differently (HyperShift's secrets carry Ignition without saying so).

/// The format of bootstrap data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserDataFormat {
    /// `#cloud-config` (kubeadm bootstrap) or any other script MAAS hands to cloud-init.
    CloudConfig,
    /// An Ignition config (HyperShift, Fedora CoreOS, RHCOS).
    Ignition,
}

impl UserDataFormat {
    /// Reads a format word as CAPI bootstrap providers and our `userDataFormat` field write it;
    /// unknown words yield `None` so detection takes over.
    pub fn parse(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "cloud-config" | "cloudconfig" | "cloud-init" => Some(UserDataFormat::CloudConfig),
            "ignition" => Some(UserDataFormat::Ignition),
            _ => None,
        }
    }

    /// The word used in conditions and events.
    pub fn as_str(self) -> &'static str {
        match self {
            UserDataFormat::CloudConfig => "cloud-config",
            UserDataFormat::Ignition => "ignition",
        }
    }
}

/// The format of bootstrap data: an explicit override on the MaasMachine wins, then the
/// secret's `format` key, then the content: a JSON object with `ignition.version` is Ignition,
/// anything else is cloud-config.
pub fn detect_format(
    spec_override: Option<&str>,
    secret_format: Option<&str>,
    value: &[u8],
) -> UserDataFormat {
    spec_override
        .and_then(UserDataFormat::parse)
        .or_else(|| secret_format.and_then(UserDataFormat::parse))
        .unwrap_or_else(|| {
            if looks_like_ignition(value) {
                UserDataFormat::Ignition
            } else {
                UserDataFormat::CloudConfig
            }
        })
}

fn looks_like_ignition(value: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(value)
        .ok()
        .and_then(|doc| {
            doc.get("ignition")?
                .get("version")?
                .as_str()
                .map(str::to_owned)
        })
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IGNITION: &[u8] =
        br#"{"ignition":{"version":"3.2.0","config":{"merge":[{"source":"https://x/ignition"}]}}}"#;
    const CLOUD: &[u8] = b"#cloud-config\nruncmd: [kubeadm join]\n";

    /// Spec override, secret `format` key, secret value, expected format.
    type Row = (
        Option<&'static str>,
        Option<&'static str>,
        &'static [u8],
        UserDataFormat,
    );

    #[test]
    fn precedence_and_detection() {
        use UserDataFormat::*;
        let table: [Row; 10] = [
            (None, None, IGNITION, Ignition),
            (None, None, CLOUD, CloudConfig),
            (None, None, br#"{"ignition":{}}"#, CloudConfig),
            (None, None, br#"{"ignition":{"version":3}}"#, CloudConfig),
            (None, None, br#"[1,2]"#, CloudConfig),
            (None, None, b"", CloudConfig),
            (None, Some("ignition"), CLOUD, Ignition),
            (None, Some("cloud-config"), IGNITION, CloudConfig),
            (
                Some("cloud-config"),
                Some("ignition"),
                IGNITION,
                CloudConfig,
            ),
            (Some("nonsense"), Some("bogus"), IGNITION, Ignition),
        ];
        for (spec, secret, value, want) in table {
            assert_eq!(
                detect_format(spec, secret, value),
                want,
                "spec {spec:?} secret {secret:?} value {:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn words_round_trip() {
        for f in [UserDataFormat::CloudConfig, UserDataFormat::Ignition] {
            assert_eq!(UserDataFormat::parse(f.as_str()), Some(f));
        }
    }
}
