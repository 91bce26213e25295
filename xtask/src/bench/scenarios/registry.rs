//! Scenarios against a fresh local registry from the testkit: push, push through a body-limited
//! proxy, pull.

use super::inputs::{self, TAG};
use super::{Contender, Ctx, OUT, Prepared, Servers, Target, Verify};
use anyhow::Context;
use hoist_oci::Compression;
use hoist_testkit::{Nginx, Registry};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

const REPO: &str = "bench/image";

fn manifest(addr: SocketAddr) -> Verify {
    Verify::Manifest {
        addr,
        repo: REPO.into(),
        tag: TAG.into(),
    }
}

/// hoist's and skopeo's command lines pushing `layout` to `target`; names get `suffix`.
fn push_pair(
    ctx: &Ctx,
    layout: &inputs::Layout,
    target: SocketAddr,
    suffix: &str,
) -> Vec<Contender> {
    let src = format!("oci:{}:{TAG}", layout.dir.display());
    let host = target.to_string();
    let dst = format!("docker://{host}/{REPO}:{TAG}");
    let mut hoist = Contender::hoist(
        ctx,
        &["copy", "--insecure-registry", &host, &src, &dst],
        manifest(target),
    );
    hoist.name.push_str(suffix);
    hoist.is_hoist = suffix.is_empty();
    let mut skopeo = Contender::peer(
        "skopeo copy",
        "skopeo",
        &[
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &src,
            &dst,
        ],
        manifest(target),
    );
    skopeo.name.push_str(suffix);
    hoist.bytes = Some(layout.bytes);
    skopeo.bytes = Some(layout.bytes);
    vec![hoist, skopeo]
}

/// A registry wrapped so `before_each` can empty it, the closure that does, and the registry
/// as a server whose CPU time is measured (under its pid of the moment: emptying restarts it).
pub(super) fn resettable(
    registry: Registry,
) -> (Rc<RefCell<Registry>>, super::BeforeEach, Servers) {
    let registry = Rc::new(RefCell::new(registry));
    let reg = Rc::clone(&registry);
    let reset: super::BeforeEach =
        Box::new(move || reg.borrow_mut().reset().context("emptying the registry"));
    let reg = Rc::clone(&registry);
    let servers = Servers {
        label: "registry",
        pids: Box::new(move || vec![reg.borrow().pid()]),
    };
    (registry, reset, servers)
}

/// hoist and skopeo pushing the cached gzip layout to `target` (the registry or a proxy in
/// front of it), with the registry emptied before every run.
fn push_to(
    ctx: &Ctx,
    registry: Registry,
    target: SocketAddr,
    proxy: Option<Nginx>,
) -> anyhow::Result<Prepared> {
    let layout = inputs::layout(ctx, Compression::Gzip)?;
    let (registry, reset, servers) = resettable(registry);
    let mut keep: Vec<Box<dyn std::any::Any>> = vec![Box::new(registry)];
    if let Some(p) = proxy {
        keep.push(Box::new(p));
    }
    Ok(Prepared {
        input_bytes: layout.bytes,
        contenders: push_pair(ctx, &layout, target, ""),
        targets: vec![Target::new("skopeo copy", 0.5)],
        before_each: Some(reset),
        servers: Some(servers),
        keep,
    })
}

/// Memory scaling: the push at `--size` and at 4x `--size` (hoist's peak RSS must not grow).
pub fn scale(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let small = inputs::layout_sized(ctx, ctx.size)?;
    let large = inputs::layout_sized(ctx, ctx.size * 4)?;
    let registry = Registry::start()?;
    let addr = registry.addr();
    let (registry, reset, servers) = resettable(registry);
    let mut contenders = push_pair(ctx, &small, addr, "");
    contenders.extend(push_pair(ctx, &large, addr, " 4x"));
    Ok(Prepared {
        input_bytes: small.bytes,
        contenders,
        targets: vec![Target::rss("hoist 4x", "hoist", 1.1)],
        before_each: Some(reset),
        servers: Some(servers),
        keep: vec![Box::new(registry)],
    })
}

/// Many small layers: 60 layers alternating gzip and zstd, pushed.
pub fn layers60(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let layout = inputs::layout_many(ctx, 60)?;
    let registry = Registry::start()?;
    let addr = registry.addr();
    let (registry, reset, servers) = resettable(registry);
    Ok(Prepared {
        input_bytes: layout.bytes,
        contenders: push_pair(ctx, &layout, addr, ""),
        targets: vec![Target::new("skopeo copy", 0.5)],
        before_each: Some(reset),
        servers: Some(servers),
        keep: vec![Box::new(registry)],
    })
}

/// OCI layout -> registry.
pub fn push(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let registry = Registry::start()?;
    let addr = registry.addr();
    push_to(ctx, registry, addr, None)
}

/// OCI layout (gzip) -> registry with every layer recompressed to zstd on the way (`hoist
/// --compression zstd copy --recompress` against `skopeo copy --dest-compress-format zstd`),
/// the registry emptied before every run. The issues set no target for it: the report gives
/// the ratio, and hoist's peak RSS is held to the same limit as everywhere.
pub fn recompress(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let registry = Registry::start()?;
    let addr = registry.addr();
    let mut p = push_to(ctx, registry, addr, None)?;
    for contender in &mut p.contenders {
        let copy = contender
            .argv
            .iter()
            .position(|a| a == "copy")
            .context("a copy command line")?;
        let (before, after): (&[&str], &[&str]) = match contender.is_hoist {
            true => (&["--compression", "zstd"], &["--recompress"]),
            false => (&[], &["--dest-compress-format", "zstd"]),
        };
        let at = copy + 1;
        contender
            .argv
            .splice(at..at, after.iter().map(ToString::to_string));
        contender
            .argv
            .splice(copy..copy, before.iter().map(ToString::to_string));
    }
    p.targets = Vec::new();
    Ok(p)
}

/// The proxy's body limit in the push-proxy scenario.
const PROXY_LIMIT: u64 = 64 << 20;

/// OCI layout -> nginx (64 MiB body limit, unbuffered) -> registry, for hoist and skopeo; and
/// the same image from a private dockerd (loaded once from the cached docker-archive) for
/// `docker push`. Peers that send a layer in one request get 413 from the proxy, and are
/// reported as failed.
pub fn push_proxy(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let layer = ctx.size / inputs::LAYERS;
    if layer < PROXY_LIMIT {
        eprintln!(
            "bench: WARNING push-proxy: layers of {} MiB fit under the proxy's {} MiB limit, so \
             no contender is expected to fail; use --size above {} MiB to exercise the limit",
            layer >> 20,
            PROXY_LIMIT >> 20,
            (PROXY_LIMIT * inputs::LAYERS) >> 20
        );
    }
    let (dockerd, archive_bytes) = super::daemon::daemon_with_image(ctx)?;
    let registry = Registry::start()?;
    let proxy = Nginx::builder(registry.addr())
        .max_body_size(PROXY_LIMIT)
        .request_buffering(false)
        .start()?;
    let addr = proxy.addr();
    // docker 20.10 treats 127.0.0.0/8 registries as insecure (plain HTTP) by default, and the
    // testkit dockerd shares the host's network namespace, so it reaches the proxy's port.
    let remote_tag = format!("{addr}/{REPO}:{TAG}");
    dockerd.run_docker(&["tag", inputs::REPO_TAG, &remote_tag])?;
    let mut p = push_to(ctx, registry, addr, Some(proxy))?;
    // A chunk size safely below the limit.
    p.contenders[0]
        .argv
        .splice(2..2, ["--chunk-size".to_string(), "32MiB".to_string()]);
    let mut docker_push = super::daemon::docker_client(
        &dockerd.docker(),
        "docker push",
        &["push", "-q", &remote_tag],
        manifest(addr),
    );
    // The daemon compresses the uncompressed layers it holds and sends them; its memory is not
    // counted.
    docker_push.bytes = Some(archive_bytes);
    p.contenders.push(docker_push);
    // skopeo and docker send each layer in one request and get 413: the target is to succeed.
    p.targets = vec![
        Target::succeeds("skopeo copy"),
        Target::succeeds("docker push"),
    ];
    // dockerd compresses and sends the layers for `docker push`.
    p.servers = p
        .servers
        .take()
        .map(|registry| registry.and(dockerd.pid(), "registry + dockerd"));
    p.keep.push(Box::new(dockerd));
    Ok(p)
}

/// registry -> OCI layout (the registry is filled once, by skopeo, before the runs).
pub fn pull(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let layout = inputs::layout(ctx, Compression::Gzip)?;
    let registry = Registry::start()?;
    let host = registry.host();
    let remote = format!("docker://{host}/{REPO}:{TAG}");
    let status = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{TAG}", layout.dir.display()))
        .arg(&remote)
        .status()
        .context("running skopeo to fill the registry (apt-get install skopeo)")?;
    anyhow::ensure!(status.success(), "skopeo could not fill the registry");
    let dst = format!("oci:{OUT}:{TAG}");
    let index = || Verify::Creates("index.json".into());
    let pid = registry.pid();
    Ok(Prepared {
        input_bytes: layout.bytes,
        contenders: vec![
            Contender::hoist(
                ctx,
                &["copy", "--insecure-registry", &host, &remote, &dst],
                index(),
            ),
            Contender::peer(
                "skopeo copy",
                "skopeo",
                &[
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    &remote,
                    &dst,
                ],
                index(),
            ),
        ],
        targets: vec![Target::new("skopeo copy", 0.6)],
        before_each: None,
        servers: Some(Servers {
            label: "registry",
            pids: Box::new(move || vec![pid]),
        }),
        keep: vec![Box::new(registry)],
    })
}
