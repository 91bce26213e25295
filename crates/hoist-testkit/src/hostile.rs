//! The hostile-layer corpus (issue 9): layers that try to escape the root, or to do damage
//! through it, each with the outcome a safe unpacker must give. Shared by hoist-unpack's library
//! tests and the end-to-end tests that run the same layers through `hoist unpack` and
//! `hoist copy … rootfs:`.
#![allow(clippy::disallowed_methods)] // checks inspect trees from outside the root

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::rawtar::Tar;

/// What a safe unpacker does with a case.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Fails with an error naming the entry that starts with this text.
    Err(&'static str),
    /// Succeeds; the check gets the root path and the outside path, and panics on a problem.
    Ok(fn(&Path, &Path)),
    /// Fails with a limit error naming this entry (under the case's limits).
    Limit(&'static str),
}

/// One hostile case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Short description.
    pub name: &'static str,
    /// Builds the layers (uncompressed tars, applied in order) from the outside path.
    pub layers: fn(&str) -> Vec<Vec<u8>>,
    /// The outcome.
    pub expect: Expect,
    /// The content byte limit the case is meant for (`None`: unlimited).
    pub max_bytes: Option<u64>,
    /// The entry limit the case is meant for (`None`: unlimited).
    pub max_entries: Option<u64>,
}

/// A case with no limits.
pub fn case(name: &'static str, layers: fn(&str) -> Vec<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        layers,
        expect,
        max_bytes: None,
        max_entries: None,
    }
}

/// One layer written by `f`.
pub fn one(f: impl FnOnce(&mut Tar)) -> Vec<Vec<u8>> {
    let mut t = Tar::new();
    f(&mut t);
    vec![t.finish()]
}

/// Two layers, written by `f` then `g`.
pub fn two(f: impl FnOnce(&mut Tar), g: impl FnOnce(&mut Tar)) -> Vec<Vec<u8>> {
    let mut a = Tar::new();
    f(&mut a);
    let mut b = Tar::new();
    g(&mut b);
    vec![a.finish(), b.finish()]
}

/// The outside path as seen re-rooted inside the root.
pub fn rerooted(root: &Path, outside: &Path) -> PathBuf {
    root.join(outside.strip_prefix("/").unwrap_or(outside))
}

/// Create the outside directory the corpus aims at: `secret` and `etc/passwd` inside it.
///
/// # Errors
/// When the files cannot be written.
pub fn plant_outside(outside: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(outside.join("etc"))?;
    std::fs::write(outside.join("secret"), b"secret")?;
    std::fs::write(outside.join("etc/passwd"), b"root:x:0:0")
}

/// The corpus. Each case builds its layers from the path of a directory outside the root
/// (`/…/outside`, holding `secret` and `etc/passwd`) that must never change.
pub fn corpus() -> Vec<Case> {
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
            // Followed as an entry under `s/` would be: re-rooted, so the directory it clears
            // (made if missing) is inside the root, and the link stays.
            Expect::Ok(|root, outside| {
                assert!(
                    std::fs::symlink_metadata(root.join("s"))
                        .expect("s")
                        .is_symlink()
                );
                assert!(
                    std::fs::symlink_metadata(rerooted(root, outside))
                        .expect("the re-rooted target")
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
        Case {
            name: "byte limit (decompression bomb)",
            layers: |_| {
                one(|t| {
                    t.file("small", b"ok").file("big", &vec![0u8; 64 * 1024]);
                })
            },
            expect: Expect::Limit("big"),
            max_bytes: Some(1000),
            max_entries: None,
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
            max_bytes: None,
            max_entries: Some(10),
        },
        Case {
            name: "entry limit counts the directories made through a symlink",
            layers: |_| {
                one(|t| {
                    t.symlink("s", &"d/".repeat(200)).file("s/f", b"f");
                })
            },
            expect: Expect::Limit("s/f"),
            max_bytes: None,
            max_entries: Some(50),
        },
        Case {
            name: "byte limit counts data a whiteout carries",
            layers: |_| {
                one(|t| {
                    t.file("small", b"ok")
                        .file(".wh.gone", &vec![0u8; 64 * 1024]);
                })
            },
            expect: Expect::Limit(".wh.gone"),
            max_bytes: Some(1000),
            max_entries: None,
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
