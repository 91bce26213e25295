//! Synthetic images are valid, self-consistent and deterministic, checked with independent tools.

use hoist_oci::{Compression, Digest};
use hoist_testkit::{
    Dockerd, Extras, ImageSpec, LayerSpec, Payload, require_root, require_tool,
    write_docker_archive, write_oci_layout,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::Path;
use std::process::Command;

fn sha256_file_reader(mut r: impl Read) -> (Digest, u64) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).expect("read");
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
    let d = Digest::parse(&format!("sha256:{}", hex::encode(h.finalize()))).expect("digest");
    (d, n)
}

fn spec() -> ImageSpec {
    ImageSpec {
        layers: vec![
            LayerSpec::new(10, 300_000).extras(Extras {
                opaque_dirs: 1,
                symlinks: 2,
                hardlinks: 1,
                long_names: 1,
                ..Extras::default()
            }),
            LayerSpec::new(4, 200_000)
                .payload(Payload::Text)
                .compression(Compression::Zstd)
                .extras(Extras {
                    whiteouts: 3,
                    opaque_dirs: 1,
                    ..Extras::default()
                }),
            LayerSpec::new(1, 1000).compression(Compression::None),
        ],
        seed: 42,
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

#[test]
fn oci_layout_is_consistent_and_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = write_oci_layout(dir.path(), "v1", &spec()).expect("write layout");
    assert_eq!(img.layers.len(), 3);
    assert_eq!(img.diff_ids.len(), 3);

    // Every blob is named by its digest.
    let blobs = dir.path().join("blobs/sha256");
    let mut count = 0;
    for e in std::fs::read_dir(&blobs).expect("blobs") {
        let e = e.expect("entry");
        let (d, _) = sha256_file_reader(std::fs::File::open(e.path()).expect("open"));
        assert_eq!(d.hex(), e.file_name().to_string_lossy());
        count += 1;
    }
    assert_eq!(count, 5, "3 layers + config + manifest");

    // index.json -> manifest -> config/layers, and diff_ids are the uncompressed digests.
    let index = read_json(&dir.path().join("index.json"));
    let m = &index["manifests"][0];
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
    assert_eq!(m["digest"], img.manifest_digest.to_string());
    let manifest = read_json(&blobs.join(img.manifest_digest.hex()));
    assert_eq!(manifest["config"]["digest"], img.config_digest.to_string());
    let config = read_json(&blobs.join(img.config_digest.hex()));
    for (i, desc) in img.layers.iter().enumerate() {
        assert_eq!(manifest["layers"][i]["digest"], desc.digest.to_string());
        assert_eq!(manifest["layers"][i]["mediaType"], desc.media_type.as_str());
        assert_eq!(config["rootfs"]["diff_ids"][i], img.diff_ids[i].to_string());
        let f = std::fs::File::open(blobs.join(desc.digest.hex())).expect("layer");
        assert_eq!(f.metadata().expect("meta").len(), desc.size);
        let (diff_id, _) = match desc.media_type.layer_compression() {
            Some(Compression::Gzip) => sha256_file_reader(flate2::read::GzDecoder::new(f)),
            Some(Compression::Zstd) => {
                sha256_file_reader(zstd::stream::read::Decoder::new(f).expect("zstd"))
            }
            _ => sha256_file_reader(f),
        };
        assert_eq!(diff_id, img.diff_ids[i], "layer {i}");
    }
    assert_eq!(
        img.layers[1].media_type.layer_compression(),
        Some(Compression::Zstd)
    );

    // Same spec, same bytes; a second tag in the same layout keeps the first.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let again = write_oci_layout(dir2.path(), "v1", &spec()).expect("write again");
    assert_eq!(again, img);
    let other = ImageSpec { seed: 43, ..spec() };
    let img2 = write_oci_layout(dir.path(), "v2", &other).expect("second tag");
    assert_ne!(img2.manifest_digest, img.manifest_digest);
    let index = read_json(&dir.path().join("index.json"));
    assert_eq!(index["manifests"].as_array().expect("array").len(), 2);
}

#[test]
fn oci_layout_is_accepted_by_skopeo_and_umoci() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    // umoci 0.4 predates zstd layers: use gzip for the middle layer here.
    let mut spec = spec();
    spec.layers[1].compression = Compression::Gzip;
    let img = write_oci_layout(&layout, "v1", &spec).expect("write layout");
    let out = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Digest::sha256_of(&out.stdout), img.manifest_digest);

    // umoci verifies every digest while unpacking and applies whiteouts/opaque dirs.
    let bundle = dir.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.join("rootfs");
    // Layer 1 has text payload, so its files (and whiteout victims) are .txt names: layer 0's
    // .bin files all survive next to them.
    assert!(rootfs.join("data/00/f000000.bin").exists());
    assert!(rootfs.join("data/00/f000000.txt").exists());
    assert!(rootfs.join("data/09/f000009.bin").exists());
    // The opaque dir of layer 1 hid layer 0's file in opq/d0.
    let opq: Vec<_> = std::fs::read_dir(rootfs.join("opq/d0"))
        .expect("opq")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(opq.len(), 1, "{opq:?}");
    assert_eq!(
        std::fs::read_link(rootfs.join("links/s1")).expect("symlink"),
        Path::new("../data/01/f000001.bin")
    );
}

#[test]
fn whiteouts_delete_earlier_files() {
    if !require_tool("umoci") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    let spec = ImageSpec {
        layers: vec![
            LayerSpec::new(8, 8000),
            LayerSpec::new(2, 100).extras(Extras {
                whiteouts: 3,
                ..Extras::default()
            }),
        ],
        seed: 1,
    };
    write_oci_layout(&layout, "w", &spec).expect("layout");
    let bundle = dir.path().join("bundle");
    let st = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:w", layout.display()))
        .arg(&bundle)
        .status()
        .expect("umoci");
    assert!(st.success());
    let r = bundle.join("rootfs/data");
    for (i, present) in [true, true, false, false, false, true, true, true]
        .iter()
        .enumerate()
    {
        let p = r.join(format!("{:02}/f{i:06}.bin", i % 16));
        assert_eq!(p.exists(), *present, "{}", p.display());
    }
    // Layer 1 rewrote files 0 and 1 with 50 bytes each.
    assert_eq!(
        std::fs::metadata(r.join("00/f000000.bin"))
            .expect("m")
            .len(),
        50
    );
    assert_eq!(
        std::fs::metadata(r.join("07/f000007.bin"))
            .expect("m")
            .len(),
        1000
    );
}

#[test]
fn docker_archive_loads_into_skopeo_and_dockerd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("img.tar");
    let img = write_docker_archive(&archive, "synth/app:1.0", &spec()).expect("archive");
    assert_eq!(img.layers.len(), 3);
    // Uncompressed layers: the stored digest is the diff_id.
    for (l, d) in img.layers.iter().zip(&img.diff_ids) {
        assert_eq!(&l.digest, d);
    }
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&archive).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").to_string_lossy().into_owned();
        if p == "manifest.json" {
            let mut b = Vec::new();
            e.read_to_end(&mut b).expect("read");
            assert_eq!(Digest::sha256_of(&b), img.manifest_digest);
            let m: Value = serde_json::from_slice(&b).expect("json");
            assert_eq!(m[0]["RepoTags"][0], "synth/app:1.0");
        } else if p.ends_with("/layer.tar") {
            let (d, _) = sha256_file_reader(&mut e);
            assert!(img.diff_ids.contains(&d), "{p} has unknown digest {d}");
        }
        names.push(p);
    }
    assert!(names.contains(&format!("{}.json", img.config_digest.hex())));
    assert!(names.contains(&"repositories".to_string()));
    assert!(!dir.path().read_dir().expect("dir").any(|e| {
        e.expect("e")
            .file_name()
            .to_string_lossy()
            .starts_with(".synth")
    }));

    if require_tool("skopeo") {
        let out = Command::new("skopeo")
            .args(["inspect", "--config", "--raw"])
            .arg(format!("docker-archive:{}", archive.display()))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(Digest::sha256_of(&out.stdout), img.config_digest);
    }
    if require_tool("dockerd") && require_root() {
        let d = Dockerd::start().expect("dockerd");
        let a = archive.to_str().expect("utf-8");
        d.run_docker(&["load", "-i", a]).expect("docker load");
        let id = d
            .run_docker(&["image", "inspect", "synth/app:1.0", "--format", "{{.Id}}"])
            .expect("inspect");
        assert_eq!(id, img.config_digest.to_string());
    }
}
