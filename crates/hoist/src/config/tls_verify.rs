//! skopeo's `--tls-verify=false`, `--src-tls-verify=false` and `--dest-tls-verify=false`: the
//! registries they name, which hoist then treats as `--insecure-registry` hosts (HTTPS without
//! certificate verification, or plain HTTP when the registry serves no TLS, as skopeo does).
//!
//! `true`, the default, changes nothing: it does not take back an `--insecure-registry`. A side
//! that is no registry is ignored, as skopeo ignores the flag for its other transports, so a
//! script that passes both always keeps working.

use super::Job;

/// The registries (`host[:port]` as the registry client names them) whose TLS is not to be
/// verified: every registry of the job for `all` false, the source's for `src` false, the
/// destination's for `dest` false.
pub(super) fn unverified_registries(
    job: &Job,
    all: Option<bool>,
    src: Option<bool>,
    dest: Option<bool>,
) -> Vec<String> {
    let (from, to) = job.registries();
    let off = |flag: Option<bool>| flag == Some(false);
    let mut hosts = Vec::new();
    if off(all) || off(src) {
        hosts.extend(from.clone());
    }
    if off(all) || off(dest) {
        hosts.extend(to);
    }
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{err, ok};

    fn insecure(args: &[&str]) -> Vec<String> {
        ok(args).0.insecure_registries
    }

    #[test]
    fn tls_verify_false_names_the_registries_of_its_side() {
        let (from, to) = ("docker://src.example:5000/a:1", "docker://dst.example/a:1");
        assert_eq!(
            insecure(&["--tls-verify=false", "copy", from, to]),
            ["src.example:5000", "dst.example"]
        );
        assert_eq!(
            insecure(&["--src-tls-verify=false", "copy", from, to]),
            ["src.example:5000"]
        );
        assert_eq!(
            insecure(&["--dest-tls-verify=false", "copy", from, to]),
            ["dst.example"]
        );
        // The short forms, inspect, digest and tags; Docker Hub by its API host.
        assert_eq!(
            insecure(&[
                "--dest-tls-verify=false",
                "push",
                "app:1",
                "dst.example/a:1"
            ]),
            ["dst.example"]
        );
        assert_eq!(
            insecure(&["--tls-verify=false", "digest", "docker.io/library/alpine:3"]),
            ["registry-1.docker.io"]
        );
        assert_eq!(
            insecure(&["--tls-verify=false", "tags", "dst.example/a"]),
            ["dst.example"]
        );
        // true (bare or spelled out) and a side that is no registry change nothing; a host
        // already named is not named twice.
        for args in [
            &["--tls-verify", "copy", from, to][..],
            &["--tls-verify=true", "copy", from, to][..],
            &["--src-tls-verify=false", "copy", "oci:x:1", to][..],
            &["--dest-tls-verify=false", "copy", from, "oci:x:1"][..],
        ] {
            assert!(insecure(args).is_empty(), "{args:?}");
        }
        assert_eq!(
            insecure(&[
                "--insecure-registry",
                "dst.example",
                "--tls-verify=false",
                "copy",
                from,
                to
            ]),
            ["dst.example", "src.example:5000"]
        );
        // skopeo's spelling needs the `=`; anything but a boolean is refused.
        assert!(err(&["--tls-verify=maybe", "tags", "dst.example/a"]).contains("maybe"));
    }
}
