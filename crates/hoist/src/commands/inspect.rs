//! `hoist inspect`: a readable summary of an image (manifest, config, layers with sizes and media
//! types), rendered by a pure function from the documents the libraries fetched, or the exact
//! bytes of its manifest or config; and `hoist digest`, the digest of its manifest.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use hoist_oci::{
    AnyManifest, Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Layout, MediaType,
    Platform, RawJson,
};
use hoist_registry::Repo;

use super::{copy, registry};

mod json;
use crate::config::Config;
use crate::errors::sanitize;
use crate::size::human;
use crate::transport::Location;

/// What `inspect` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The readable summary.
    Summary,
    /// The summary as JSON, with `skopeo inspect`'s field names.
    Json,
    /// The exact bytes of what the name points at (an index stays an index), as served.
    Manifest,
    /// The exact bytes of the image's config (for the platform, from an index).
    Config,
}

/// Fetch what `inspect` shows and render it.
///
/// # Errors
/// When the image cannot be read.
pub async fn run(config: &Config, source: &Location, shown: Shown) -> anyhow::Result<Vec<u8>> {
    let name = source.to_string();
    match source {
        Location::Oci { dir, tag } => {
            if let Some(shown) = layout_artifact(config, &name, dir, tag.as_deref(), shown).await? {
                return Ok(shown);
            }
            let (layout, image) = copy::open_layout_image(config, dir, tag.as_deref()).await?;
            let top = layout.resolve(tag.as_deref())?;
            match shown {
                // What the tag points at, as a registry would serve it: an index stays an index.
                Shown::Manifest => return raw_blob(&layout, &top),
                Shown::Config => return Ok(image.config.bytes().to_vec()),
                Shown::Summary | Shown::Json => {}
            }
            let index = match top.media_type.is_index() {
                true => Some(layout.read_json::<ImageIndex>(&top)?),
                false => None,
            };
            Ok(render(
                shown,
                &Inspected {
                    name: &name,
                    index: index.as_ref(),
                    descriptor: &image.descriptor,
                    manifest: &image.manifest,
                    config: Some(&image.config),
                },
            ))
        }
        Location::Registry { reference } => {
            let client = registry::client(config)?;
            let repo = Repo::from_reference(reference)?;
            let top = client
                .get_manifest(&repo, &reference.tag_or_digest())
                .await
                .with_context(|| format!("fetching the manifest of {reference}"))?;
            if shown == Shown::Manifest {
                return Ok(top.bytes().to_vec());
            }
            let (index, manifest) = match top {
                AnyManifest::Index(index) => {
                    let platform = config.platform.clone().unwrap_or_else(Platform::host);
                    let manifest = client
                        .get_image_manifest(&repo, &reference.tag_or_digest(), &platform)
                        .await
                        .with_context(|| format!("fetching the manifest of {reference}"))?;
                    (Some(*index), manifest)
                }
                AnyManifest::Image(manifest) => (None, *manifest),
            };
            let media_type = manifest
                .value()
                .media_type
                .clone()
                .unwrap_or_else(|| MediaType::new(MediaType::OCI_MANIFEST));
            let descriptor = manifest.descriptor(media_type);
            if !manifest.value().is_container_image() {
                // An artifact: its config is no image config, shown as it is.
                let config_desc = &manifest.value().config;
                if shown == Shown::Config {
                    return small_remote_blob(&client, &repo, config_desc).await;
                }
                let inspected = Inspected {
                    name: &name,
                    index: index.as_ref(),
                    descriptor: &descriptor,
                    manifest: &manifest,
                    config: None,
                };
                return Ok(render(shown, &inspected));
            }
            let config_json =
                super::remote::fetch_config(&client, &repo, &manifest.value().config).await?;
            if shown == Shown::Config {
                return Ok(config_json.into_bytes());
            }
            Ok(render(
                shown,
                &Inspected {
                    name: &name,
                    index: index.as_ref(),
                    descriptor: &descriptor,
                    manifest: &manifest,
                    config: Some(&config_json),
                },
            ))
        }
        other => {
            // Archives and daemon images are inspected from their spooled layout.
            let staged = copy::stage(
                config,
                other,
                hoist_oci::Compression::None,
                &crate::progress::Reporter::silent(),
            )
            .await?;
            let inspected = Inspected {
                name: &name,
                index: None,
                descriptor: &staged.image.descriptor,
                manifest: &staged.image.manifest,
                config: Some(&staged.image.config),
            };
            let out = match shown {
                Shown::Manifest => staged.image.manifest.bytes().to_vec(),
                Shown::Config => staged.image.config.bytes().to_vec(),
                Shown::Summary => {
                    let mut text = render(shown, &inspected);
                    text.extend_from_slice(UNSTORED_DIGEST.as_bytes());
                    text
                }
                Shown::Json => render(shown, &inspected),
            };
            // Dropping `staged` deletes its transit copy.
            Ok(out)
        }
    }
}

/// Said under the summary of a daemon image or an archive: its digest is of the manifest hoist
/// read it as, stored nowhere (so `hoist digest` refuses such a source). skopeo's inspect
/// prints the same digest without a word.
const UNSTORED_DIGEST: &str = "Note:         the digest is of the manifest read from the source, \
     stored nowhere yet: a copy that compresses its layers writes another (--digestfile \
     FILE records it)\n";

/// What `hoist digest` prints: the digest of the manifest `source` names, read and verified
/// (an index's for a multi-platform image), or with `--platform` that platform's image's, the
/// one `hoist copy --platform` copies.
///
/// # Errors
/// When the image cannot be read; for a source that is not a registry or a layout.
pub async fn digest(config: &Config, source: &Location) -> anyhow::Result<Digest> {
    match source {
        Location::Registry { reference } => {
            let client = registry::client(config)?;
            let repo = Repo::from_reference(reference)?;
            let name = reference.tag_or_digest();
            let fetching = || format!("fetching the manifest of {reference}");
            Ok(match &config.platform {
                None => client
                    .get_manifest(&repo, &name)
                    .await
                    .with_context(fetching)?
                    .digest()
                    .clone(),
                Some(platform) => client
                    .get_image_manifest(&repo, &name, platform)
                    .await
                    .with_context(fetching)?
                    .digest()
                    .clone(),
            })
        }
        Location::Oci { dir, tag } if config.platform.is_some() => {
            let (_, image) = copy::open_layout_image(config, dir, tag.as_deref()).await?;
            Ok(image.descriptor.digest)
        }
        Location::Oci { dir, tag } => {
            let (dir, tag) = (dir.clone(), tag.clone());
            tokio::task::spawn_blocking(move || {
                let layout = Layout::open(&dir)
                    .with_context(|| format!("opening the OCI layout {}", dir.display()))?;
                let top = layout.resolve(tag.as_deref())?;
                // Read through the verifying reader: the digest printed is that of bytes that
                // are there.
                raw_blob(&layout, &top)?;
                Ok(top.digest)
            })
            .await?
        }
        other => bail!("{other} has no manifest digest of its own"),
    }
}

/// What `inspect` shows: the manifest's descriptor, the manifest and the config.
pub struct Inspected<'a> {
    /// Where it came from, as the user wrote it.
    pub name: &'a str,
    /// The index the name points at, when it names a multi-platform image (the rest is the
    /// image picked from it).
    pub index: Option<&'a RawJson<ImageIndex>>,
    /// The manifest's descriptor (digest and media type).
    pub descriptor: &'a Descriptor,
    /// The manifest.
    pub manifest: &'a RawJson<ImageManifest>,
    /// The config; `None` for an artifact, whose config is no image config.
    pub config: Option<&'a RawJson<ImageConfig>>,
}

/// What `inspect` shows of an artifact in the layout at `dir` (see [`super::artifact`]);
/// `None` when the tag names a container image, or nothing readable (the image path says
/// what is wrong).
async fn layout_artifact(
    config: &Config,
    name: &str,
    dir: &std::path::Path,
    tag: Option<&str>,
    shown: Shown,
) -> anyhow::Result<Option<Vec<u8>>> {
    let (dir, tag, name) = (dir.to_path_buf(), tag.map(str::to_string), name.to_string());
    let platform = config.platform.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(layout) = Layout::open(&dir) else {
            return Ok(None);
        };
        let Ok(top) = layout.resolve(tag.as_deref()) else {
            return Ok(None);
        };
        let Ok((descriptor, manifest)) = layout.manifest_at(&top, platform.as_ref()) else {
            return Ok(None);
        };
        if manifest.value().is_container_image() {
            return Ok(None);
        }
        let index = match top.media_type.is_index() {
            true => Some(layout.read_json::<ImageIndex>(&top)?),
            false => None,
        };
        Ok(Some(match shown {
            Shown::Manifest => raw_blob(&layout, &top)?,
            Shown::Config => raw_blob(&layout, &manifest.value().config)?,
            Shown::Summary | Shown::Json => render(
                shown,
                &Inspected {
                    name: &name,
                    index: index.as_ref(),
                    descriptor: &descriptor,
                    manifest: &manifest,
                    config: None,
                },
            ),
        }))
    })
    .await?
}

/// The exact bytes of a small blob in a registry (an artifact's config), verified while read
/// and refused past the size of a JSON document.
async fn small_remote_blob(
    client: &hoist_registry::Client,
    repo: &Repo,
    desc: &Descriptor,
) -> anyhow::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    if desc.size > hoist_oci::MAX_JSON_SIZE as u64 {
        bail!("{} is {} bytes: too large to print", desc.digest, desc.size);
    }
    let stream = client
        .open_blob_stream(repo, desc)
        .await
        .with_context(|| format!("fetching the config {}", desc.digest))?;
    // Read to its end: the stream checks the size and digest there.
    let mut stream = stream;
    let mut bytes = Vec::with_capacity(desc.size as usize);
    stream
        .read_to_end(&mut bytes)
        .await
        .with_context(|| format!("reading the config {}", desc.digest))?;
    Ok(bytes)
}

/// The exact bytes of a small JSON blob in a layout, verified against its descriptor.
fn raw_blob(layout: &hoist_oci::Layout, desc: &Descriptor) -> anyhow::Result<Vec<u8>> {
    if desc.size > hoist_oci::MAX_JSON_SIZE as u64 {
        bail!(
            "{} is {} bytes: too large for a manifest",
            desc.digest,
            desc.size
        );
    }
    let mut bytes = Vec::with_capacity(desc.size as usize);
    std::io::Read::read_to_end(&mut layout.open_blob(desc)?, &mut bytes)
        .with_context(|| format!("reading {}", desc.digest))?;
    Ok(bytes)
}

/// The summary as `shown` asks: text or JSON (the bytes for a manifest or config are printed
/// as they are, without this).
fn render(shown: Shown, image: &Inspected<'_>) -> Vec<u8> {
    match shown {
        Shown::Json => json::summary(image),
        _ => summary(image),
    }
    .into_bytes()
}

/// The summary text (ends with a newline). Values that came from the image are sanitized: an
/// image's labels or env cannot put escape sequences on the user's terminal.
pub fn summary(image: &Inspected<'_>) -> String {
    let m = image.manifest.value();
    let Some(c) = image.config.map(RawJson::value) else {
        return artifact_summary(image);
    };
    let mut out = String::new();
    let _ = writeln!(out, "Image:        {}", sanitize(image.name));
    if let Some(index) = image.index {
        let platforms: Vec<String> = index
            .value()
            .manifests
            .iter()
            .map(|d| {
                d.platform
                    .as_ref()
                    .map_or_else(|| "(no platform)".to_string(), |p| sanitize(&p.to_string()))
            })
            .collect();
        let _ = writeln!(out, "Index:        {}", index.digest());
        let _ = writeln!(
            out,
            "Platforms:    {} (shown: the one below; --platform picks another, --all copies every one)",
            platforms.join(", ")
        );
    }
    let _ = writeln!(out, "Digest:       {}", image.descriptor.digest);
    let _ = writeln!(
        out,
        "Media type:   {}",
        sanitize(image.descriptor.media_type.as_str())
    );
    let mut platform = format!("{}/{}", sanitize(&c.os), sanitize(&c.architecture));
    if let Some(v) = &c.variant {
        platform.push('/');
        platform.push_str(&sanitize(v));
    }
    let _ = writeln!(out, "Platform:     {platform}");
    if let Some(created) = &c.created {
        let _ = writeln!(out, "Created:      {}", sanitize(created));
    }
    let total: u64 = m.layers.iter().map(|l| l.size).sum();
    // What the sizes measure: the blobs as stored, compressed or not by their media types.
    let compressed = |l: &hoist_oci::Descriptor| {
        l.media_type
            .layer_compression()
            .map(|c| c != hoist_oci::Compression::None)
    };
    let stored = if m.layers.iter().all(|l| compressed(l) == Some(true)) {
        "compressed"
    } else if m.layers.iter().all(|l| compressed(l) == Some(false)) {
        "uncompressed"
    } else {
        "as stored"
    };
    let _ = writeln!(
        out,
        "Size:         {} in {} layer{} ({stored})",
        human(total),
        m.layers.len(),
        if m.layers.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "Config:       {} ({})",
        m.config.digest,
        human(m.config.size)
    );
    if let Some(rc) = &c.config {
        if let Some(ep) = &rc.entrypoint {
            let _ = writeln!(out, "Entrypoint:   {}", sanitize(&join_args(ep)));
        }
        if let Some(cmd) = &rc.cmd {
            let _ = writeln!(out, "Cmd:          {}", sanitize(&join_args(cmd)));
        }
        if let Some(dir) = rc.working_dir.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(out, "Workdir:      {}", sanitize(dir));
        }
        if let Some(user) = rc.user.as_deref().filter(|u| !u.is_empty()) {
            let _ = writeln!(out, "User:         {}", sanitize(user));
        }
        if let Some(env) = &rc.env {
            let _ = writeln!(out, "Env:");
            for e in env {
                let _ = writeln!(out, "  {}", sanitize(e));
            }
        }
        if let Some(labels) = rc.labels.as_ref().filter(|l| !l.is_empty()) {
            let _ = writeln!(out, "Labels:");
            for (k, v) in labels {
                let _ = writeln!(out, "  {}={}", sanitize(k), sanitize(v));
            }
        }
    }
    let _ = writeln!(out, "Layers:");
    list_blobs(&mut out, &m.layers, &c.rootfs.diff_ids);
    out
}

/// The summary of an artifact: what it is (its artifact type, else its config's media type)
/// and its blobs; no platform or runtime settings, which only an image has.
fn artifact_summary(image: &Inspected<'_>) -> String {
    let m = image.manifest.value();
    let mut out = String::new();
    let _ = writeln!(out, "Artifact:     {}", sanitize(image.name));
    // Picked from an index, as an image is: the index is what the name points at.
    if let Some(index) = image.index {
        let _ = writeln!(out, "Index:        {}", index.digest());
    }
    let _ = writeln!(out, "Digest:       {}", image.descriptor.digest);
    let _ = writeln!(
        out,
        "Media type:   {}",
        sanitize(image.descriptor.media_type.as_str())
    );
    let _ = writeln!(out, "Type:         {}", sanitize(artifact_kind(m).as_str()));
    let _ = writeln!(
        out,
        "Config:       {} ({}, {})",
        m.config.digest,
        human(m.config.size),
        sanitize(m.config.media_type.as_str())
    );
    let total: u64 = m.layers.iter().map(|l| l.size).sum();
    let _ = writeln!(
        out,
        "Size:         {} in {} blob{}",
        human(total),
        m.layers.len(),
        if m.layers.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "Blobs:");
    list_blobs(&mut out, &m.layers, &[]);
    let _ = writeln!(
        out,
        "(an artifact: it can be copied to a registry or an OCI layout, not unpacked, archived \
         or loaded)"
    );
    out
}

/// What identifies an artifact: its artifact type, else its config's media type (as the OCI
/// image spec says to read one without `artifactType`).
pub(super) fn artifact_kind(m: &ImageManifest) -> &MediaType {
    m.artifact_type.as_ref().unwrap_or(&m.config.media_type)
}

/// One numbered line per blob (digest, size, media type), each followed by its `diff_ids`
/// entry when there is one.
fn list_blobs(out: &mut String, blobs: &[Descriptor], diff_ids: &[Digest]) {
    let width = blobs.len().to_string().len();
    for (i, blob) in blobs.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>width$}  {}  {:>9}  {}",
            i + 1,
            blob.digest,
            human(blob.size),
            sanitize(blob.media_type.as_str())
        );
        if let Some(diff_id) = diff_ids.get(i) {
            let _ = writeln!(out, "  {:>width$}  diff_id {}", "", diff_id);
        }
    }
}

fn join_args(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'']) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_oci::{Digest, MediaType};

    /// An image with two layers (gzip and zstd) and a config with the fields the summaries
    /// show, one of its values carrying an escape sequence.
    /// A Helm chart as an artifact: a config of Helm's media type and one blob of `chart_type`.
    pub(super) fn helm_chart(chart_type: &str) -> ImageManifest {
        let config = Descriptor::new(
            MediaType::new("application/vnd.cncf.helm.config.v1+json"),
            Digest::sha256_of(b"c"),
            54,
        );
        let chart = Descriptor::new(
            MediaType::new(chart_type),
            Digest::sha256_of(b"chart"),
            3_000,
        );
        ImageManifest::new(config, vec![chart])
    }

    /// An OCI index listing `descriptor` alone.
    pub(super) fn index_of(descriptor: &Descriptor) -> RawJson<ImageIndex> {
        RawJson::from_value(ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_INDEX)),
            artifact_type: None,
            manifests: vec![descriptor.clone()],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        })
        .expect("index")
    }

    pub(super) fn sample() -> (RawJson<ImageConfig>, ImageManifest) {
        let layer_a = Digest::sha256_of(b"a");
        let layer_b = Digest::sha256_of(b"b");
        let config_json = format!(
            r#"{{"architecture":"arm64","os":"linux","variant":"v8","created":"2026-01-02T03:04:05Z",
               "config":{{"Entrypoint":["/bin/app","--flag"],"Cmd":["serve","two words"],
                          "Env":["PATH=/usr/bin","EVIL=\u001b[31mred"],"WorkingDir":"/srv",
                          "Labels":{{"team":"platform"}}}},
               "rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
            Digest::sha256_of(b"ua"),
            Digest::sha256_of(b"ub")
        );
        let config: RawJson<ImageConfig> =
            RawJson::parse(config_json.into_bytes()).expect("config");
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
            artifact_type: None,
            config: config.descriptor(MediaType::OCI_CONFIG),
            layers: vec![
                Descriptor::new(MediaType::OCI_LAYER_GZIP, layer_a, 12_345_678),
                Descriptor::new(MediaType::OCI_LAYER_ZSTD, layer_b, 2_000),
            ],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        (config, manifest)
    }

    #[test]
    fn summarizes_manifest_config_and_layers() {
        let (config, manifest_value) = sample();
        let layer_a = Digest::sha256_of(b"a");
        let layer_b = Digest::sha256_of(b"b");
        // Uncompressed layers (an export, a docker archive) are not called compressed.
        let mut plain_value = manifest_value.clone();
        for layer in &mut plain_value.layers {
            layer.media_type = MediaType::new(MediaType::OCI_LAYER);
        }
        let plain = RawJson::from_value(plain_value).expect("manifest");
        let text = summary(&Inspected {
            index: None,
            name: "docker-archive:x.tar",
            descriptor: &plain.descriptor(MediaType::OCI_MANIFEST),
            manifest: &plain,
            config: Some(&config),
        });
        assert!(text.contains(" in 2 layers (uncompressed)\n"), "{text}");
        let manifest = RawJson::from_value(manifest_value).expect("manifest");
        let descriptor = manifest.descriptor(MediaType::OCI_MANIFEST);
        let text = summary(&Inspected {
            index: None,
            name: "oci:layout:v1",
            descriptor: &descriptor,
            manifest: &manifest,
            config: Some(&config),
        });
        assert!(
            text.contains(&format!("Digest:       {}\n", manifest.digest())),
            "{text}"
        );
        assert!(text.contains("Platform:     linux/arm64/v8\n"), "{text}");
        assert!(
            text.contains("Size:         12.3 MB in 2 layers (compressed)\n"),
            "{text}"
        );
        assert!(text.contains("Entrypoint:   /bin/app --flag\n"), "{text}");
        assert!(
            text.contains("Cmd:          serve \"two words\"\n"),
            "{text}"
        );
        assert!(text.contains("  team=platform\n"), "{text}");
        assert!(
            text.contains(&format!(
                "  1  {layer_a}    12.3 MB  {}\n",
                MediaType::OCI_LAYER_GZIP
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  2  {layer_b}    2.00 KB  {}\n",
                MediaType::OCI_LAYER_ZSTD
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("diff_id {}", Digest::sha256_of(b"ub"))),
            "{text}"
        );
        assert!(
            !text.contains('\x1b'),
            "escape sequences from the image are removed"
        );
    }

    #[test]
    fn an_artifact_is_summarized_by_its_type_and_blobs_without_a_platform() {
        let mut manifest = helm_chart("application/x-chart\u{1b}[2J");
        let raw = RawJson::from_value(manifest.clone()).expect("manifest");
        let descriptor = raw.descriptor(MediaType::OCI_MANIFEST);
        let artifact = Inspected {
            name: "oci:charts:1",
            index: None,
            descriptor: &descriptor,
            manifest: &raw,
            config: None,
        };
        let text = summary(&artifact);
        assert!(text.starts_with("Artifact:     oci:charts:1\n"), "{text}");
        assert!(
            text.contains("Type:         application/vnd.cncf.helm.config.v1+json"),
            "{text}"
        );
        assert!(text.contains("in 1 blob"), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "a media type reached the terminal raw: {text}"
        );
        assert!(!text.contains("Platform:"), "{text}");
        // An artifact type, when the manifest has one, names what it is.
        manifest.artifact_type = Some(MediaType::new("application/vnd.example.sbom"));
        let raw = RawJson::from_value(manifest).expect("manifest");
        let text = summary(&Inspected {
            manifest: &raw,
            ..artifact
        });
        assert!(
            text.contains("Type:         application/vnd.example.sbom"),
            "{text}"
        );
        // Picked from an index, as an image is, it names the index the name points at.
        let index = index_of(&descriptor);
        let text = summary(&Inspected {
            index: Some(&index),
            ..artifact
        });
        assert!(
            text.contains(&format!("\nIndex:        {}\n", index.digest())),
            "{text}"
        );
    }
}
