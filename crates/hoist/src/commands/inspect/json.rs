//! `hoist inspect --json`: the summary in `skopeo inspect`'s shape, for scripts.

use hoist_oci::{Digest, RawJson};

use super::{Inspected, artifact_kind};
use crate::transport::Location;

/// What `inspect --json` prints, in `skopeo inspect`'s shape so scripts written against it
/// keep working: `Digest` is what the name points at (an index's digest for a multi-platform
/// image, as skopeo reports it), the rest describes the image picked for the platform.
///
/// `Name` is skopeo's: the repository a registry, daemon or archive image is named by
/// (`docker.io/library/alpine`, no tag), left out for a layout, which names none.
/// `DockerVersion` is the config's `docker_version`, empty when it has none.
///
/// An artifact (which skopeo refuses to inspect) has no platform: `Architecture` and `Os` are
/// `null`, never an empty string a script could take for a value, and `ArtifactType` (present
/// for artifacts only) says what it is.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonSummary<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    digest: &'a Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<&'a str>,
    created: Option<&'a str>,
    docker_version: String,
    architecture: Option<&'a str>,
    os: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    labels: Option<&'a std::collections::BTreeMap<String, String>>,
    env: Option<&'a [String]>,
    layers: Vec<&'a Digest>,
    layers_data: Vec<JsonLayer<'a>>,
}

/// One entry of `LayersData`, as skopeo names its fields.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonLayer<'a> {
    #[serde(rename = "MIMEType")]
    mime_type: &'a str,
    digest: &'a Digest,
    size: u64,
    annotations: Option<&'a std::collections::BTreeMap<String, String>>,
}

/// The JSON summary (pretty-printed, ends with a newline). Values are the image's own: JSON
/// escapes control characters, and a script wants the exact strings.
pub fn summary(image: &Inspected<'_>) -> String {
    let m = image.manifest.value();
    // An artifact has no platform, runtime settings or creation time: those are null.
    let c = image.config.map(RawJson::value);
    let runtime = c.and_then(|c| c.config.as_ref());
    let summary = JsonSummary {
        name: repository_name(image.name),
        digest: image
            .index
            .map_or(&image.descriptor.digest, |index| index.digest()),
        artifact_type: match c {
            Some(_) => None,
            None => Some(artifact_kind(m).as_str()),
        },
        created: c.and_then(|c| c.created.as_deref()),
        docker_version: image.config.map(docker_version).unwrap_or_default(),
        architecture: c.map(|c| c.architecture.as_str()),
        os: c.map(|c| c.os.as_str()),
        variant: c.and_then(|c| c.variant.as_deref()),
        labels: runtime.and_then(|r| r.labels.as_ref()),
        env: runtime.and_then(|r| r.env.as_deref()),
        layers: m.layers.iter().map(|l| &l.digest).collect(),
        layers_data: m
            .layers
            .iter()
            .map(|l| JsonLayer {
                mime_type: l.media_type.as_str(),
                digest: &l.digest,
                size: l.size,
                annotations: Some(&l.annotations).filter(|a| !a.is_empty()),
            })
            .collect(),
    };
    // Serializing strings, digests and maps cannot fail.
    let mut out = serde_json::to_string_pretty(&summary).unwrap_or_default();
    out.push('\n');
    out
}

/// The repository `shown` (a location as the user typed it) names, as skopeo's `Name`: a
/// registry's, or a daemon's or archive's image name; `None` for a layout, an image ID or an
/// archive's only image.
fn repository_name(shown: &str) -> Option<String> {
    let named = |s: &str| {
        (!crate::transport::is_image_id(s))
            .then(|| hoist_oci::Reference::parse(s).ok())
            .flatten()
            .map(|r| r.name())
    };
    match Location::parse(shown).ok()? {
        Location::Registry { reference } => Some(reference.name()),
        Location::DockerDaemon { name } => named(&name),
        Location::DockerArchive {
            reference: Some(r), ..
        } => named(&r),
        _ => None,
    }
}

/// The config's `docker_version` (set by the Docker builder), empty when there is none.
fn docker_version(config: &RawJson<hoist_oci::ImageConfig>) -> String {
    serde_json::from_slice::<serde_json::Value>(config.bytes())
        .ok()
        .and_then(|v| v.get("docker_version")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::inspect::tests::{helm_chart, index_of, sample};
    use hoist_oci::MediaType;

    #[test]
    fn name_is_the_repository_as_skopeo_gives_it() {
        let id = "a".repeat(64);
        for (shown, expected) in [
            (
                "docker://r.example/app:1".to_string(),
                Some("r.example/app"),
            ),
            (
                format!("docker://alpine@sha256:{id}"),
                Some("docker.io/library/alpine"),
            ),
            (
                "docker-daemon:myapp:1.0".into(),
                Some("docker.io/library/myapp"),
            ),
            (format!("docker-daemon:sha256:{id}"), None),
            (format!("docker-daemon:{}", &id[..12]), None),
            (
                "docker-archive:/a.tar:team/app:2".into(),
                Some("docker.io/team/app"),
            ),
            ("docker-archive:/a.tar".into(), None),
            ("oci:/l:1".into(), None),
        ] {
            assert_eq!(repository_name(&shown).as_deref(), expected, "{shown}");
        }
    }

    #[test]
    fn docker_version_is_the_configs_own_or_empty() {
        let with = RawJson::parse(
            br#"{"docker_version":"20.10.24","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
        )
        .expect("config");
        assert_eq!(docker_version(&with), "20.10.24");
        let without =
            RawJson::parse(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec()).expect("c");
        assert_eq!(docker_version(&without), "");
    }

    #[test]
    fn json_has_skopeos_field_names_and_the_images_exact_values() {
        let (config, manifest_value) = sample();
        let manifest = RawJson::from_value(manifest_value).expect("manifest");
        let descriptor = manifest.descriptor(MediaType::OCI_MANIFEST);
        let image = Inspected {
            index: None,
            name: "docker://r.example/app:1",
            descriptor: &descriptor,
            manifest: &manifest,
            config: Some(&config),
        };
        let text = summary(&image);
        assert!(
            !text.contains('\x1b'),
            "control characters are escaped: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            v["Name"], "r.example/app",
            "skopeo's: the repository, no tag"
        );
        assert_eq!(v["DockerVersion"], "");
        assert_eq!(v["Digest"], manifest.digest().to_string());
        assert_eq!(v["Created"], "2026-01-02T03:04:05Z");
        assert_eq!(
            (&v["Architecture"], &v["Os"], &v["Variant"]),
            (&"arm64".into(), &"linux".into(), &"v8".into())
        );
        assert_eq!(v["Labels"]["team"], "platform");
        assert_eq!(v["Env"][1], "EVIL=\u{1b}[31mred", "the exact value");
        let layers = v["Layers"].as_array().expect("Layers");
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0], Digest::sha256_of(b"a").to_string());
        let first = &v["LayersData"][0];
        assert_eq!(first["MIMEType"], MediaType::OCI_LAYER_GZIP);
        assert_eq!(first["Size"], 12_345_678);
        assert_eq!(first["Digest"], layers[0]);
        assert!(first["Annotations"].is_null());
        assert!(v.get("ArtifactType").is_none(), "an image is no artifact");

        // A multi-platform image: Digest is the index's, as skopeo reports it.
        let index = index_of(&descriptor);
        let text = summary(&Inspected {
            index: Some(&index),
            ..image
        });
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["Digest"], index.digest().to_string());
        assert_ne!(index.digest(), manifest.digest());
    }

    #[test]
    fn an_artifact_has_a_type_and_no_platform() {
        let mut manifest = helm_chart("application/x-chart");
        let raw = RawJson::from_value(manifest.clone()).expect("manifest");
        let descriptor = raw.descriptor(MediaType::OCI_MANIFEST);
        let artifact = Inspected {
            name: "oci:charts:1",
            index: None,
            descriptor: &descriptor,
            manifest: &raw,
            config: None,
        };
        // Null, never "": a script reading `.Architecture` took the empty string for one.
        let v: serde_json::Value = serde_json::from_str(&summary(&artifact)).expect("JSON");
        for field in ["Architecture", "Os"] {
            assert!(v[field].is_null(), "{field}: {}", v[field]);
            assert!(
                v.as_object().expect("object").contains_key(field),
                "{field}"
            );
        }
        assert!(v.get("Variant").is_none());
        assert!(v["Created"].is_null());
        // What it is: its config's media type, without an artifact type.
        assert_eq!(
            v["ArtifactType"],
            "application/vnd.cncf.helm.config.v1+json"
        );
        assert_eq!(v["LayersData"][0]["Size"], 3_000);
        // Its artifact type, when the manifest has one.
        manifest.artifact_type = Some(MediaType::new("application/vnd.example.sbom"));
        let raw = RawJson::from_value(manifest).expect("manifest");
        let v: serde_json::Value = serde_json::from_str(&summary(&Inspected {
            manifest: &raw,
            ..artifact
        }))
        .expect("JSON");
        assert_eq!(v["ArtifactType"], "application/vnd.example.sbom");
        assert!(v["Architecture"].is_null() && v["Os"].is_null());
    }
}
