//! From the image a MaasMachine asks for to the `distro_series` MAAS deploys.

/// The `distro_series` deploy parameter for a MaasMachine image.
///
/// MAAS takes no `osystem` parameter at deploy, so an Ubuntu image written the way templates
/// usually do (`ubuntu/jammy`) is reduced to its series; a bare series (`jammy`) and custom image
/// names (`custom/u-2204-k-1264`, `my-image`) go through unchanged because MAAS resolves them
/// itself. Surrounding blanks are dropped; an empty image yields `None` (MAAS's default series).
pub fn distro_series(image: &str) -> Option<String> {
    let image = image.trim();
    let series = image.strip_prefix("ubuntu/").unwrap_or(image).trim();
    (!series.is_empty()).then(|| series.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_map_to_series() {
        let table = [
            ("ubuntu/jammy", Some("jammy")),
            ("ubuntu/focal", Some("focal")),
            ("jammy", Some("jammy")),
            (" noble ", Some("noble")),
            ("custom/u-2204-0-k-1264-0", Some("custom/u-2204-0-k-1264-0")),
            ("my-rhcos", Some("my-rhcos")),
            ("", None),
            ("ubuntu/", None),
        ];
        for (image, want) in table {
            assert_eq!(distro_series(image).as_deref(), want, "image {image:?}");
        }
    }
}
