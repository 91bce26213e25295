//! Manifests, tags, deletes and blob pulls against a real distribution registry.

mod common;

use common::blob_file;
use hoist_oci::{AnyManifest, Descriptor, Digest, MediaType, Platform};
use hoist_registry::{Client, Event, Progress, PushOptions, Repo, RetryPolicy};
use tokio::io::AsyncReadExt;

fn client() -> Client {
    Client::builder()
        .no_docker_config()
        .chunk_size(64 * 1024)
        .retry(RetryPolicy::immediate(3))
        .build()
        .expect("client")
}

/// Push a config and a layer and an image manifest for them; returns (manifest bytes, layer).
async fn push_image(
    c: &Client,
    repo: &Repo,
    dir: &std::path::Path,
    seed: u64,
) -> (Vec<u8>, Descriptor) {
    let config_bytes = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"seed":{seed}}}"#
    );
    let config_path = dir.join(format!("config{seed}"));
    std::fs::write(&config_path, &config_bytes).expect("write config");
    let config = hoist_registry::BlobSource {
        path: config_path,
        digest: Digest::sha256_of(config_bytes.as_bytes()),
        size: config_bytes.len() as u64,
    };
    let layer = blob_file(dir, &format!("layer{seed}"), 200_000 + seed, seed);
    for b in [&config, &layer] {
        c.push_blob(repo, b, &PushOptions::default(), &Progress::none())
            .await
            .expect("push blob");
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
        MediaType::OCI_MANIFEST,
        MediaType::OCI_CONFIG,
        config.digest,
        config.size,
        MediaType::OCI_LAYER_GZIP,
        layer.digest,
        layer.size
    );
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        layer.digest,
        layer.size,
    );
    (manifest.into_bytes(), desc)
}

#[tokio::test]
async fn manifest_round_trip_tags_and_pull() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let repo = Repo::new(reg.host(), "app/web").expect("repo");
    let (manifest, layer) = push_image(&c, &repo, dir.path(), 1).await;
    let mt = MediaType::new(MediaType::OCI_MANIFEST);
    let digest = c
        .push_manifest(&repo, "v1", &mt, &manifest)
        .await
        .expect("put by tag");
    assert_eq!(digest, Digest::sha256_of(&manifest));
    c.push_manifest(&repo, &digest.to_string(), &mt, &manifest)
        .await
        .expect("put by digest");
    let wrong = c
        .push_manifest(&repo, &Digest::sha256_of(b"x").to_string(), &mt, &manifest)
        .await
        .expect_err("digest reference must match bytes");
    assert!(wrong.is_invalid_input(), "{wrong}");

    for reference in ["v1".to_owned(), digest.to_string()] {
        let got = c.get_manifest(&repo, &reference).await.expect("get");
        assert_eq!(got.bytes(), &manifest[..], "exact bytes");
        assert_eq!(got.digest(), &digest);
        assert!(matches!(got, AnyManifest::Image(_)));
    }
    let head = c
        .head_manifest(&repo, "v1")
        .await
        .expect("head")
        .expect("present");
    assert_eq!(head.digest, digest);
    assert_eq!(head.size, manifest.len() as u64);
    assert!(
        c.head_manifest(&repo, "nope")
            .await
            .expect("head")
            .is_none()
    );
    let missing = c.get_manifest(&repo, "nope").await.expect_err("missing");
    assert!(missing.is_not_found() && missing.is_refused(), "{missing}");
    assert_eq!(missing.code(), Some("MANIFEST_UNKNOWN"));

    c.push_manifest(&repo, "v2", &mt, &manifest)
        .await
        .expect("tag v2");
    let mut tags = c.list_tags(&repo).await.expect("tags");
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);
    let unknown = Repo::new(reg.host(), "no/such").expect("repo");
    let e = c.list_tags(&unknown).await.expect_err("unknown repo");
    assert_eq!(e.code(), Some("NAME_UNKNOWN"), "{e}");

    // Pull the layer to a file, with progress.
    let sink = dir.path().join("pulled");
    let (p, mut rx) = Progress::channel(256);
    c.pull_blob(&repo, &layer, &sink, &p).await.expect("pull");
    drop(p);
    assert_eq!(
        Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        layer.digest
    );
    assert!(
        common::partials(dir.path()).is_empty(),
        "{:?}",
        common::partials(dir.path())
    );
    let mut last = None;
    while let Some(e) = rx.recv().await {
        last = Some(e);
    }
    assert!(matches!(last, Some(Event::Done { .. })));

    // The same blob twice at once into one sink (a manifest may list a layer twice): each
    // download has its own temp file, so both verify and neither breaks the other.
    let twice = dir.path().join("twice");
    let quiet = Progress::none();
    let (a, b) = tokio::join!(
        c.pull_blob(&repo, &layer, &twice, &quiet),
        c.pull_blob(&repo, &layer, &twice, &quiet)
    );
    a.expect("first of two");
    b.expect("second of two");
    assert_eq!(
        Digest::sha256_of(&std::fs::read(&twice).expect("read")),
        layer.digest
    );
    assert!(
        common::partials(dir.path()).is_empty(),
        "{:?}",
        common::partials(dir.path())
    );

    // Stream it.
    let mut s = c.open_blob_stream(&repo, &layer).await.expect("stream");
    let mut n = 0u64;
    let mut buf = vec![0u8; 8192];
    loop {
        let k = s.read(&mut buf).await.expect("read verified");
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    assert_eq!(n, layer.size);

    // A descriptor that lies about the digest (right size): the bytes are not kept and the
    // stream fails instead of ending cleanly. The registry serves the real blob under its
    // digest, so fake the expectation by asking with a wrong size.
    let mut lying = layer.clone();
    lying.size -= 1;
    let bad_sink = dir.path().join("bad");
    let e = c
        .pull_blob(&repo, &lying, &bad_sink, &Progress::none())
        .await
        .expect_err("too long");
    assert!(e.is_misbehaved(), "{e}");
    assert!(!bad_sink.exists() && common::partials(dir.path()).is_empty());
    let mut s = c.open_blob_stream(&repo, &lying).await.expect("stream");
    let mut sink = Vec::new();
    let err = s
        .read_to_end(&mut sink)
        .await
        .expect_err("stream must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn index_resolves_to_the_platform_manifest() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let repo = Repo::new(reg.host(), "multi/arch").expect("repo");
    let mt = MediaType::new(MediaType::OCI_MANIFEST);
    let (amd, _) = push_image(&c, &repo, dir.path(), 11).await;
    let (arm, _) = push_image(&c, &repo, dir.path(), 12).await;
    let amd_d = c
        .push_manifest(&repo, &Digest::sha256_of(&amd).to_string(), &mt, &amd)
        .await
        .expect("amd");
    let arm_d = c
        .push_manifest(&repo, &Digest::sha256_of(&arm).to_string(), &mt, &arm)
        .await
        .expect("arm");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{mt}","digest":"{amd_d}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"{mt}","digest":"{arm_d}","size":{},"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
        MediaType::OCI_INDEX,
        amd.len(),
        arm.len()
    );
    c.push_manifest(
        &repo,
        "latest",
        &MediaType::new(MediaType::OCI_INDEX),
        index.as_bytes(),
    )
    .await
    .expect("index");
    assert!(matches!(
        c.get_manifest(&repo, "latest").await.expect("get"),
        AnyManifest::Index(_)
    ));
    let m = c
        .get_image_manifest(&repo, "latest", &Platform::new("linux", "arm64"))
        .await
        .expect("arm64");
    assert_eq!(m.digest(), &arm_d);
    let e = c
        .get_image_manifest(&repo, "latest", &Platform::new("linux", "s390x"))
        .await
        .expect_err("no such platform");
    assert!(e.to_string().contains("arm64"), "{e}");

    // An index whose one entry declares no platform: taken when its config agrees.
    let bare = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{mt}","digest":"{amd_d}","size":{}}}]}}"#,
        MediaType::OCI_INDEX,
        amd.len()
    );
    c.push_manifest(
        &repo,
        "bare",
        &MediaType::new(MediaType::OCI_INDEX),
        bare.as_bytes(),
    )
    .await
    .expect("bare index");
    let m = c
        .get_image_manifest(&repo, "bare", &Platform::new("linux", "amd64"))
        .await
        .expect("its config says amd64");
    assert_eq!(m.digest(), &amd_d);
    let e = c
        .get_image_manifest(&repo, "bare", &Platform::new("linux", "arm64"))
        .await
        .expect_err("its config says amd64");
    assert!(e.to_string().contains("is for linux/amd64"), "{e}");
}

#[tokio::test]
async fn delete_by_tag_removes_every_tag_and_by_digest_the_manifest() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let repo = Repo::new(reg.host(), "team/gone").expect("repo");
    let mt = MediaType::new(MediaType::OCI_MANIFEST);
    let (first, _) = push_image(&c, &repo, dir.path(), 31).await;
    let (second, _) = push_image(&c, &repo, dir.path(), 32).await;
    for tag in ["v1", "also-v1"] {
        c.push_manifest(&repo, tag, &mt, &first)
            .await
            .expect("tag the first");
    }
    let second_digest = c
        .push_manifest(&repo, "v2", &mt, &second)
        .await
        .expect("tag the second");

    // By tag: the digest it named is deleted, and with it every tag naming that manifest.
    let deleted = c.delete_manifest(&repo, "v1").await.expect("delete v1");
    assert_eq!(deleted, Digest::sha256_of(&first));
    let e = c
        .get_manifest(&repo, &deleted.to_string())
        .await
        .expect_err("gone by digest");
    assert!(e.is_not_found(), "{e}");
    for tag in ["v1", "also-v1"] {
        assert!(
            c.head_manifest(&repo, tag).await.expect("head").is_none(),
            "{tag} went with the manifest"
        );
    }
    assert_eq!(c.list_tags(&repo).await.expect("tags"), ["v2"]);

    // By digest.
    let deleted = c
        .delete_manifest(&repo, &second_digest.to_string())
        .await
        .expect("delete by digest");
    assert_eq!(deleted, second_digest);
    assert!(c.head_manifest(&repo, "v2").await.expect("head").is_none());

    // Nothing there: not found, naming what was asked for; no such tag is not even sent.
    let e = c
        .delete_manifest(&repo, "nope")
        .await
        .expect_err("no such tag");
    assert!(e.is_not_found() && e.is_refused(), "{e}");
    assert!(e.to_string().contains("/team/gone:nope not found"), "{e}");
    let e = c
        .delete_manifest(&repo, &second_digest.to_string())
        .await
        .expect_err("deleted already");
    assert!(e.is_not_found() && !e.is_unsupported(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("/team/gone@{second_digest} not found")),
        "{e}"
    );
    let e = c.delete_manifest(&repo, "../v1").await.expect_err("no tag");
    assert!(e.is_invalid_input(), "{e}");
}

#[tokio::test]
async fn a_registry_without_deletes_says_so_and_keeps_the_manifest() {
    if !hoist_testkit::require_tool("docker-registry") {
        return;
    }
    let reg = common::Registry::builder()
        .deletes(false)
        .start()
        .expect("registry without deletes");
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let repo = Repo::new(reg.host(), "team/kept").expect("repo");
    let (manifest, _) = push_image(&c, &repo, dir.path(), 41).await;
    let digest = c
        .push_manifest(
            &repo,
            "v1",
            &MediaType::new(MediaType::OCI_MANIFEST),
            &manifest,
        )
        .await
        .expect("tag");
    for reference in ["v1".to_owned(), digest.to_string()] {
        let e = c
            .delete_manifest(&repo, &reference)
            .await
            .expect_err("deletes are off");
        assert!(
            e.is_unsupported() && e.is_refused() && !e.is_not_found(),
            "{e}"
        );
        let said = e.to_string();
        assert!(said.contains("does not allow deletes"), "{said}");
        assert!(said.contains("storage.delete.enabled"), "{said}");
        assert!(said.contains(&digest.to_string()), "{said}");
    }
    let kept = c.get_manifest(&repo, "v1").await.expect("still there");
    assert_eq!(kept.digest(), &digest);
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_done_when_the_retry_finds_it_gone() {
    use hoist_testkit::{FaultAction, FaultProxy, FaultRule};
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let repo = Repo::new(reg.host(), "team/lost").expect("repo");
    let mt = MediaType::new(MediaType::OCI_MANIFEST);
    let (first, _) = push_image(&c, &repo, dir.path(), 51).await;
    let (second, _) = push_image(&c, &repo, dir.path(), 52).await;
    let first_digest = c.push_manifest(&repo, "v1", &mt, &first).await.expect("v1");
    let second_digest = c
        .push_manifest(&repo, "v2", &mt, &second)
        .await
        .expect("v2");
    let proxy = FaultProxy::start(reg.addr(), Vec::new()).expect("proxy");
    let through = Repo::new(proxy.host(), "team/lost").expect("repo");
    // The next DELETE reaches the registry, and the connection closes before its answer.
    let cut_next = || {
        proxy.set_plan(vec![FaultRule::new(
            "DELETE",
            "/manifests/",
            1,
            FaultAction::CutAfterBodyBytes(0),
        )]);
    };
    cut_next();
    let deleted = c.delete_manifest(&through, "v1").await.expect("by tag");
    assert_eq!(deleted, first_digest);
    cut_next();
    let deleted = c
        .delete_manifest(&through, &second_digest.to_string())
        .await
        .expect("by digest");
    assert_eq!(deleted, second_digest);
    let deletes = proxy
        .records()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 4, "each delete was sent twice");
    assert_eq!(proxy.faults_injected(), 2);
    for digest in [&first_digest, &second_digest] {
        let e = c
            .get_manifest(&repo, &digest.to_string())
            .await
            .expect_err("deleted");
        assert!(e.is_not_found(), "{e}");
    }
    // A 404 on the first attempt is still "not found".
    let e = c
        .delete_manifest(&through, &second_digest.to_string())
        .await
        .expect_err("gone before");
    assert!(e.is_not_found(), "{e}");
}

/// A sink that cannot receive the blob is refused before a byte is asked for: a directory
/// used to be downloaded into whole and refused only at the rename, an empty path said
/// "renaming into : ...".
#[tokio::test]
async fn a_sink_that_cannot_be_written_fails_before_the_download() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let repo = Repo::new(reg.host(), "sink/app").expect("repo");
    let (_, layer) = push_image(&c, &repo, dir.path(), 31).await;
    // Pulls go through a proxy that counts what is asked for.
    let proxy = common::proxy(reg.addr(), Vec::new());
    let via = Repo::new(proxy.host(), "sink/app").expect("repo");
    let into_dir = dir.path().join("a-directory");
    std::fs::create_dir(&into_dir).expect("mkdir");
    let quiet = Progress::none();
    let e = c
        .pull_blob(&via, &layer, &into_dir, &quiet)
        .await
        .expect_err("a directory");
    assert!(e.is_invalid_input(), "{e}");
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = c
        .pull_blob(&via, &layer, std::path::Path::new(""), &quiet)
        .await
        .expect_err("empty path");
    assert!(e.is_invalid_input(), "{e}");
    let e = c
        .pull_blob(&via, &layer, &dir.path().join("missing/blob"), &quiet)
        .await
        .expect_err("missing parent");
    assert!(e.is_local_io(), "{e}");
    assert!(
        proxy.records().iter().all(|r| r.method != "GET"),
        "nothing may be downloaded: {:?}",
        proxy.records().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(common::partials(dir.path()).is_empty());
    assert!(common::partials(&into_dir).is_empty());
}

/// A manifest HEAD's `Content-Type` becomes a descriptor's media type, which later goes into
/// `Accept` and `Content-Type` headers: its parameters are dropped (as the GET path drops
/// them), and a header that is no media type is the registry's misbehaviour, not a descriptor.
#[tokio::test]
async fn a_head_content_type_is_read_as_a_checked_media_type() {
    let Some(reg) = common::registry() else {
        return;
    };
    let digest = Digest::sha256_of(b"{}");
    let answer = |content_type: &str| common::FaultAction::Respond {
        status: 200,
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("Docker-Content-Digest".into(), digest.to_string()),
            ("Content-Length".into(), "2".into()),
        ],
        body: String::new(),
    };
    let proxy = common::proxy(
        reg.addr(),
        vec![
            common::FaultRule::new(
                "HEAD",
                "/manifests/v1",
                1,
                answer("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            ),
            common::FaultRule::new("HEAD", "/manifests/v1", 2, answer("text/html, made up")),
        ],
    );
    let c = client();
    let repo = Repo::new(proxy.host(), "app/head").expect("repo");
    let head = c
        .head_manifest(&repo, "v1")
        .await
        .expect("head")
        .expect("present");
    assert_eq!(head.media_type.as_str(), MediaType::OCI_MANIFEST);
    assert_eq!((head.digest, head.size), (digest, 2));
    let bad = c
        .head_manifest(&repo, "v1")
        .await
        .expect_err("no media type");
    assert!(bad.to_string().contains("Content-Type"), "{bad}");
    assert!(!bad.is_invalid_input(), "the registry's fault: {bad}");
}
