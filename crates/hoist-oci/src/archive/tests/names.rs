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
