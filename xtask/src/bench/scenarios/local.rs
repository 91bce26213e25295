//! Scenarios without a server: spooling a docker-archive, unpacking a layout.

use super::inputs::{self, TAG};
use super::{Contender, Ctx, OUT, Prepared, Target, Verify};
use hoist_oci::Compression;

/// docker-archive -> OCI layout.
pub fn spool(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let archive = inputs::archive(ctx)?;
    let a = archive.to_string_lossy().into_owned();
    let src = format!("docker-archive:{a}");
    let dst = format!("oci:{OUT}:{TAG}");
    let index = || Verify::Creates("index.json".into());
    Ok(Prepared {
        input_bytes: std::fs::metadata(&archive)?.len(),
        contenders: vec![
            Contender::hoist(ctx, &["copy", &src, &dst], index()),
            Contender::peer(
                "skopeo copy",
                "skopeo",
                &["skopeo", "copy", "--quiet", &src, &dst],
                index(),
            ),
            Contender::peer(
                "tar -x",
                "tar",
                &["tar", "-x", "-f", &a, "-C", OUT],
                Verify::Creates("manifest.json".into()),
            ),
        ],
        targets: Vec::new(),
        before_each: None,
        servers: None,
        keep: Vec::new(),
    })
}

/// The per-layer `DECOMPRESS -dc BLOB | tar -x -C OUT` pipeline, as one `sh -c` script.
fn shell_pipeline(decompress: &str, blobs: &[std::path::PathBuf]) -> String {
    blobs
        .iter()
        .map(|b| format!("{decompress} -dc '{}' | tar -x -C '{OUT}'", b.display()))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// OCI layout (gzip) -> rootfs.
pub fn unpack_gzip(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let layout = inputs::layout(ctx, Compression::Gzip)?;
    let l = layout.dir.to_string_lossy().into_owned();
    let src = format!("oci:{l}:{TAG}");
    let dst = format!("rootfs:{OUT}/rootfs");
    let script = shell_pipeline("gzip", &layout.layer_blobs);
    let rootfs = || Verify::Creates("rootfs/data".into());
    let mut shell = Contender::peer(
        "gzip -dc | tar -x",
        "gzip",
        &["sh", "-c", &script],
        Verify::Creates("data".into()),
    );
    shell.exe = "gzip".into();
    Ok(Prepared {
        input_bytes: layout.bytes,
        contenders: vec![
            Contender::hoist(ctx, &["copy", &src, &dst], rootfs()),
            Contender::peer(
                "umoci unpack",
                "umoci",
                &[
                    "umoci",
                    "unpack",
                    "--rootless",
                    "--image",
                    &format!("{l}:{TAG}"),
                    &format!("{OUT}/bundle"),
                ],
                Verify::Creates("bundle/rootfs/data".into()),
            ),
            shell,
        ],
        targets: vec![
            Target::new("umoci unpack", 0.4),
            Target::new("gzip -dc | tar -x", 0.9),
        ],
        before_each: None,
        servers: None,
        keep: Vec::new(),
    })
}

/// OCI layout (zstd) -> rootfs (umoci 0.4 cannot read zstd layers).
pub fn unpack_zstd(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let layout = inputs::layout(ctx, Compression::Zstd)?;
    let l = layout.dir.to_string_lossy().into_owned();
    let src = format!("oci:{l}:{TAG}");
    let dst = format!("rootfs:{OUT}/rootfs");
    let script = shell_pipeline("zstd", &layout.layer_blobs);
    let mut shell = Contender::peer(
        "zstd -dc | tar -x",
        "zstd",
        &["sh", "-c", &script],
        Verify::Creates("data".into()),
    );
    shell.exe = "zstd".into();
    Ok(Prepared {
        input_bytes: layout.bytes,
        contenders: vec![
            Contender::hoist(
                ctx,
                &["copy", &src, &dst],
                Verify::Creates("rootfs/data".into()),
            ),
            shell,
        ],
        targets: vec![Target::new("zstd -dc | tar -x", 0.9)],
        before_each: None,
        servers: None,
        keep: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_script() {
        let s = shell_pipeline("gzip", &["/a/1".into(), "/a/2".into()]);
        assert_eq!(
            s,
            "gzip -dc '/a/1' | tar -x -C '{out}' && gzip -dc '/a/2' | tar -x -C '{out}'"
        );
    }
}
