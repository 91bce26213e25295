//! The scenarios: each prepares its input once and names the command line of hoist and of every
//! peer doing the same job. Adding a scenario = one `prepare` function and one table entry.

mod daemon;
mod inputs;
mod local;
mod registry;

use std::any::Any;
use std::net::SocketAddr;
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

/// How to tell that a run really did its job (a stub exiting 0 must not look fast).
#[derive(Debug, Clone)]
pub enum Verify {
    /// This path, relative to the output directory, exists afterwards.
    Creates(String),
    /// The registry serves this manifest afterwards.
    Manifest {
        /// Registry address.
        addr: SocketAddr,
        /// Repository.
        repo: String,
        /// Tag.
        tag: String,
    },
}

impl Verify {
    /// Whether the job was done, given the run's output directory.
    pub fn check(&self, out: &Path) -> bool {
        match self {
            Verify::Creates(p) => out.join(p).exists(),
            Verify::Manifest { addr, repo, tag } => hoist_testkit::http_request(
                *addr,
                "GET",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[(
                    "Accept",
                    "application/vnd.oci.image.manifest.v1+json, \
                     application/vnd.docker.distribution.manifest.v2+json",
                )],
                b"",
            )
            .is_ok_and(|r| r.status == 200),
        }
    }
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
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// How a successful run is recognised.
    pub verify: Verify,
    /// Bytes this contender moves, when not the scenario's `input_bytes` (scaling runs).
    pub bytes: Option<u64>,
}

impl Contender {
    /// A peer tool from a Debian package.
    pub fn peer(name: &str, package: &str, argv: &[&str], verify: Verify) -> Contender {
        Contender {
            name: name.to_string(),
            is_hoist: false,
            exe: argv.first().map(ToString::to_string).unwrap_or_default(),
            install: format!("apt-get install {package}"),
            argv: argv.iter().map(ToString::to_string).collect(),
            env: Vec::new(),
            verify,
            bytes: None,
        }
    }

    /// hoist with these arguments.
    pub fn hoist(ctx: &Ctx, args: &[&str], verify: Verify) -> Contender {
        let exe = ctx.hoist.to_string_lossy().into_owned();
        let mut argv = vec![exe.clone()];
        argv.extend(args.iter().map(ToString::to_string));
        Contender {
            name: "hoist".into(),
            is_hoist: true,
            exe,
            install: "cargo build --release -p hoist".into(),
            argv,
            env: Vec::new(),
            verify,
            bytes: None,
        }
    }

    /// Add an environment variable.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Contender {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

/// Which measurement a target compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Median wall time.
    Wall,
    /// Median peak RSS.
    Rss,
    /// `of` succeeds in every run (a peer's failures are reported, not required).
    Succeeds,
}

/// A target from the issues: `metric(of) / metric(over) <= max_ratio`, by contender name.
#[derive(Debug, Clone)]
pub struct Target {
    /// The numerator contender (usually `hoist`).
    pub of: String,
    /// The denominator contender.
    pub over: String,
    /// What is compared.
    pub metric: Metric,
    /// Largest acceptable ratio.
    pub max_ratio: f64,
    /// What the reader must know to read the verdict (said on its line).
    pub caveat: Option<&'static str>,
}

impl Target {
    /// hoist's wall time at most `max_ratio` x the peer's.
    fn new(peer: &str, max_ratio: f64) -> Target {
        Target {
            of: "hoist".into(),
            over: peer.to_string(),
            metric: Metric::Wall,
            max_ratio,
            caveat: None,
        }
    }

    /// hoist succeeds in every run where `peer` is expected to fail (e.g. a 413 through a
    /// body-limited proxy); the verdict shows how often each did.
    fn succeeds(peer: &str) -> Target {
        Target {
            of: "hoist".into(),
            over: peer.to_string(),
            metric: Metric::Succeeds,
            max_ratio: 0.0,
            caveat: None,
        }
    }

    /// The same target, with `caveat` on its verdict line.
    #[must_use]
    fn caveat(mut self, caveat: &'static str) -> Target {
        self.caveat = Some(caveat);
        self
    }

    /// `of`'s peak RSS at most `max_ratio` x `over`'s.
    fn rss(of: &str, over: &str, max_ratio: f64) -> Target {
        Target {
            of: of.to_string(),
            over: over.to_string(),
            metric: Metric::Rss,
            max_ratio,
            caveat: None,
        }
    }
}

/// Called before every single run (e.g. to empty the registry so every push uploads).
pub type BeforeEach = Box<dyn FnMut() -> anyhow::Result<()>>;

/// The servers that do part of a scenario's job (a registry, dockerd). Their own CPU time
/// during each run is read from `/proc` and reported beside each contender's: a registry spends
/// as much on a push as the client does, and `docker push` compresses inside dockerd.
pub struct Servers {
    /// What they are, for the report: `registry`, `dockerd + registry`.
    pub label: &'static str,
    /// Their pids now (emptying a registry restarts it under a new pid).
    pub pids: Box<dyn Fn() -> Vec<u32>>,
}

impl Servers {
    /// These servers and the process `pid` (one that does not restart), as `label`.
    #[must_use]
    pub fn and(self, pid: u32, label: &'static str) -> Servers {
        Servers {
            label,
            pids: Box::new(move || {
                let mut pids = (self.pids)();
                pids.push(pid);
                pids
            }),
        }
    }
}

/// A prepared scenario: input ready, contenders named, guards held until it is done.
pub struct Prepared {
    /// Bytes of image the job moves (for throughput).
    pub input_bytes: u64,
    /// hoist first, then the peers, run alternately.
    pub contenders: Vec<Contender>,
    /// Targets to print PASS/MISS against.
    pub targets: Vec<Target>,
    /// Reset shared state before each run.
    pub before_each: Option<BeforeEach>,
    /// Servers whose CPU time is measured with each run.
    pub servers: Option<Servers>,
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
    /// The programs it runs or starts (peers, servers), checked before any scenario runs;
    /// hoist is built by the bench.
    pub needs: &'static [&'static str],
    /// Whether it needs root (it starts a private dockerd).
    pub root: bool,
    /// Build the input and the command lines.
    pub prepare: fn(&Ctx) -> anyhow::Result<Prepared>,
}

/// What the `selected` scenarios need and this machine lacks, one line per missing program
/// (with the Debian package) or for root, naming the scenarios that need it. `have` says
/// whether a program is installed.
pub fn missing_needs(
    selected: &[&Scenario],
    have: impl Fn(&str) -> bool,
    is_root: bool,
) -> Vec<String> {
    let needing = |need: &dyn Fn(&Scenario) -> bool| -> String {
        let names: Vec<&str> = selected
            .iter()
            .filter(|s| need(s))
            .map(|s| s.name)
            .collect();
        names.join(", ")
    };
    let mut programs: Vec<&str> = selected
        .iter()
        .flat_map(|s| s.needs.iter().copied())
        .collect();
    programs.sort_unstable();
    programs.dedup();
    let mut missing: Vec<String> = programs
        .into_iter()
        .filter(|exe| !have(exe))
        .map(|exe| {
            format!(
                "{exe} (apt-get install {}), for {}",
                hoist_testkit::package_for(exe),
                needing(&|s| s.needs.contains(&exe))
            )
        })
        .collect();
    if !is_root && selected.iter().any(|s| s.root) {
        missing.push(format!(
            "root (they start a private dockerd), for {}",
            needing(&|s| s.root)
        ));
    }
    missing
}

/// What the registry scenarios start and run.
const REGISTRY: &[&str] = &["docker-registry", "skopeo"];
/// What the daemon export scenarios start and run.
const DAEMON: &[&str] = &["dockerd", "docker", "sh", "sync"];

/// What the daemon push scenarios start and run.
const DAEMON_PUSH: &[&str] = &["dockerd", "docker", "docker-registry"];

/// Every scenario, in report order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "spool",
        about: "docker-archive -> OCI layout (hoist copy vs skopeo copy vs tar -x of the file)",
        needs: &["skopeo", "tar"],
        root: false,
        prepare: local::spool,
    },
    Scenario {
        name: "push",
        about: "OCI layout (gzip) -> local registry (hoist vs skopeo copy)",
        needs: REGISTRY,
        root: false,
        prepare: registry::push,
    },
    Scenario {
        name: "push-proxy",
        about: "image -> registry behind nginx with a 64 MiB body limit (hoist vs skopeo copy vs \
                docker push; daemon memory not counted)",
        needs: &["docker-registry", "nginx", "skopeo", "dockerd", "docker"],
        root: true,
        prepare: registry::push_proxy,
    },
    Scenario {
        name: "scale",
        about: "memory scaling: the push at --size and at 4x --size (hoist vs skopeo copy)",
        needs: REGISTRY,
        root: false,
        prepare: registry::scale,
    },
    Scenario {
        name: "layers60",
        about: "60-layer image, layers alternating gzip and zstd, pushed (hoist vs skopeo copy)",
        needs: REGISTRY,
        root: false,
        prepare: registry::layers60,
    },
    Scenario {
        name: "recompress",
        about: "OCI layout (gzip) -> local registry as zstd (hoist --recompress vs skopeo copy \
                --dest-compress-format zstd)",
        needs: REGISTRY,
        root: false,
        prepare: registry::recompress,
    },
    Scenario {
        name: "pull",
        about: "local registry -> OCI layout (hoist vs skopeo copy)",
        needs: REGISTRY,
        root: false,
        prepare: registry::pull,
    },
    Scenario {
        name: "unpack",
        about: "OCI layout (gzip) -> root filesystem (hoist vs umoci vs gzip -dc | tar -x)",
        needs: &["umoci", "gzip", "tar", "sh"],
        root: false,
        prepare: local::unpack_gzip,
    },
    Scenario {
        name: "unpack-zstd",
        about: "OCI layout (zstd) -> root filesystem (hoist vs zstd -dc | tar -x)",
        needs: &["zstd", "tar", "sh"],
        root: false,
        prepare: local::unpack_zstd,
    },
    Scenario {
        name: "export",
        about: "Docker daemon -> OCI layout (hoist vs docker save, and for context docker \
                save followed by an fsync of its archive; daemon memory not counted)",
        needs: DAEMON,
        root: true,
        prepare: daemon::export,
    },
    Scenario {
        name: "export-scale",
        about: "memory scaling of the export: daemon -> OCI layout at --size and at 4x --size \
                (hoist vs docker save; daemon memory not counted)",
        needs: DAEMON,
        root: true,
        prepare: daemon::export_scale,
    },
    Scenario {
        name: "daemon-push",
        about: "Docker daemon -> local registry, random layers (hoist vs docker push; daemon \
                memory not counted)",
        needs: DAEMON_PUSH,
        root: true,
        prepare: daemon::push,
    },
    Scenario {
        name: "daemon-push-text",
        about: "Docker daemon -> local registry, compressible text layers at a quarter of --size \
                (hoist vs docker push, both compressing every byte; daemon memory not counted)",
        needs: DAEMON_PUSH,
        root: true,
        prepare: daemon::push_text,
    },
];

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

    #[test]
    fn missing_programs_and_root_are_named_with_their_scenarios_before_anything_runs() {
        let pick = |names: &[&str]| -> Vec<&Scenario> {
            SCENARIOS
                .iter()
                .filter(|s| names.contains(&s.name))
                .collect()
        };
        let selected = pick(&["spool", "export", "daemon-push", "unpack"]);
        let missing = missing_needs(&selected, |exe| !["dockerd", "umoci"].contains(&exe), false);
        assert_eq!(
            missing,
            [
                "dockerd (apt-get install docker.io), for export, daemon-push",
                "umoci (apt-get install umoci), for unpack",
                "root (they start a private dockerd), for export, daemon-push",
            ]
        );
        assert!(missing_needs(&selected, |_| true, true).is_empty());
        assert!(missing_needs(&pick(&["spool"]), |_| true, false).is_empty());
        // Every scenario that starts a daemon needs root, and says so.
        for s in SCENARIOS {
            assert_eq!(s.root, s.needs.contains(&"dockerd"), "{}", s.name);
        }
    }

    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
    }
}
