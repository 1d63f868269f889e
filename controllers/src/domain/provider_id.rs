//! The `providerID` of a MAAS machine, the key CAPI matches Nodes with.

use thiserror::Error;

/// The scheme prefix every provider ID of ours starts with.
pub const SCHEME: &str = "maas://";

/// Builds `maas:///<zone>/<system_id>`: the three slashes (empty host) are what the Go provider
/// and existing Nodes use, so both spellings of a cluster match.
pub fn build(zone: &str, system_id: &str) -> String {
    format!("{SCHEME}/{zone}/{system_id}")
}

/// Why a provider ID could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProviderIdError {
    /// The value does not start with `maas://`.
    #[error("provider ID {0:?} does not start with {SCHEME}")]
    WrongScheme(String),
    /// Nothing follows the last `/`.
    #[error("provider ID {0:?} names no system id")]
    NoSystemId(String),
}

/// The system id in a provider ID: the part after the last `/`, which accepts both
/// `maas:///zone/id` and the older `maas://id` spellings.
pub fn parse_system_id(provider_id: &str) -> Result<&str, ProviderIdError> {
    let rest = provider_id
        .strip_prefix(SCHEME)
        .ok_or_else(|| ProviderIdError::WrongScheme(provider_id.to_string()))?;
    let id = rest.rsplit('/').next().unwrap_or_default();
    if id.is_empty() {
        return Err(ProviderIdError::NoSystemId(provider_id.to_string()));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_three_slashes() {
        assert_eq!(build("az1", "abc123"), "maas:///az1/abc123");
    }

    #[test]
    fn parses_the_part_after_the_last_slash() {
        let table = [
            ("maas:///az1/abc123", Ok("abc123")),
            ("maas://abc123", Ok("abc123")),
            ("maas:///default/x7y8", Ok("x7y8")),
            (
                "maas:///az1/",
                Err(ProviderIdError::NoSystemId("maas:///az1/".into())),
            ),
            (
                "aws:///us-east-1/i-1",
                Err(ProviderIdError::WrongScheme("aws:///us-east-1/i-1".into())),
            ),
            ("", Err(ProviderIdError::WrongScheme(String::new()))),
        ];
        for (input, want) in table {
            assert_eq!(parse_system_id(input), want, "{input}");
        }
        assert_eq!(parse_system_id(&build("z", "id9")), Ok("id9"));
    }
}
