//! `hoist export` / `hoist copy docker-daemon:... oci:...` against a private dockerd: straight
//! into the destination (nothing in the cache), one progress line per layer, and a failed
//! export leaves nothing behind. Missing components print `SKIP:` (and fail under `CI=true`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use hoist_oci::{Digest, Layout, MediaType};
use hoist_testkit::Dockerd;

fn hoist(cache: &Path, dockerd: &Dockerd, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.env("DOCKER_HOST", dockerd.docker_host()).args(args);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run hoist")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `(id, state)` pairs of the JSON state events, in order.
fn states(out: &Output) -> Vec<(String, String)> {
    text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "state")
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default().to_string(),
                e["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The `(from, to)` pairs of the JSON rename events, in order.
fn renames(out: &Output) -> Vec<(String, String)> {
    text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "rename")
        .map(|e| {
            (
                e["from"].as_str().unwrap_or_default().to_string(),
                e["to"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn states_of(all: &[(String, String)], id: &str) -> Vec<String> {
    all.iter()
        .filter(|(i, _)| i == id)
        .map(|(_, s)| s.clone())
        .collect()
}

fn diff_ids(dockerd: &Dockerd, tag: &str) -> Vec<Digest> {
    let json = dockerd
        .run_docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            tag,
        ])
        .expect("inspect");
    let ids: Vec<String> = serde_json::from_str(json.trim()).expect("layers json");
    ids.iter()
        .map(|d| Digest::parse(d).expect("digest"))
        .collect()
}

fn temp_files(layout_dir: &Path) -> Vec<String> {
    std::fs::read_dir(layout_dir.join("blobs"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sha256")
        .collect()
}

#[test]
fn export_goes_straight_to_the_layout_with_a_line_per_layer() {
    let Some(dockerd) = common::daemon_with_image(&[40, 25], "hoist-exp:1") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let layers = diff_ids(&dockerd, "hoist-exp:1");
    assert_eq!(layers.len(), 3);
    let id = dockerd
        .run_docker(&["image", "inspect", "--format", "{{.Id}}", "hoist-exp:1"])
        .expect("id");

    // Default compression (gzip): compressed while spooling, straight into the layout.
    let gz_dir = tmp.path().join("gz");
    let digest_file = tmp.path().join("digest");
    let out = run(hoist(
        &cache,
        &dockerd,
        &[
            "--progress",
            "json",
            "export",
            "hoist-exp:1",
            "--digestfile",
        ],
    )
    .arg(&digest_file)
    .arg(&gz_dir));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = states(&out);
    let renames = renames(&out);
    assert_eq!(renames.len(), layers.len(), "{renames:?}");
    for diff_id in &layers {
        // Each layer's line is written (compressed on the way) into the layout under a
        // placeholder, then is renamed to its diff_id once stored and verified.
        let (from, _) = renames
            .iter()
            .find(|(_, to)| *to == diff_id.to_string())
            .unwrap_or_else(|| panic!("no line renamed to {diff_id}: {renames:?}"));
        assert!(from.starts_with("layer "), "{from}");
        assert_eq!(states_of(&all, from), vec!["writing"], "{all:?}");
        assert_eq!(
            states_of(&all, &diff_id.to_string()),
            vec!["done"],
            "{all:?}"
        );
    }
    let export_line = states_of(&all, "export");
    assert_eq!(export_line.first().map(String::as_str), Some("preparing"));
    assert!(
        export_line.contains(&"exporting".to_string()),
        "{export_line:?}"
    );
    assert_eq!(export_line.last().map(String::as_str), Some("done"));
    assert!(
        !cache.join("exports").exists()
            || std::fs::read_dir(cache.join("exports"))
                .expect("exports")
                .next()
                .is_none(),
        "nothing goes through the cache"
    );
    let layout = Layout::open(&gz_dir).expect("layout");
    let image = layout.image(Some("1"), None).expect("tagged 1");
    assert_eq!(image.config.digest().to_string(), id.trim());
    assert_eq!(image.config.value().rootfs.diff_ids, layers);
    for layer in &image.manifest.value().layers {
        assert_eq!(layer.media_type, MediaType::OCI_LAYER_GZIP);
        layout.verify_blob(layer).expect("verified");
    }
    assert_eq!(layout.tags().expect("tags"), vec!["1".to_string()]);
    assert!(temp_files(&gz_dir).is_empty(), "{:?}", temp_files(&gz_dir));
    // --digestfile names the manifest the export wrote.
    assert_eq!(
        std::fs::read_to_string(&digest_file).expect("digest file"),
        image.descriptor.digest.to_string()
    );

    // --compression none through copy: the layers are the daemon's tars, named by diff_id.
    let plain_dir = tmp.path().join("plain");
    let out = run(hoist(
        &cache,
        &dockerd,
        &[
            "-q",
            "--compression",
            "none",
            "copy",
            "docker-daemon:hoist-exp:1",
        ],
    )
    .arg(format!("oci:{}:v", plain_dir.display())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let layout = Layout::open(&plain_dir).expect("layout");
    let image = layout.image(Some("v"), None).expect("tagged v");
    let stored: Vec<Digest> = image
        .manifest
        .value()
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    assert_eq!(stored, layers);

    // A missing image: exit 1, and the directory it would have created does not appear.
    let missing_dir = tmp.path().join("missing");
    let out = run(hoist(&cache, &dockerd, &["-q", "export", "hoist-nope:1"]).arg(&missing_dir));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!missing_dir.exists());

    // Without DOCKER_HOST, the docker CLI's current context names the daemon (rootless
    // Docker and Docker Desktop set one up), as it does for `docker`.
    let docker_config = tmp.path().join("docker-config");
    let context_id = Digest::sha256_of(b"private");
    let meta = docker_config.join("contexts/meta").join(context_id.hex());
    std::fs::create_dir_all(&meta).expect("mkdir");
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"private","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{}"}}}}}}"#,
            dockerd.docker_host()
        ),
    )
    .expect("meta.json");
    std::fs::write(
        docker_config.join("config.json"),
        r#"{"currentContext":"private"}"#,
    )
    .expect("config.json");
    let via_context = tmp.path().join("via-context");
    let mut cmd = hoist(&cache, &dockerd, &["-q", "export", "hoist-exp:1"]);
    cmd.env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", &docker_config)
        .arg(&via_context);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let exported = Layout::open(&via_context).expect("layout");
    let image = exported.image(None, None).expect("the exported image");
    assert_eq!(image.config.value().rootfs.diff_ids, layers);
    // A context that does not exist is an error naming it, not the default socket.
    let mut cmd = hoist(&cache, &dockerd, &["-q", "export", "hoist-exp:1"]);
    cmd.env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", &docker_config)
        .env("DOCKER_CONTEXT", "nowhere")
        .arg(tmp.path().join("nowhere"));
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`nowhere`"),
        "{}",
        text(&out.stderr)
    );
}
