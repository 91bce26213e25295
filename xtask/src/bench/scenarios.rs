//! The scenarios: each prepares its input once and names the command line of hoist and of every
//! peer doing the same job. Adding a scenario = one `prepare` function and one table entry.

use anyhow::Context;
use hoist_oci::Compression;
use hoist_testkit::{ImageSpec, LayerSpec, write_docker_archive};
use std::any::Any;
use std::path::{Path, PathBuf};

/// The placeholder in an argv replaced by a fresh, empty output directory for every run.
pub const OUT: &str = "{out}";

/// What every scenario gets.
#[derive(Debug)]
pub struct Ctx {
    /// The hoist binary under test.
    pub hoist: PathBuf,
    /// Image size in bytes (`--size`).
    pub size: u64,
    /// Where generated inputs are cached across bench invocations.
    pub cache: PathBuf,
}

/// One program doing the scenario's job.
#[derive(Debug, Clone)]
pub struct Contender {
    /// Column name, e.g. `hoist`, `skopeo copy`, `tar -x`.
    pub name: String,
    /// Whether this is hoist (ratios are hoist / each peer).
    pub is_hoist: bool,
    /// The executable that must exist (checked before anything runs).
    pub exe: String,
    /// What to install when `exe` is missing (a Debian package, or a build command).
    pub install: String,
    /// The command line; [`OUT`] is replaced by the run's output directory.
    pub argv: Vec<String>,
    /// A path relative to the output directory that a successful run must have created; a run
    /// that exits 0 without it counts as failed (a stub must not look fast).
    pub creates: String,
}

impl Contender {
    fn peer(name: &str, exe: &str, package: &str, argv: &[&str], creates: &str) -> Contender {
        Contender {
            name: name.to_string(),
            is_hoist: false,
            exe: exe.to_string(),
            install: format!("apt-get install {package}"),
            argv: argv.iter().map(ToString::to_string).collect(),
            creates: creates.to_string(),
        }
    }

    fn hoist(ctx: &Ctx, args: &[&str], creates: &str) -> Contender {
        let exe = ctx.hoist.to_string_lossy().into_owned();
        let mut argv = vec![exe.clone()];
        argv.extend(args.iter().map(ToString::to_string));
        Contender {
            name: "hoist".into(),
            is_hoist: true,
            exe,
            install: "cargo build --release -p hoist".into(),
            argv,
            creates: creates.to_string(),
        }
    }
}

/// A speed target from the issues: hoist's median wall time at most `max_ratio` x the peer's.
#[derive(Debug, Clone)]
pub struct Target {
    /// The peer's contender name.
    pub peer: String,
    /// Largest acceptable hoist/peer wall-time ratio.
    pub max_ratio: f64,
}

/// A prepared scenario: input ready, contenders named, guards held until it is done.
pub struct Prepared {
    /// Bytes of image the job moves (for throughput).
    pub input_bytes: u64,
    /// hoist first, then the peers, run alternately.
    pub contenders: Vec<Contender>,
    /// Targets to print PASS/MISS against.
    pub targets: Vec<Target>,
    /// Anything that must live as long as the scenario runs (temp dirs, testkit registries).
    #[allow(
        dead_code,
        reason = "never read: held so the guards drop when the scenario ends"
    )]
    pub keep: Vec<Box<dyn Any>>,
}

/// A named scenario.
pub struct Scenario {
    /// `--scenario` name.
    pub name: &'static str,
    /// One line for the report.
    pub about: &'static str,
    /// Build the input and the command lines.
    pub prepare: fn(&Ctx) -> anyhow::Result<Prepared>,
}

/// Every scenario, in report order. The other scenarios of the bench issue (push, push through a
/// body-limited proxy, daemon -> registry, export, pull, unpack, gzip/zstd, memory scaling,
/// 60 layers) plug in here: start what they need from `hoist_testkit` inside `prepare`, put the
/// guards in `keep`, and name the command lines.
pub const SCENARIOS: &[Scenario] = &[Scenario {
    name: "spool",
    about: "docker-archive -> OCI layout (hoist copy vs skopeo copy vs tar -x of the same file)",
    prepare: spool,
}];

/// A cached synthetic docker-archive of `size` bytes in 4 random layers.
fn cached_archive(ctx: &Ctx, name: &str) -> anyhow::Result<PathBuf> {
    let path = ctx.cache.join(format!("{name}-{}.tar", ctx.size));
    let done = path.with_extension("tar.done");
    if path.exists() && done.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(&ctx.cache)?;
    eprintln!(
        "bench: generating {} MiB docker-archive {}",
        ctx.size >> 20,
        path.display()
    );
    let per_layer = ctx.size / 4;
    let spec = ImageSpec {
        layers: (0..4)
            .map(|_| LayerSpec::new(8, per_layer).compression(Compression::None))
            .collect(),
        seed: 0xb3c4,
    };
    write_docker_archive(&path, "bench/spool:latest", &spec)
        .with_context(|| format!("generating {}", path.display()))?;
    std::fs::write(&done, b"")?;
    Ok(path)
}

fn spool(ctx: &Ctx) -> anyhow::Result<Prepared> {
    let archive = cached_archive(ctx, "spool")?;
    let input_bytes = std::fs::metadata(&archive)?.len();
    let a = archive.to_string_lossy().into_owned();
    let src = format!("docker-archive:{a}");
    let dst = format!("oci:{OUT}:bench");
    let tar_dst = OUT.to_string();
    Ok(Prepared {
        input_bytes,
        contenders: vec![
            Contender::hoist(ctx, &["copy", &src, &dst], "index.json"),
            Contender::peer(
                "skopeo copy",
                "skopeo",
                "skopeo",
                &["skopeo", "copy", "--quiet", &src, &dst],
                "index.json",
            ),
            Contender::peer(
                "tar -x",
                "tar",
                "tar",
                &["tar", "-x", "-f", &a, "-C", &tar_dst],
                "manifest.json",
            ),
        ],
        targets: Vec::new(),
        keep: Vec::new(),
    })
}

/// Replace [`OUT`] in every argument.
pub fn expand(argv: &[String], out: &Path) -> Vec<String> {
    let o = out.to_string_lossy();
    argv.iter().map(|a| a.replace(OUT, &o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_placeholder() {
        let argv = vec!["x".to_string(), format!("oci:{OUT}:t")];
        assert_eq!(expand(&argv, Path::new("/o")), vec!["x", "oci:/o:t"]);
    }
}
