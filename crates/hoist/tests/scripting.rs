//! What scripts written for skopeo and crane reach for, against real registries: the digest of
//! what a copy wrote (`--digestfile`, as `skopeo copy --digestfile`), the digest a tag names
//! (`hoist digest`, as `crane digest`), an image's config (`hoist inspect --config`, as `crane
//! config`), its summary as `skopeo inspect`'s JSON (`hoist inspect --json`), deleting an image
//! (`hoist delete`, as `skopeo delete` and `crane delete`), credentials from podman's and
//! skopeo's auth file (`--authfile`, `REGISTRY_AUTH_FILE`), and skopeo's spellings
//! `--tls-verify=false` and `--retry-times`.
//! Missing components print `SKIP:` (and fail under `CI=true`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use hoist_oci::{Compression, Digest, Layout};
use hoist_testkit::synth::{
    ImageSpec, SynthImage, write_docker_archive, write_multi_platform_layout, write_oci_layout,
};
use hoist_testkit::{Registry, TlsFiles, require_tool};

use common::text;

fn hoist(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = common::isolated(cache);
    cmd.arg("-q").args(args);
    cmd
}

/// Run `cmd`, asserting it succeeded.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{cmd:?}: {}", text(&out.stderr));
    out
}

/// What a `--digestfile` holds: exactly `sha256:HEX`, no newline (as skopeo writes it).
fn recorded(file: &Path) -> Digest {
    let said = std::fs::read_to_string(file).expect("the digest file");
    assert!(!said.ends_with('\n'), "no newline: {said:?}");
    Digest::parse(&said).expect("a digest alone")
}

/// The digest of the exact bytes the registry serves for `reference`.
fn served(cache: &Path, reference: &str) -> Digest {
    Digest::sha256_of(&ok(&mut hoist(cache, &["inspect", "--raw", reference])).stdout)
}

/// What `hoist digest` printed: one digest and a newline, as `crane digest`.
fn printed(out: &Output) -> Digest {
    let said = text(&out.stdout);
    let line = said.strip_suffix('\n').expect("a newline at the end");
    assert!(!line.contains('\n'), "one line: {said:?}");
    Digest::parse(line).expect("a digest")
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A test's scratch directory: hoist's cache, and an OCI layout `source` holding `image`,
/// tagged `v1`, of `layers` gzip layers of 20 KB each (`seed` picks the bytes).
struct Scratch {
    tmp: tempfile::TempDir,
    cache: PathBuf,
    source: PathBuf,
    image: SynthImage,
}

fn scratch(layers: usize, seed: u64) -> Scratch {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let source = tmp.path().join("source");
    let spec = ImageSpec::uniform(layers, 20_000, Compression::Gzip, seed);
    let image = write_oci_layout(&source, "v1", &spec).expect("layout");
    Scratch {
        tmp,
        cache,
        source,
        image,
    }
}

#[test]
fn digestfile_records_the_manifest_each_copy_wrote() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp,
        cache,
        source,
        image,
    } = scratch(2, 11);
    let (a, b) = (
        Registry::start().expect("registry"),
        Registry::start().expect("second registry"),
    );
    let file = |name: &str| tmp.path().join(name);

    // A push from a layout; a file already there is replaced.
    let pushed = file("pushed");
    std::fs::write(&pushed, "stale").expect("write");
    let to = format!("{}/team/app:1", a.host());
    ok(hoist(&cache, &["push", "--digestfile", path_arg(&pushed)])
        .arg(common::arg(&source, ":v1"))
        .arg(&to));
    assert_eq!(recorded(&pushed), image.manifest_digest);
    assert_eq!(served(&cache, &to), image.manifest_digest);

    // Within one registry (blobs mounted) and between two (blobs streamed).
    for (name, destination) in [
        ("mounted", format!("docker://{}/team/copy:1", a.host())),
        ("streamed", format!("docker://{}/team/app:1", b.host())),
    ] {
        let f = file(name);
        ok(hoist(&cache, &["copy", "--digestfile", path_arg(&f)])
            .arg(format!("docker://{to}"))
            .arg(&destination));
        assert_eq!(recorded(&f), image.manifest_digest, "{name}");
    }

    // A pull into a layout, as a copy does it too.
    let pulled = file("pulled");
    let layout = tmp.path().join("pulled-layout");
    ok(hoist(&cache, &["pull", "--digestfile", path_arg(&pulled), &to]).arg(&layout));
    assert_eq!(recorded(&pulled), image.manifest_digest);
    let tagged = Layout::open(&layout)
        .expect("layout")
        .resolve(Some("1"))
        .expect("tag");
    assert_eq!(tagged.digest, image.manifest_digest);

    // A docker archive into a layout: the digest of the manifest hoist wrote there.
    let archive = tmp.path().join("app.tar");
    write_docker_archive(
        &archive,
        "app:1",
        &ImageSpec::uniform(2, 20_000, Compression::None, 12),
    )
    .expect("archive");
    let spooled = file("spooled");
    let from_archive = tmp.path().join("from-archive");
    ok(hoist(&cache, &["copy", "--digestfile", path_arg(&spooled)])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(common::arg(&from_archive, ":t")));
    let tagged = Layout::open(&from_archive)
        .expect("layout")
        .resolve(Some("t"))
        .expect("tag");
    assert_eq!(recorded(&spooled), tagged.digest);

    // --all: the index's digest, not one of its images'.
    let multi = tmp.path().join("multi");
    let written = write_multi_platform_layout(&multi, "multi").expect("two platforms");
    let all = file("all");
    let multi_to = format!("docker://{}/team/multi:1", b.host());
    ok(
        hoist(&cache, &["copy", "--all", "--digestfile", path_arg(&all)])
            .arg(common::arg(&multi, ":multi"))
            .arg(&multi_to),
    );
    assert_eq!(recorded(&all), written.index_digest);

    // A copy that fails writes nothing.
    let failed = file("failed");
    let out = hoist(
        &cache,
        &["--retries", "0", "push", "--digestfile", path_arg(&failed)],
    )
    .arg(common::arg(&source, ":v1"))
    .arg("127.0.0.1:9/team/app:1")
    .output()
    .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!failed.exists(), "no digest for a failed push");

    // Bad input is a usage error before anything moves.
    let root = tmp.path().join("root");
    let out = hoist(&cache, &["copy", "--digestfile", path_arg(&failed)])
        .arg(format!("docker://{to}"))
        .arg(format!("rootfs:{}", root.display()))
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--digestfile"));
    assert!(!root.exists(), "nothing unpacked");
    let out = hoist(
        &cache,
        &[
            "push",
            "--digestfile",
            path_arg(&tmp.path().join("no-such-dir").join("d")),
        ],
    )
    .arg(common::arg(&source, ":v1"))
    .arg(format!("{}/team/never:1", a.host()))
    .output()
    .expect("run hoist");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = hoist(&cache, &["tags", &format!("{}/team/never", a.host())])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "the push never happened");
}

#[test]
fn digest_prints_what_a_tag_names_and_inspect_config_the_config() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp: _tmp,
        cache,
        source,
        image: single,
    } = scratch(1, 21);
    let multi = write_multi_platform_layout(&source, "multi").expect("two platforms");
    let (amd64, arm64) = (&multi.images[0], &multi.images[1]);
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/app", registry.host());
    ok(hoist(&cache, &["push"])
        .arg(common::arg(&source, ":v1"))
        .arg(format!("{repo}:1")));
    ok(hoist(&cache, &["push", "--all"])
        .arg(common::arg(&source, ":multi"))
        .arg(format!("{repo}:multi")));

    let digest = |args: &[&str]| printed(&ok(hoist(&cache, &["digest"]).args(args)));
    // A registry, with and without docker://, by tag and by digest.
    assert_eq!(digest(&[&format!("{repo}:1")]), single.manifest_digest);
    assert_eq!(
        digest(&[&format!("docker://{repo}:1")]),
        single.manifest_digest
    );
    let pinned = format!("{repo}@{}", single.manifest_digest);
    assert_eq!(digest(&[&pinned]), single.manifest_digest);
    // A multi-platform image: the index, unless a platform is asked for.
    assert_eq!(digest(&[&format!("{repo}:multi")]), multi.index_digest);
    assert_eq!(
        digest(&["--platform", "linux/arm64", &format!("{repo}:multi")]),
        arm64.manifest_digest
    );
    // A layout, the same way.
    let layout = common::arg(&source, ":multi");
    assert_eq!(digest(&[&layout]), multi.index_digest);
    assert_eq!(
        digest(&["--platform", "linux/amd64", &layout]),
        amd64.manifest_digest
    );
    assert_eq!(
        digest(&[&common::arg(&source, ":v1")]),
        single.manifest_digest
    );

    // A tag the registry does not have: one clear line on stderr, nothing on stdout.
    let out = hoist(&cache, &["digest", &format!("{repo}:nope")])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains(":nope"), "{}", text(&out.stderr));
    // A daemon image has no manifest digest to print: a usage error saying what has one.
    let out = hoist(&cache, &["digest", "docker-daemon:app:1"])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--digestfile"));

    // The config's exact bytes, for the platform asked for, with or without --raw.
    let config = |args: &[&str]| {
        Digest::sha256_of(&ok(hoist(&cache, &["inspect", "--config"]).args(args)).stdout)
    };
    assert_eq!(config(&[&format!("{repo}:1")]), single.config_digest);
    assert_eq!(config(&["--raw", &pinned]), single.config_digest);
    assert_eq!(
        config(&["--platform", "linux/arm64", &format!("{repo}:multi")]),
        arm64.config_digest
    );
    assert_eq!(
        config(&["--platform", "linux/amd64", &layout]),
        amd64.config_digest
    );

    // `skopeo inspect`'s JSON shape: `jq .Digest` is what `hoist digest` prints (the index's
    // for a multi-platform image), `.Layers` the platform image's layers.
    let json = |args: &[&str]| -> serde_json::Value {
        let out = ok(hoist(&cache, &["inspect", "--json"]).args(args));
        serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
    };
    let v = json(&[&format!("{repo}:1")]);
    assert_eq!(v["Digest"], single.manifest_digest.to_string());
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["LayersData"][0]["Digest"], v["Layers"][0]);
    let v = json(&["--platform", "linux/arm64", &format!("{repo}:multi")]);
    assert_eq!(v["Digest"], multi.index_digest.to_string());
    let arm64_layers: Vec<String> = arm64.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(v["Layers"], serde_json::json!(arm64_layers));
    let out = hoist(&cache, &["inspect", "--json", "--raw", &pinned])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(2), "--json and --raw contradict");
}

#[test]
fn delete_removes_a_manifest_with_every_tag_on_it() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp,
        cache,
        source,
        image,
    } = scratch(1, 51);
    let other = tmp.path().join("other");
    let second = write_oci_layout(
        &other,
        "v1",
        &ImageSpec::uniform(1, 20_000, Compression::Gzip, 52),
    )
    .expect("second layout");
    let registry = Registry::start().expect("registry");
    let repo = format!("{}/team/app", registry.host());
    for tag in ["1", "also-1"] {
        ok(hoist(&cache, &["push"])
            .arg(common::arg(&source, ":v1"))
            .arg(format!("{repo}:{tag}")));
    }
    ok(hoist(&cache, &["push"])
        .arg(common::arg(&other, ":v1"))
        .arg(format!("{repo}:2")));
    // What the registry answers for the manifest by digest, asked by the testkit's own client
    // (distribution hides an OCI manifest from a GET that does not accept one).
    let accept = [(
        "Accept",
        "application/vnd.oci.image.manifest.v1+json, \
         application/vnd.docker.distribution.manifest.v2+json",
    )];
    let manifest_status = |digest: &Digest| {
        let path = format!("/v2/team/app/manifests/{digest}");
        hoist_testkit::http_request(registry.addr(), "GET", &path, &accept, &[])
            .expect("GET the manifest")
            .status
    };
    assert_eq!(manifest_status(&image.manifest_digest), 200);

    // By tag: nothing on stdout; stderr says which manifest went (-q would silence it).
    let out = common::isolated(&cache)
        .args(["delete", &format!("docker://{repo}:1")])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        format!("deleted {repo}@{}\n", image.manifest_digest)
    );
    assert_eq!(manifest_status(&image.manifest_digest), 404);
    // Every tag on that manifest went with it; the other image stays.
    for tag in ["1", "also-1"] {
        let out = hoist(&cache, &["digest", &format!("{repo}:{tag}")])
            .output()
            .expect("run hoist");
        assert_eq!(out.status.code(), Some(1), "{tag}: {}", text(&out.stdout));
    }
    assert_eq!(
        text(&ok(&mut hoist(&cache, &["tags", &repo])).stdout),
        "2\n"
    );

    // By digest, quietly: nothing at all is printed.
    let pinned = format!("{repo}@{}", second.manifest_digest);
    let out = ok(&mut hoist(&cache, &["delete", &pinned]));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(manifest_status(&second.manifest_digest), 404);

    // Nothing there (a tag never pushed, a manifest deleted already): one clear line, exit 1.
    for absent in [
        format!("{repo}:nope"),
        format!("{repo}@{}", image.manifest_digest),
    ] {
        let out = hoist(&cache, &["delete", &absent])
            .output()
            .expect("run hoist");
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains(&format!("{absent} not found")), "{said}");
        assert!(!said.contains('<'), "no HTML: {said}");
        assert!(out.stdout.is_empty());
    }

    // A registry that keeps deletes off, behind a password: --creds reaches it, and the
    // refusal says why; the image stays.
    let locked = Registry::builder()
        .deletes(false)
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("registry without deletes");
    let kept = format!("{}/team/app:1", locked.host());
    let creds = format!("{USER}:{PASSWORD}");
    ok(hoist(&cache, &["--creds", &creds, "push"])
        .arg(common::arg(&source, ":v1"))
        .arg(&kept));
    let out = hoist(&cache, &["delete", &kept])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "no credentials");
    assert!(
        text(&out.stderr).contains("credentials"),
        "{}",
        text(&out.stderr)
    );
    let out = hoist(&cache, &["--creds", &creds, "delete", &kept])
        .output()
        .expect("run hoist");
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("does not allow deletes") && said.contains("storage.delete.enabled"),
        "{said}"
    );
    assert_eq!(said.matches("deleting").count(), 1, "said once: {said}");
    assert!(!said.contains(PASSWORD), "{said}");
    let out = ok(&mut hoist(&cache, &["--creds", &creds, "digest", &kept]));
    assert_eq!(printed(&out), image.manifest_digest);
}

const USER: &str = "deploy";
const PASSWORD: &str = "Auth-file-pw-41c7d2";

/// One `auths` entry giving `user:password`, as docker and podman write it.
fn entry(password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    format!(r#"{{"auth":"{auth}"}}"#)
}

/// An auth file in docker's and podman's format giving `user:password` for `host`.
fn auth_file(path: &Path, host: &str, password: &str) -> PathBuf {
    let text = format!(r#"{{"auths":{{"{host}":{}}}}}"#, entry(password));
    std::fs::write(path, text).expect("auth file");
    path.to_path_buf()
}

#[test]
fn authfile_and_registry_auth_file_give_credentials_instead_of_docker_config() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp, cache, source, ..
    } = scratch(1, 31);
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("registry");
    let host = registry.host();
    let target = format!("{host}/team/app:1");
    // docker's config.json has a wrong password: used alone, it is refused.
    let docker_config = tmp.path().join("docker");
    std::fs::create_dir_all(&docker_config).expect("mkdir");
    auth_file(
        &docker_config.join("config.json"),
        &host,
        "not-the-password",
    );
    let good = auth_file(&tmp.path().join("auth.json"), &host, PASSWORD);
    let push = |extra: &[&str], env: Option<&Path>| {
        let mut cmd = hoist(&cache, extra);
        cmd.env("DOCKER_CONFIG", &docker_config)
            .arg("push")
            .arg(common::arg(&source, ":v1"))
            .arg(&target);
        if let Some(path) = env {
            cmd.env("REGISTRY_AUTH_FILE", path);
        }
        cmd.output().expect("run hoist")
    };
    let all_output = |out: &Output| format!("{}{}", text(&out.stdout), text(&out.stderr));

    let out = push(&[], None);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    // The refusal names the file the refused password came from.
    let from = format!("from {}", docker_config.join("config.json").display());
    assert!(all_output(&out).contains(&from), "{}", all_output(&out));

    let out = push(&["--authfile", path_arg(&good)], None);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(!all_output(&out).contains(PASSWORD));
    let out = push(&[], Some(&good));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // An auth file with nothing for this registry: the refusal names that file.
    let empty = tmp.path().join("empty-auth.json");
    std::fs::write(&empty, r#"{"auths":{}}"#).expect("auth file");
    let out = push(&["--authfile", path_arg(&empty)], None);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let expected = format!("{} has none", empty.display());
    assert!(all_output(&out).contains(&expected), "{}", all_output(&out));
    // Each side's file goes to its own registry: the push reads only --dest-authfile, a pull
    // only --src-authfile (the docker config's wrong password is never tried).
    let out = push(&["--dest-authfile", path_arg(&good)], None);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let pulled = tmp.path().join("pulled");
    let out = hoist(&cache, &["--src-authfile", path_arg(&good)])
        .env("DOCKER_CONFIG", &docker_config)
        .args(["pull", &target, &common::arg(&pulled, ":1")])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // Without --authfile, the auth.json `podman login` writes is read before docker's
    // config.json (whose password is wrong), as skopeo does.
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(runtime.join("containers")).expect("mkdir");
    auth_file(&runtime.join("containers/auth.json"), &host, PASSWORD);
    let out = hoist(&cache, &[])
        .env("DOCKER_CONFIG", &docker_config)
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["push", &common::arg(&source, ":v1"), &target])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // The variable is read by every command that talks to a registry.
    let out = hoist(&cache, &["tags", &format!("{host}/team/app")])
        .env("REGISTRY_AUTH_FILE", &good)
        .output()
        .expect("run hoist");
    assert_eq!(text(&out.stdout), "1\n", "{}", text(&out.stderr));
    // An empty variable is no auth file (docker's config.json is read: refused).
    let out = push(&[], Some(Path::new("")));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));

    // A missing file is a usage error naming it and where it was given, before any request.
    let missing = tmp.path().join("missing.json");
    for (extra, env, given_by) in [
        (vec!["--authfile", path_arg(&missing)], None, "--authfile"),
        (vec![], Some(missing.as_path()), "REGISTRY_AUTH_FILE"),
    ] {
        let out = push(&extra, env);
        let said = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(
            said.contains(path_arg(&missing)) && said.contains(given_by),
            "{said}"
        );
    }
}

#[test]
fn an_auth_file_entry_for_a_namespace_answers_before_the_registrys() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp, cache, source, ..
    } = scratch(1, 37);
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("registry");
    let host = registry.host();
    // As `podman login HOST/team` and `podman login HOST` with another password leave it.
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(runtime.join("containers")).expect("mkdir");
    let podman = runtime.join("containers/auth.json");
    std::fs::write(
        &podman,
        format!(
            r#"{{"auths":{{"{host}/team":{},"{host}":{}}}}}"#,
            entry(PASSWORD),
            entry("the-registry-wide-one")
        ),
    )
    .expect("auth file");
    let push = |target: &str| {
        hoist(&cache, &[])
            .env("XDG_RUNTIME_DIR", &runtime)
            .args(["push", &common::arg(&source, ":v1"), target])
            .output()
            .expect("run hoist")
    };
    let all_output = |out: &Output| format!("{}{}", text(&out.stdout), text(&out.stderr));
    let out = push(&format!("{host}/team/app:1"));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // Outside the namespace the registry's entry answers, and is refused.
    let out = push(&format!("{host}/other/app:1"));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let from = format!("from {}", podman.display());
    assert!(all_output(&out).contains(&from), "{}", all_output(&out));
    // A namespace entry in a later file loses to a registry entry in an earlier one, as in
    // skopeo: the first file with an entry that applies answers.
    let docker_config = tmp.path().join("docker");
    std::fs::create_dir_all(&docker_config).expect("mkdir");
    std::fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"auths":{{"{host}/other":{}}}}}"#, entry(PASSWORD)),
    )
    .expect("auth file");
    let out = hoist(&cache, &[])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("DOCKER_CONFIG", &docker_config)
        .args([
            "push",
            &common::arg(&source, ":v1"),
            &format!("{host}/other/app:1"),
        ])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    std::fs::remove_file(&podman).expect("rm");
    let out = hoist(&cache, &[])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("DOCKER_CONFIG", &docker_config)
        .args([
            "push",
            &common::arg(&source, ":v1"),
            &format!("{host}/other/app:1"),
        ])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

/// Regression: a registry serving the certificate `openssl req -x509` makes (self-signed and
/// marked `CA:TRUE`), with that certificate as `ca.crt` in `--cert-dir`, was refused
/// (CaUsedAsEndEntity) where skopeo and docker accept it.
#[test]
fn a_self_signed_registry_certificate_in_the_cert_dir_is_trusted() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp: _tmp,
        cache,
        source,
        image,
    } = scratch(1, 43);
    let tls = TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("TLS files");
    let reg = Registry::builder().tls(&tls).start().expect("TLS registry");
    let short = format!("{}/team/t:2", reg.host());
    let dest = format!("docker://{short}");
    let cert_dir = tls.cert_dir().display().to_string();
    ok(&mut hoist(
        &cache,
        &[
            "--cert-dir",
            &cert_dir,
            "copy",
            &common::arg(&source, ":v1"),
            &dest,
        ],
    ));
    let out = ok(&mut hoist(
        &cache,
        &["--cert-dir", &cert_dir, "digest", &short],
    ));
    assert_eq!(printed(&out), image.manifest_digest);

    // Another self-signed certificate for the same address is no substitute.
    let other = TlsFiles::self_signed_ca(&["127.0.0.1"]).expect("TLS files");
    let other_dir = other.cert_dir().display().to_string();
    let out = hoist(&cache, &["--cert-dir", &other_dir, "digest", &short])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("presents a CA certificate as its own")
            && stderr.contains("hint: --cert-dir DIR trusts")
            && !stderr.contains("OtherError"),
        "{stderr}"
    );
}

#[test]
fn skopeo_tls_verify_false_and_retry_times_are_understood() {
    if !require_tool("docker-registry") {
        return;
    }
    let Scratch {
        tmp: _tmp,
        cache,
        source,
        image,
    } = scratch(1, 41);
    // A TLS registry whose CA hoist does not know, and a plain one.
    let untrusted = TlsFiles::generate().expect("TLS files");
    let tls = Registry::builder()
        .tls(&untrusted)
        .start()
        .expect("TLS registry");
    let plain = Registry::start().expect("registry");
    let on_tls = format!("{}/team/app:1", tls.host());
    let push = |extra: &[&str]| {
        hoist(&cache, extra)
            .arg("push")
            .arg(common::arg(&source, ":v1"))
            .arg(&on_tls)
            .output()
            .expect("run hoist")
    };

    // Without flags a loopback registry gets plain HTTP, which a TLS one answers with 400:
    // the hint names the flags (regression: it named none).
    let out = push(&["--retry-times", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hint: hoist speaks plain HTTP")
            && stderr.contains("--cert-dir DIR")
            && stderr.contains("--tls-verify=false")
            && stderr.contains(&format!("--insecure-registry {}", tls.host())),
        "{stderr}"
    );
    let out = push(&["--dest-tls-verify=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = ok(&mut hoist(
        &cache,
        &["--tls-verify=false", "digest", &on_tls],
    ));
    assert_eq!(printed(&out), image.manifest_digest);
    // Both sides named, as skopeo scripts often do: the plain registry still works.
    let copied = format!("docker://{}/team/app:1", plain.host());
    ok(&mut hoist(
        &cache,
        &[
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "copy",
            &format!("docker://{on_tls}"),
            &copied,
        ],
    ));
    assert_eq!(served(&cache, &copied), image.manifest_digest);
    // Go's flags need the `=`: a value after a space is no value, and nothing runs.
    let out = hoist(&cache, &["--tls-verify", "false", "digest", &on_tls])
        .output()
        .expect("run hoist");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
