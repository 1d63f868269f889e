//! Turns the endpoint a user writes into the API base URL every request is built on.

use url::Url;

use crate::error::MaasError;

/// The path suffix of MAAS API version 2.0, the only version this client speaks.
const API_SUFFIX: &str = "api/2.0/";

/// Normalises a MAAS endpoint to the API 2.0 base URL, always ending in `/api/2.0/`.
///
/// Users copy the endpoint from different places (the MAAS UI shows `http://host:5240/MAAS/`,
/// clusterctl variables often hold `http://host:5240/MAAS`, some tools want the full API path), so
/// all of these are accepted and give the same base. A bare host gets the default `/MAAS` prefix.
pub fn normalize_endpoint(endpoint: &str) -> Result<Url, MaasError> {
    let trimmed = endpoint.trim();
    let mut url = Url::parse(trimmed).map_err(|err| {
        MaasError::Config(format!(
            "MAAS endpoint is not a valid URL ({err}); expected e.g. http://maas.example:5240/MAAS"
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(MaasError::Config(format!(
            "MAAS endpoint scheme must be http or https, not {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MaasError::Config("MAAS endpoint has no host".to_owned()));
    }
    url.set_query(None);
    url.set_fragment(None);
    // Empty segments (`//MAAS`, `MAAS//`) are dropped: they come from joining strings by hand.
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let path = if segments.is_empty() {
        String::new()
    } else {
        format!("/{}", segments.join("/"))
    };
    let base_path = if path.ends_with("/api/2.0") {
        format!("{path}/")
    } else if path.is_empty() {
        format!("/MAAS/{API_SUFFIX}")
    } else {
        format!("{path}/{API_SUFFIX}")
    };
    url.set_path(&base_path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_common_spellings_give_the_same_base() {
        let expected = "http://maas.example:5240/MAAS/api/2.0/";
        for input in [
            "http://maas.example:5240/MAAS",
            "http://maas.example:5240/MAAS/",
            "http://maas.example:5240/MAAS/api/2.0",
            "http://maas.example:5240/MAAS/api/2.0/",
            " http://maas.example:5240/MAAS// ",
            "http://maas.example:5240",
            "http://maas.example:5240/",
            "http://maas.example:5240//MAAS",
        ] {
            assert_eq!(
                normalize_endpoint(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn keeps_a_custom_prefix_and_https() {
        assert_eq!(
            normalize_endpoint("https://proxy.example/maas-prod/MAAS")
                .unwrap()
                .as_str(),
            "https://proxy.example/maas-prod/MAAS/api/2.0/"
        );
    }

    #[test]
    fn drops_query_and_fragment() {
        assert_eq!(
            normalize_endpoint("http://h/MAAS/?x=1#f").unwrap().as_str(),
            "http://h/MAAS/api/2.0/"
        );
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert!(matches!(
            normalize_endpoint("ftp://h/MAAS"),
            Err(MaasError::Config(_))
        ));
        assert!(matches!(
            normalize_endpoint("not a url"),
            Err(MaasError::Config(_))
        ));
        assert!(matches!(normalize_endpoint(""), Err(MaasError::Config(_))));
    }
}
