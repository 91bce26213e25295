//! Scenarios with a private Docker daemon from the testkit (root only): export and push. The
//! daemon does the work for `docker save`/`docker push`: its CPU time is measured beside each
//! run, its memory is not counted.

use super::inputs::{self, REPO_TAG, TAG};
use super::{Contender, Ctx, OUT, Prepared, Servers, Target, Verify};
use anyhow::Context;
use hoist_testkit::{Dockerd, Registry};
use std::process::Command;

/// A daemon with the cached docker-archive loaded, and the archive's size.
pub(super) fn daemon_with_image(ctx: &Ctx) -> anyhow::Result<(Dockerd, u64)> {
    daemon_with(&inputs::archive(ctx)?)
}

/// A daemon with the docker-archive `archive` loaded, and the archive's size.
fn daemon_with(archive: &std::path::Path) -> anyhow::Result<(Dockerd, u64)> {
    let d = Dockerd::start()
        .context("starting a private dockerd (needs root, apt-get install docker.io)")?;
    d.run_docker(&["load", "-q", "-i", &archive.to_string_lossy()])?;
    Ok((d, std::fs::metadata(archive)?.len()))
}

/// The contender `name` running `docker ARGS` as `docker` (a daemon's [`Dockerd::docker`]) is
/// set up: its client binary and `-H`, and its environment (the daemon's private client config
/// dir in `DOCKER_CONFIG`, no buildkit), as every docker client invocation gets.
pub(super) fn docker_client(
    docker: &Command,
    name: &str,
    args: &[&str],
    verify: Verify,
) -> Contender {
    let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    let mut c = Contender::peer(name, "docker.io", &[], verify);
    c.argv = std::iter::once(text(docker.get_program()))
        .chain(docker.get_args().map(text))
        .chain(args.iter().map(ToString::to_string))
        .collect();
    c.exe.clone_from(&c.argv[0]);
    c.env = docker
        .get_envs()
        .filter_map(|(k, v)| Some((text(k), text(v?))))
        .collect();
    c
}

/// `docker save -o OUT/image.tar REPO_TAG` against the daemon `d`.
fn docker_save(d: &Dockerd, repo_tag: &str) -> Contender {
    docker_client(
        &d.docker(),
        "docker save",
        &["save", "-o", &format!("{OUT}/image.tar"), repo_tag],
        Verify::Creates("image.tar".into()),
    )
}

/// `save` (a [`docker_save`]), then `sync FILE` (an fsync of the archive): the cost of `docker
/// save` with the durability hoist gives each blob it writes, fsynced before it is renamed into
/// place. For context only: the export target is against plain `docker save`.
fn with_fsync(save: Contender) -> Contender {
    let mut c = save;
    let quoted: Vec<String> = c.argv.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("{} && sync '{OUT}/image.tar'", quoted.join(" "));
    c.name = "docker save + fsync".into();
    c.argv = ["sh", "-c", &script].map(String::from).to_vec();
    c
}

/// dockerd as the server whose CPU time is measured: it prepares every export.
fn dockerd_cpu(d: &Dockerd) -> Servers {
    let pid = d.pid();
    Servers {
        label: "dockerd",
        pids: Box::new(move || vec![pid]),
    }
}

/// Docker daemon -> OCI layout.
pub fn export(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let (d, bytes) = daemon_with_image(ctx)?;
    let host = d.docker_host();
    let save = docker_save(&d, REPO_TAG);
    let save_fsync = with_fsync(docker_save(&d, REPO_TAG));
    Ok(Prepared {
        input_bytes: bytes,
        contenders: vec![
            Contender::hoist(
                ctx,
                // `docker save` writes the layers uncompressed, as the daemon holds them; so does
                // hoist with `--compression none` (its default compresses for a later push).
                &[
                    "--compression",
                    "none",
                    "copy",
                    &format!("docker-daemon:{REPO_TAG}"),
                    &format!("oci:{OUT}:{TAG}"),
                ],
                Verify::Creates("index.json".into()),
            )
            .env("DOCKER_HOST", &host),
            save,
            save_fsync,
        ],
        targets: vec![Target::new("docker save", 1.1)],
        before_each: None,
        servers: Some(dockerd_cpu(&d)),
        keep: vec![Box::new(d)],
    })
}

/// The repo:tag of the 4x image in the export-scale scenario.
const REPO_TAG_4X: &str = "bench/image4x:latest";

/// Export memory scaling: hoist exports the image at `--size` and at 4x `--size` from one daemon
/// (its peak RSS must not grow with the image). `docker save` is timed at both sizes too, for
/// the wall-time ratio; its client holds no image data, the daemon does the work.
pub fn export_scale(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let (d, bytes) = daemon_with_image(ctx)?;
    let large = inputs::archive_sized(ctx, ctx.size * 4, REPO_TAG_4X)?;
    d.run_docker(&["load", "-q", "-i", &large.to_string_lossy()])?;
    let large_bytes = std::fs::metadata(&large)?.len();
    let host = d.docker_host();
    let pair = |repo_tag: &str, suffix: &str, bytes: u64| {
        let mut hoist = Contender::hoist(
            ctx,
            &[
                "--compression",
                "none",
                "copy",
                &format!("docker-daemon:{repo_tag}"),
                &format!("oci:{OUT}:{TAG}"),
            ],
            Verify::Creates("index.json".into()),
        )
        .env("DOCKER_HOST", &host);
        hoist.name.push_str(suffix);
        hoist.is_hoist = suffix.is_empty();
        hoist.bytes = Some(bytes);
        let mut save = docker_save(&d, repo_tag);
        save.name.push_str(suffix);
        save.bytes = Some(bytes);
        [hoist, save]
    };
    let mut contenders = Vec::from(pair(REPO_TAG, "", bytes));
    contenders.extend(pair(REPO_TAG_4X, " 4x", large_bytes));
    Ok(Prepared {
        input_bytes: bytes,
        contenders,
        targets: vec![Target::rss("hoist 4x", "hoist", 1.1)],
        before_each: None,
        servers: Some(dockerd_cpu(&d)),
        keep: vec![Box::new(d)],
    })
}

/// Docker daemon -> registry (docker treats 127.0.0.0/8 registries as insecure by default), with
/// the random layers every scenario uses: hoist's gzip stores blocks that do not compress, while
/// dockerd deflates every byte, so the two do different work (the target says so).
pub fn push(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let (d, bytes) = daemon_with_image(ctx)?;
    let mut p = push_from(ctx, d, bytes, REPO_TAG)?;
    p.targets = vec![Target::new("docker push", 0.6).caveat(RANDOM_CAVEAT)];
    Ok(p)
}

/// What the daemon-push verdict compares.
const RANDOM_CAVEAT: &str = "random layers: hoist stores incompressible blocks, dockerd deflates \
                             every byte, so the work differs; daemon-push-text has compressible \
                             layers";

/// The repo:tag of the text image in the daemon-push-text scenario.
const REPO_TAG_TEXT: &str = "bench/text:latest";

/// As [`push`], with an image of text layers (compressible several-fold) at a quarter of
/// `--size`, so both clients compress every byte; the issues set no target for it.
pub fn push_text(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let archive = inputs::archive_text(ctx, ctx.size / 4, REPO_TAG_TEXT)?;
    let (d, bytes) = daemon_with(&archive)?;
    push_from(ctx, d, bytes, REPO_TAG_TEXT)
}

/// The daemon `d`'s image `repo_tag` (of `bytes` uncompressed) -> a fresh registry, by hoist
/// and by `docker push`, the registry emptied before every run; no targets.
fn push_from(ctx: &Ctx, d: Dockerd, bytes: u64, repo_tag: &str) -> anyhow::Result<Prepared> {
    let registry = Registry::start()?;
    let host = registry.host();
    let remote_tag = format!("{host}/bench/image:{TAG}");
    d.run_docker(&["tag", repo_tag, &remote_tag])?;
    let verify = Verify::Manifest {
        addr: registry.addr(),
        repo: "bench/image".into(),
        tag: TAG.into(),
    };
    let docker_push = docker_client(
        &d.docker(),
        "docker push",
        &["push", "-q", &remote_tag],
        verify.clone(),
    );
    let (registry, reset, registry_cpu) = super::registry::resettable(registry);
    Ok(Prepared {
        input_bytes: bytes,
        contenders: vec![
            Contender::hoist(
                ctx,
                &[
                    "copy",
                    "--insecure-registry",
                    &host,
                    &format!("docker-daemon:{repo_tag}"),
                    &format!("docker://{remote_tag}"),
                ],
                verify,
            )
            .env("DOCKER_HOST", &d.docker_host()),
            docker_push,
        ],
        targets: Vec::new(),
        before_each: Some(reset),
        servers: Some(registry_cpu.and(d.pid(), "dockerd + registry")),
        keep: vec![Box::new(registry), Box::new(d)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_docker_client_gets_the_daemons_environment() {
        let mut docker = Command::new("/usr/bin/docker");
        docker
            .args(["-H", "unix:///d/docker.sock"])
            .env("DOCKER_CONFIG", "/d/client-config")
            .env("DOCKER_BUILDKIT", "0");
        let save = docker_client(
            &docker,
            "docker save",
            &["save", "-o", "{out}/image.tar", "x:1"],
            Verify::Creates("image.tar".into()),
        );
        assert_eq!(
            save.argv,
            [
                "/usr/bin/docker",
                "-H",
                "unix:///d/docker.sock",
                "save",
                "-o",
                "{out}/image.tar",
                "x:1"
            ]
        );
        assert_eq!(save.exe, "/usr/bin/docker");
        let env = |k: &str, v: &str| (k.to_string(), v.to_string());
        let want = [
            env("DOCKER_BUILDKIT", "0"),
            env("DOCKER_CONFIG", "/d/client-config"),
        ];
        assert_eq!(save.env, want);
        // The fsync variant runs the same client, with the same environment, inside `sh -c`.
        let fsync = with_fsync(save);
        assert_eq!(
            fsync.argv[2],
            "'/usr/bin/docker' '-H' 'unix:///d/docker.sock' 'save' '-o' '{out}/image.tar' \
             'x:1' && sync '{out}/image.tar'"
        );
        assert_eq!(
            (fsync.exe.as_str(), fsync.env),
            ("/usr/bin/docker", want.to_vec())
        );
    }
}
