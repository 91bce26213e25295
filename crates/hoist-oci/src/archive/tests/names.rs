//! Image names on their way into and out of archives: digest-only names in written archives,
//! docker tags a layout cannot hold in spooled ones.

use super::*;

/// The `RepoTags` of each image in a written archive's `manifest.json`.
fn repo_tags_of(bytes: &[u8]) -> Vec<Option<Vec<String>>> {
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").to_str() == Some("manifest.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("read");
            let entries: Vec<ArchiveManifestEntry> =
                serde_json::from_str(&text).expect("manifest.json");
            return entries.into_iter().map(|e| e.repo_tags).collect();
        }
    }
    panic!("no manifest.json");
}

/// Regression: `app@sha256:…` became `RepoTags` `app:latest`, so a `docker load` silently moved
/// the user's `latest`.
#[test]
fn a_digest_only_name_is_no_repo_tag() {
    let (_s, src, _, desc, _) = tool_image("amd64");
    let pinned = format!("app@{}", desc.digest);
    let cases: [(Vec<String>, Vec<&str>); 3] = [
        (vec![pinned.clone()], vec![]),
        (
            vec![pinned.clone(), format!("app:1@{}", desc.digest)],
            vec!["app:1"],
        ),
        (vec!["app".into()], vec!["app:latest"]),
    ];
    for (names, want) in cases {
        let mut out = Vec::new();
        write_docker_archive(&src, &[(desc.clone(), names.clone())], &mut out).expect("write");
        let want: Vec<String> = want.into_iter().map(String::from).collect();
        assert_eq!(repo_tags_of(&out), vec![Some(want.clone())], "{names:?}");
        // What it loads as: no tag at all for the digest-only name.
        let (_d, l) = new_layout();
        let images = spool(pipe(out), &l).expect("spool back");
        assert_eq!(images[0].tags, want, "{names:?}");
    }
}

/// Regression: a docker tag outside the layout's tag grammar failed the whole spool at its very
/// end, every blob already stored.
#[test]
fn a_docker_tag_a_layout_cannot_hold_leaves_the_image_untagged() {
    // Image A is named `app:a` and `localhost:5000/team/app:1-`; image B only `app:v_`.
    let layers = [tar_of(&[("a", b"a")]), tar_of(&[("b", b"b")])];
    let configs = layers
        .each_ref()
        .map(|t| config_for(vec![Digest::sha256_of(t)], "amd64"));
    let manifest = r#"[{"Config":"a.json","RepoTags":["app:a","localhost:5000/team/app:1-"],"Layers":["a/layer.tar"]},
            {"Config":"b.json","RepoTags":["app:v_"],"Layers":["b/layer.tar"]}]"#;
    let bytes = archive(vec![
        Item::File("a/layer.tar", layers[0].clone()),
        Item::File("b/layer.tar", layers[1].clone()),
        Item::File("a.json", configs[0].bytes().to_vec()),
        Item::File("b.json", configs[1].bytes().to_vec()),
        Item::File("manifest.json", manifest.as_bytes().to_vec()),
    ]);
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let options = SpoolOptions::new().on_event(move |e| {
        if let SpoolEvent::TagRefused { tag, manifest, .. } = e {
            seen.lock().expect("lock").push((tag, manifest.digest));
        }
    });
    let (_d, l) = new_layout();
    let images = spool_with(pipe(bytes), &l, options).expect("spool");
    // The names stay as the archive gave them (a registry or daemon takes them).
    assert_eq!(images[0].tags, vec!["app:a", "localhost:5000/team/app:1-"]);
    assert_eq!(images[1].tags, vec!["app:v_"]);
    assert_eq!(l.tags().expect("tags"), vec!["app:a"]);
    let untagged: Vec<Digest> = l
        .list()
        .expect("list")
        .into_iter()
        .filter(|e| e.tag.is_none())
        .map(|e| e.descriptor.digest)
        .collect();
    assert_eq!(untagged, vec![images[1].manifest.digest.clone()]);
    assert_eq!(
        *events.lock().expect("lock"),
        vec![
            (
                "localhost:5000/team/app:1-".to_string(),
                images[0].manifest.digest.clone()
            ),
            ("app:v_".to_string(), images[1].manifest.digest.clone()),
        ]
    );
}
