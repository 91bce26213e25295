//! The read side under faults: pulls resumed after cut or wrong bodies, manifests checked by
//! digest, redirects to storage, and requests retried until the policy gives up.

use super::*;

async fn seeded(
    reg: &Registry,
    repo: &str,
    seed: u64,
) -> (tempfile::TempDir, BlobSource, Descriptor) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "blob", SIZE, seed);
    let direct = Repo::new(reg.host(), repo).expect("repo");
    client()
        .push_blob(&direct, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("seed");
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        src.digest.clone(),
        SIZE,
    );
    (dir, src, desc)
}

#[tokio::test]
async fn pull_resumes_after_a_truncated_body_and_rejects_wrong_bytes() {
    let Some(reg) = common::registry() else {
        return;
    };
    let (dir, src, desc) = seeded(&reg, "fault/pull", 5).await;

    let proxy = common::proxy(
        reg.addr(),
        vec![rule(
            "GET",
            "/blobs/sha256",
            1,
            Action::TruncateResponseBody(100_000),
        )],
    );
    let repo = Repo::new(proxy.host(), "fault/pull").expect("repo");
    let sink = dir.path().join("out");
    let (p, mut rx) = Progress::channel(4096);
    client()
        .pull_blob(&repo, &desc, &sink, &p)
        .await
        .expect("pull resumes");
    drop(p);
    assert_eq!(
        hoist_oci::Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        src.digest
    );
    let gets: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "one resumed request");
    let mut resumed_at = None;
    while let Some(e) = rx.recv().await {
        if let Event::Resumed { offset, .. } = e {
            resumed_at = Some(offset);
        }
    }
    assert_eq!(resumed_at, Some(100_000));

    // The verifying stream resumes a truncated body by itself.
    let proxy2 = common::proxy(
        reg.addr(),
        vec![rule(
            "GET",
            "/blobs/sha256",
            1,
            Action::TruncateResponseBody(70_000),
        )],
    );
    let repo2 = Repo::new(proxy2.host(), "fault/pull").expect("repo");
    let mut stream = client()
        .open_blob_stream(&repo2, &desc)
        .await
        .expect("open stream");
    let mut hasher = hoist_oci::Digester::new(hoist_oci::Algorithm::Sha256);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .expect("stream resumes and verifies");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    assert_eq!(
        hasher.finish(),
        src.digest,
        "one continuous, correct stream"
    );
    let gets = proxy2
        .records()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 2, "one ranged re-request");

    // Same size, wrong bytes: the digest check fails and nothing is kept.
    let garbage = "x".repeat(SIZE as usize);
    let proxy = common::proxy(
        reg.addr(),
        vec![rule("GET", "/blobs/sha256", 1, respond(200, &[], &garbage))],
    );
    let repo = Repo::new(proxy.host(), "fault/pull").expect("repo");
    let bad = dir.path().join("bad");
    let e = client()
        .pull_blob(&repo, &desc, &bad, &Progress::none())
        .await
        .expect_err("mismatch");
    assert!(e.is_misbehaved() && e.is_digest_mismatch(), "{e}");
    assert!(!bad.exists() && common::partials(dir.path()).is_empty());
}

#[tokio::test]
async fn downloads_that_keep_moving_survive_more_cuts_than_attempts() {
    let Some(reg) = common::registry() else {
        return;
    };
    let (dir, src, desc) = seeded(&reg, "fault/cuts", 6).await;
    // Seven cuts, each after 30 kB: more than the client's five attempts, but never twice at
    // the same byte, so the download is moving and must finish.
    let cuts = || {
        (1..=7)
            .map(|n| {
                rule(
                    "GET",
                    "/blobs/sha256",
                    n,
                    Action::TruncateResponseBody(30_000),
                )
            })
            .collect::<Vec<_>>()
    };
    let proxy = common::proxy(reg.addr(), cuts());
    let repo = Repo::new(proxy.host(), "fault/cuts").expect("repo");
    let sink = dir.path().join("out");
    client()
        .pull_blob(&repo, &desc, &sink, &Progress::none())
        .await
        .expect("a moving download finishes");
    assert_eq!(
        hoist_oci::Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        src.digest
    );

    let proxy = common::proxy(reg.addr(), cuts());
    let repo = Repo::new(proxy.host(), "fault/cuts").expect("repo");
    let mut stream = client().open_blob_stream(&repo, &desc).await.expect("open");
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut got)
        .await
        .expect("a moving stream finishes");
    assert_eq!(hoist_oci::Digest::sha256_of(&got), src.digest);

    // Wrong bytes fail the stream, and it stays failed: no clean EOF after the error.
    let garbage = "x".repeat(SIZE as usize);
    let proxy = common::proxy(
        reg.addr(),
        vec![rule("GET", "/blobs/sha256", 1, respond(200, &[], &garbage))],
    );
    let repo = Repo::new(proxy.host(), "fault/cuts").expect("repo");
    let mut stream = client().open_blob_stream(&repo, &desc).await.expect("open");
    let mut sink = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink)
        .await
        .expect_err("digest mismatch");
    let mut buf = [0u8; 16];
    tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
        .await
        .expect_err("still failed after the error");
}

#[tokio::test]
async fn a_corrupted_manifest_is_rejected_by_digest() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let direct = Repo::new(reg.host(), "fault/manifest").expect("repo");
    let c = client();
    let config = blob_file(dir.path(), "config", 100, 1);
    let layer = blob_file(dir.path(), "layer", 1000, 2);
    for b in [&config, &layer] {
        c.push_blob(&direct, b, &PushOptions::default(), &Progress::none())
            .await
            .expect("blob");
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":100}},"layers":[{{"mediaType":"{}","digest":"{}","size":1000}}]}}"#,
        MediaType::OCI_MANIFEST,
        MediaType::OCI_CONFIG,
        config.digest,
        MediaType::OCI_LAYER_GZIP,
        layer.digest
    );
    let digest = c
        .push_manifest(
            &direct,
            "v1",
            &MediaType::new(MediaType::OCI_MANIFEST),
            manifest.as_bytes(),
        )
        .await
        .expect("manifest");
    // By tag (checked against Docker-Content-Digest) and by digest: both catch a flipped byte.
    for reference in ["v1".to_owned(), digest.to_string()] {
        let proxy = common::proxy(
            reg.addr(),
            vec![rule("GET", "/manifests/", 1, Action::CorruptResponseBody)],
        );
        let repo = Repo::new(proxy.host(), "fault/manifest").expect("repo");
        let e = c
            .get_manifest(&repo, &reference)
            .await
            .expect_err("corrupt");
        assert!(
            e.is_misbehaved() && e.is_digest_mismatch(),
            "{reference}: {e}"
        );
    }
    // A HEAD by digest answered for another digest, or with no usable size: misbehaviour,
    // not a descriptor to trust.
    let other = hoist_oci::Digest::sha256_of(b"another manifest").to_string();
    let ours = digest.to_string();
    for (said, length, complaint) in [
        (other.as_str(), "10", "answered for"),
        (ours.as_str(), "x", "Content-Length"),
    ] {
        let canned = Action::Respond {
            status: 200,
            headers: vec![
                ("Docker-Content-Digest".into(), said.into()),
                ("Content-Length".into(), length.into()),
            ],
            body: String::new(),
        };
        let proxy = common::proxy(reg.addr(), vec![rule("HEAD", "/manifests/", 1, canned)]);
        let repo = Repo::new(proxy.host(), "fault/manifest").expect("repo");
        let e = c
            .head_manifest(&repo, &ours)
            .await
            .expect_err("not to be trusted");
        assert!(e.is_misbehaved(), "{e}");
        assert!(e.to_string().contains(complaint), "{e}");
    }
}

#[tokio::test]
async fn blob_get_follows_a_redirect_to_storage_and_stops_an_endless_one() {
    let Some(reg) = common::registry() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = blob_file(dir.path(), "blob", 100_000, 77);
    let direct = Repo::new(reg.host(), "fault/redir").expect("repo");
    client()
        .push_blob(&direct, &src, &PushOptions::default(), &Progress::none())
        .await
        .expect("seed");
    let desc = Descriptor::new(
        MediaType::new(MediaType::OCI_LAYER_GZIP),
        src.digest.clone(),
        src.size,
    );
    // "Storage" is the registry itself on another authority.
    let storage = format!("http://{}/v2/fault/redir/blobs/{}", reg.host(), src.digest);
    let proxy = common::proxy(
        reg.addr(),
        vec![rule(
            "GET",
            "/blobs/sha256",
            1,
            respond(307, &[("Location", storage.as_str())], ""),
        )],
    );
    let repo = Repo::new(proxy.host(), "fault/redir").expect("repo");
    let sink = dir.path().join("out");
    client()
        .pull_blob(&repo, &desc, &sink, &Progress::none())
        .await
        .expect("redirect followed");
    assert_eq!(
        hoist_oci::Digest::sha256_of(&std::fs::read(&sink).expect("read")),
        src.digest
    );
    assert!(
        client()
            .blob_exists(&repo, &src.digest)
            .await
            .expect("HEAD")
    );

    // A redirect to itself, forever: a clear error, not a hang.
    let looping = common::proxy(reg.addr(), Vec::new());
    let self_url = format!(
        "http://{}/v2/fault/redir/blobs/{}",
        looping.host(),
        src.digest
    );
    looping.set_plan(vec![rule(
        "GET",
        "/blobs/sha256",
        0,
        respond(307, &[("Location", self_url.as_str())], ""),
    )]);
    let repo = Repo::new(looping.host(), "fault/redir").expect("repo");
    let e = client()
        .pull_blob(&repo, &desc, &dir.path().join("loop"), &Progress::none())
        .await
        .expect_err("endless redirect");
    assert!(
        e.is_misbehaved() && e.to_string().contains("redirect"),
        "{e}"
    );
}

#[tokio::test]
async fn a_failure_retried_until_the_policy_gives_up_says_how_often_it_was_tried() {
    let Some(reg) = common::registry() else {
        return;
    };
    // A registry that answers 503 every time: five attempts (the test client's policy).
    let busy = (1..=5)
        .map(|n| rule("GET", "/manifests/", n, Action::status(503, "busy")))
        .collect();
    let proxy = common::proxy(reg.addr(), busy);
    let repo = Repo::new(proxy.host(), "fault/busy").expect("repo");
    let e = client()
        .get_manifest(&repo, "v1")
        .await
        .expect_err("always busy");
    assert!(e.to_string().contains("gave up after 5 attempts"), "{e}");
    // Nothing listening: the same, for a transport failure.
    let port = hoist_testkit::free_port().expect("port");
    let gone = Repo::new(format!("127.0.0.1:{port}"), "fault/gone").expect("repo");
    let e = client()
        .get_manifest(&gone, "v1")
        .await
        .expect_err("nobody there");
    assert!(e.to_string().contains("gave up after 5 attempts"), "{e}");
    // A refusal is not retried, and says nothing of attempts.
    let e = client()
        .get_manifest(&Repo::new(reg.host(), "fault/none").expect("repo"), "v1")
        .await
        .expect_err("unknown");
    assert!(!e.to_string().contains("attempts"), "{e}");
}
