//! The hostile-layer corpus: every item of the security list, each checked to change
//! nothing outside the root, and either to fail naming the hostile entry or to stay confined.
#![allow(clippy::disallowed_methods)] // tests build and inspect trees from outside the root

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{Tar, snapshot};
use hoist_unpack::{Error, LayerInfo, Limits, Unpacker};

enum Expect {
    /// Fails with an error naming this entry.
    Err(&'static str),
    /// Succeeds; the check gets the root path and the outside path.
    Ok(fn(&Path, &Path)),
    /// Fails with a limit error naming this entry.
    Limit(&'static str),
}

struct Case {
    name: &'static str,
    layers: fn(&str) -> Vec<Vec<u8>>,
    expect: Expect,
    limits: Limits,
}

fn case(name: &'static str, layers: fn(&str) -> Vec<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        layers,
        expect,
        limits: Limits::default(),
    }
}

fn one(f: impl FnOnce(&mut Tar)) -> Vec<Vec<u8>> {
    let mut t = Tar::new();
    f(&mut t);
    vec![t.finish()]
}

fn two(f: impl FnOnce(&mut Tar), g: impl FnOnce(&mut Tar)) -> Vec<Vec<u8>> {
    let mut a = Tar::new();
    f(&mut a);
    let mut b = Tar::new();
    g(&mut b);
    vec![a.finish(), b.finish()]
}

/// The outside path as seen re-rooted inside the root.
fn rerooted(root: &Path, outside: &Path) -> PathBuf {
    root.join(outside.strip_prefix("/").expect("absolute"))
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "dotdot file",
            |_| {
                one(|t| {
                    t.file("../escape", b"x");
                })
            },
            Expect::Err("../escape"),
        ),
        case(
            "dotdot overwrite",
            |_| {
                one(|t| {
                    t.file("../outside/secret", b"pwned");
                })
            },
            Expect::Err("../outside/secret"),
        ),
        case(
            "inner dotdot",
            |_| {
                one(|t| {
                    t.file("a/../../escape", b"x");
                })
            },
            Expect::Err("a/../../escape"),
        ),
        case(
            "dot then dotdot",
            |_| {
                one(|t| {
                    t.file("./../escape", b"x");
                })
            },
            Expect::Err("./../escape"),
        ),
        case(
            "dotdot dir",
            |_| {
                one(|t| {
                    t.dir("../newdir/");
                })
            },
            Expect::Err("../newdir/"),
        ),
        case(
            "dotdot symlink name",
            |_| {
                one(|t| {
                    t.symlink("../link", "/");
                })
            },
            Expect::Err("../link"),
        ),
        case(
            "dotdot fifo",
            |_| {
                one(|t| {
                    t.fifo("../fifo");
                })
            },
            Expect::Err("../fifo"),
        ),
        case(
            "dotdot device",
            |_| {
                one(|t| {
                    t.char_dev("../null", 1, 3);
                })
            },
            Expect::Err("../null"),
        ),
        case(
            "absolute file",
            |o| {
                let name = format!("{o}/secret");
                one(move |t| {
                    t.file(&name, b"pwned");
                })
            },
            Expect::Err("/"),
        ),
        case(
            "absolute new file",
            |_| {
                one(|t| {
                    t.file("/tmp-hoist-escape", b"x");
                })
            },
            Expect::Err("/tmp-hoist-escape"),
        ),
        case(
            "long name dotdot",
            |_| {
                let name = format!("../{}", "n".repeat(150));
                one(move |t| {
                    t.file(&name, b"x");
                })
            },
            Expect::Err("../"),
        ),
        case(
            "pax path dotdot",
            |_| {
                one(|t| {
                    t.pax(&[("path", b"../escape")]).file("benign", b"x");
                })
            },
            Expect::Err("../escape"),
        ),
        case(
            "hardlink name dotdot",
            |_| {
                one(|t| {
                    t.file("a", b"x").hardlink("../hl", "a");
                })
            },
            Expect::Err("../hl"),
        ),
        case(
            "hardlink target dotdot",
            |_| {
                one(|t| {
                    t.hardlink("hl", "../outside/secret");
                })
            },
            Expect::Err("hl"),
        ),
        case(
            "hardlink target absolute",
            |o| {
                let target = format!("{o}/secret");
                one(move |t| {
                    t.hardlink("hl", &target);
                })
            },
            Expect::Err("hl"),
        ),
        case(
            "hardlink via planted symlink",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("s", &o);
                    },
                    |t| {
                        t.hardlink("hl", "s/secret");
                    },
                )
            },
            Expect::Err("hl"),
        ),
        case(
            "hardlink to planted symlink",
            |o| {
                let target = format!("{o}/secret");
                two(
                    move |t| {
                        t.symlink("s", &target);
                    },
                    |t| {
                        t.hardlink("hl", "s");
                    },
                )
            },
            Expect::Ok(|root, _| {
                let md = std::fs::symlink_metadata(root.join("hl")).expect("hl");
                assert!(md.file_type().is_symlink(), "links the symlink itself");
            }),
        ),
        case(
            "hardlink missing target",
            |_| {
                one(|t| {
                    t.hardlink("hl", "nothing");
                })
            },
            Expect::Err("hl"),
        ),
        case(
            "write through symlink from earlier layer (absolute)",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("evil", &o);
                    },
                    |t| {
                        t.file("evil/secret", b"pwned");
                    },
                )
            },
            Expect::Ok(|root, outside| {
                assert_eq!(
                    std::fs::read(rerooted(root, outside).join("secret")).expect("confined"),
                    b"pwned"
                );
            }),
        ),
        case(
            "write through symlink from earlier layer (relative)",
            |_| {
                two(
                    |t| {
                        t.symlink("evil", "../../../../../../outside");
                    },
                    |t| {
                        t.file("evil/secret", b"pwned");
                    },
                )
            },
            Expect::Ok(|root, _| {
                assert_eq!(
                    std::fs::read(root.join("outside/secret")).expect("clamped"),
                    b"pwned"
                );
            }),
        ),
        case(
            "write through symlink from earlier entry",
            |o| {
                let o = o.to_string();
                one(move |t| {
                    t.symlink("evil", &o).file("evil/pwned", b"x");
                })
            },
            Expect::Ok(|root, outside| {
                assert!(rerooted(root, outside).join("pwned").is_file());
            }),
        ),
        case(
            "directory replaced by symlink then write",
            |o| {
                let o = o.to_string();
                two(
                    |t| {
                        t.dir("d/");
                    },
                    move |t| {
                        t.symlink("d", &o).file("d/pwned", b"x");
                    },
                )
            },
            Expect::Ok(|root, outside| {
                assert!(
                    std::fs::symlink_metadata(root.join("d"))
                        .expect("d")
                        .file_type()
                        .is_symlink()
                );
                assert!(rerooted(root, outside).join("pwned").is_file());
            }),
        ),
        case(
            "symlink named dot (CVE-2021-29136)",
            |o| {
                let o = o.to_string();
                one(move |t| {
                    t.symlink(".", &o).file("pwned", b"x");
                })
            },
            Expect::Err("."),
        ),
        case(
            "symlink named dir/dot",
            |o| {
                let o = o.to_string();
                one(move |t| {
                    t.dir("a/").symlink("a/.", &o).file("a/pwned", b"x");
                })
            },
            Expect::Ok(|root, outside| {
                assert!(rerooted(root, outside).join("pwned").is_file());
            }),
        ),
        case(
            "chmod through symlink via dir entry (CVE-2021-32760)",
            |o| {
                let target = format!("{o}/secret");
                two(
                    move |t| {
                        t.symlink("f", &target);
                    },
                    |t| {
                        t.dir_mode("f/", 0o777);
                    },
                )
            },
            Expect::Ok(|root, _| {
                assert!(root.join("f").is_dir());
            }),
        ),
        case(
            "chmod through symlink via file entry",
            |o| {
                let target = format!("{o}/secret");
                two(
                    move |t| {
                        t.symlink("f", &target);
                    },
                    |t| {
                        t.file_mode("f", b"new", 0o4777);
                    },
                )
            },
            Expect::Ok(|root, _| {
                let md = std::fs::symlink_metadata(root.join("f")).expect("f");
                assert!(md.is_file());
                assert_eq!(md.mode() & 0o7777, 0o4777);
            }),
        ),
        case(
            "chown and utimes through symlink",
            |o| {
                let target = format!("{o}/secret");
                two(
                    move |t| {
                        t.symlink("f", &target);
                    },
                    move |t| {
                        t.uid = 4242;
                        t.gid = 4242;
                        t.mtime = 5;
                        t.symlink("f", "other");
                    },
                )
            },
            Expect::Ok(|root, _| {
                let md = std::fs::symlink_metadata(root.join("f")).expect("f");
                assert!(md.file_type().is_symlink());
                assert_eq!(md.mtime(), 5);
            }),
        ),
        case(
            "dir mode through symlinked parent",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("d", &o);
                    },
                    |t| {
                        t.dir_mode("d/sub/", 0o777).dir_mode("d/", 0o700);
                    },
                )
            },
            Expect::Ok(|root, outside| {
                assert!(rerooted(root, outside).join("sub").is_dir());
            }),
        ),
        case(
            "whiteout with dotdot",
            |_| {
                one(|t| {
                    t.whiteout("../.wh.secret");
                })
            },
            Expect::Err("../.wh.secret"),
        ),
        case(
            "whiteout of outside via dotdot dir",
            |_| {
                one(|t| {
                    t.whiteout("../outside/.wh.secret");
                })
            },
            Expect::Err("../outside/.wh.secret"),
        ),
        case(
            "whiteout through planted symlink",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("s", &o);
                    },
                    |t| {
                        t.whiteout("s/.wh.secret");
                    },
                )
            },
            Expect::Ok(|_, _| {}),
        ),
        case(
            "opaque through planted symlink",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("s", &o);
                    },
                    |t| {
                        t.whiteout("s/.wh..wh..opq");
                    },
                )
            },
            Expect::Ok(|root, _| {
                assert!(
                    std::fs::symlink_metadata(root.join("s"))
                        .expect("s")
                        .is_dir()
                );
            }),
        ),
        case(
            "root opaque removes symlink, not target",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("s", &o);
                    },
                    |t| {
                        t.whiteout(".wh..wh..opq");
                    },
                )
            },
            Expect::Ok(|root, _| {
                assert!(std::fs::symlink_metadata(root.join("s")).is_err());
            }),
        ),
        case(
            "whiteout of symlink to outside dir",
            |o| {
                let o = o.to_string();
                two(
                    move |t| {
                        t.symlink("s", &o);
                    },
                    |t| {
                        t.whiteout(".wh.s");
                    },
                )
            },
            Expect::Ok(|root, _| {
                assert!(std::fs::symlink_metadata(root.join("s")).is_err());
            }),
        ),
        case(
            "bare whiteout",
            |_| {
                one(|t| {
                    t.whiteout("a/.wh.");
                })
            },
            Expect::Err("a/.wh."),
        ),
        case(
            "whiteout of dot",
            |_| {
                one(|t| {
                    t.whiteout("a/.wh..");
                })
            },
            Expect::Err("a/.wh.."),
        ),
        case(
            "whiteout of dotdot",
            |_| {
                one(|t| {
                    t.whiteout("a/.wh...");
                })
            },
            Expect::Err("a/.wh..."),
        ),
        case(
            "whiteout name with slash",
            |_| {
                one(|t| {
                    t.file("a/.wh.x/y", b"");
                })
            },
            Expect::Err("a/.wh.x/y"),
        ),
        case(
            "symlink loop in parent",
            |_| {
                one(|t| {
                    t.symlink("a", "b").symlink("b", "a").file("a/x", b"x");
                })
            },
            Expect::Err("a/x"),
        ),
        case(
            "file in parent position",
            |_| {
                one(|t| {
                    t.file("f", b"x").file("f/x", b"x");
                })
            },
            Expect::Err("f/x"),
        ),
        case(
            "trusted.overlay xattr never written",
            |_| {
                one(|t| {
                    t.pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
                        .dir("d/");
                })
            },
            Expect::Ok(|root, _| {
                let mut buf = [0u8; 16];
                assert!(
                    rustix::fs::lgetxattr(root.join("d"), "trusted.overlay.opaque", &mut buf[..])
                        .is_err()
                );
            }),
        ),
        Case {
            name: "byte limit (decompression bomb)",
            layers: |_| {
                one(|t| {
                    t.file("small", b"ok").file("big", &vec![0u8; 64 * 1024]);
                })
            },
            expect: Expect::Limit("big"),
            limits: Limits {
                max_bytes: Some(1000),
                max_entries: None,
            },
        },
        Case {
            name: "entry limit",
            layers: |_| {
                one(|t| {
                    for i in 0..20 {
                        t.file(&format!("f{i}"), b"");
                    }
                })
            },
            expect: Expect::Limit("f10"),
            limits: Limits {
                max_bytes: None,
                max_entries: Some(10),
            },
        },
        case(
            "legit absolute symlink parent (lib64 -> /lib)",
            |_| {
                one(|t| {
                    t.dir("lib/")
                        .symlink("lib64", "/lib")
                        .file("lib64/ld.so", b"elf");
                })
            },
            Expect::Ok(|root, _| {
                assert_eq!(
                    std::fs::read(root.join("lib/ld.so")).expect("ld.so"),
                    b"elf"
                );
            }),
        ),
    ]
}

fn run_case(case: &Case, rootless: bool) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("etc")).map_err(|e| e.to_string())?;
    std::fs::write(outside.join("secret"), b"secret").map_err(|e| e.to_string())?;
    std::fs::write(outside.join("etc/passwd"), b"root:x:0:0").map_err(|e| e.to_string())?;
    let root = tmp.path().join("root");
    let before = snapshot(tmp.path(), &["root"]);
    let unpacker = Unpacker::builder()
        .rootless(rootless)
        .limits(case.limits)
        .build()
        .map_err(|e| e.to_string())?;
    let layers = (case.layers)(outside.to_str().expect("utf-8 tmp"));
    let mut result: Result<(), Error> = Ok(());
    for layer in &layers {
        if let Err(e) = unpacker.apply_layer(&root, &layer[..], &LayerInfo::default()) {
            result = Err(e);
            break;
        }
    }
    let after = snapshot(tmp.path(), &["root"]);
    if before != after {
        return Err(format!(
            "outside the root changed:\nbefore {before:?}\nafter  {after:?}"
        ));
    }
    match (&case.expect, result) {
        (Expect::Err(entry), Err(e)) => {
            let named = e
                .entry()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !(e.is_invalid_layer() && named.starts_with(entry)) {
                return Err(format!("wrong error (want entry {entry:?}): {e:?}"));
            }
            if !e.to_string().contains(&named) {
                return Err(format!("message does not name the entry: {e}"));
            }
        }
        (Expect::Limit(entry), Err(e)) => {
            if !(e.is_limit_exceeded() && e.entry() == Some(Path::new(entry))) {
                return Err(format!("wrong error (want limit at {entry:?}): {e:?}"));
            }
            if root.join(entry).exists() {
                return Err("the entry that hit the limit was left on disk".into());
            }
        }
        (Expect::Ok(check), Ok(())) => check(&root, &outside),
        (_, other) => return Err(format!("unexpected outcome: {other:?}")),
    }
    Ok(())
}

#[test]
fn hostile_corpus() {
    const CHILD: &str = "HOIST_UNPACK_HOSTILE_AS_NOBODY";
    let cases = cases();
    assert!(cases.len() >= 30, "corpus has {} cases", cases.len());
    let privileged = rustix::process::geteuid().is_root();
    if privileged && std::env::var_os(CHILD).is_none() {
        // The same corpus as an unprivileged user (rootless unpacking without root's override).
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "hostile_corpus", "--nocapture"])
            .env(CHILD, "1")
            .uid(65534)
            .gid(65534)
            .output()
            .expect("re-run as nobody");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "as nobody: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut failures = Vec::new();
    for case in &cases {
        for rootless in [true, false] {
            if !rootless && !privileged {
                continue;
            }
            if let Err(why) = run_case(case, rootless) {
                failures.push(format!("{} (rootless={rootless}): {why}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Metadata the tar parser would hold in memory (GNU long names/links, PAX records) is refused
/// when oversized, before it is buffered; ordinary large files are not affected.
#[test]
fn oversized_tar_metadata_is_refused() {
    let huge = "a/".repeat(700 * 1024) + "f";
    let long_name = Tar::new().file(&huge, b"x").finish();
    let long_link = Tar::new().symlink("l", &huge).finish();
    let big_pax = Tar::new()
        .pax(&[("comment", vec![b'c'; 2 * 1024 * 1024].as_slice())])
        .file("f", b"x")
        .finish();
    let unpacker = Unpacker::builder().rootless(true).build().expect("build");
    for (what, layer) in [
        ("long name", long_name),
        ("long link", long_link),
        ("pax", big_pax),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = unpacker
            .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
            .expect_err(what);
        assert!(err.is_invalid_layer(), "{what}: {err:?}");
        assert!(err.to_string().contains("exceeds"), "{what}: {err}");
    }
    // A PAX size override and a big plain file keep the guard in step with the parser.
    let tmp = tempfile::tempdir().expect("tempdir");
    let big = vec![9u8; 3 * 1024 * 1024 + 17];
    let mut tar = Tar::new();
    tar.pax(&[("size", big.len().to_string().as_bytes())]);
    tar.header(b"big", b'0', 0, 0o644, b"", (0, 0));
    let mut layer = tar.finish();
    // Splice the data in after the header (the header's own size field says 0).
    let at = layer.len() - 1024;
    let mut data = big.clone();
    data.resize(big.len().div_ceil(512) * 512, 0);
    layer.splice(at..at, data);
    let mut tail = Tar::new();
    tail.file(&"n".repeat(200), b"after");
    let tail = tail.finish();
    layer.truncate(layer.len() - 1024);
    layer.extend_from_slice(&tail);
    unpacker
        .apply_layer(tmp.path(), &layer[..], &LayerInfo::default())
        .expect("legit layer");
    assert_eq!(std::fs::read(tmp.path().join("big")).expect("big"), big);
    assert_eq!(
        std::fs::read(tmp.path().join("n".repeat(200))).expect("long"),
        b"after"
    );
}
