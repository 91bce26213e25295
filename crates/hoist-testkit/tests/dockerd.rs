//! The private Docker daemon starts, builds multi-layer images offline, and is gone after drop.

use hoist_testkit::{Dockerd, pid_alive, require_root, require_tool};

#[test]
fn dockerd_builds_layers_and_cleans_up() {
    if !require_tool("dockerd") || !require_tool("docker") || !require_root() {
        return;
    }
    let d = Dockerd::start().expect("dockerd starts");
    let pid = d.pid();
    let dir = d
        .socket_path()
        .parent()
        .expect("socket has a parent")
        .to_path_buf();
    assert!(d.docker_host().starts_with("unix:///"));
    let v = d
        .run_docker(&["version", "--format", "{{.Server.APIVersion}}"])
        .expect("docker version");
    assert!(v.starts_with("1."), "API version {v}");
    let driver = d
        .run_docker(&["info", "--format", "{{.Driver}}"])
        .expect("docker info");
    assert_eq!(driver, d.storage_driver());

    d.build_layers(&[2, 3, 1], "testkit/multi:1")
        .expect("build_layers");
    let layers = d
        .run_docker(&[
            "image",
            "inspect",
            "testkit/multi:1",
            "--format",
            "{{len .RootFS.Layers}}",
        ])
        .expect("inspect");
    assert_eq!(layers, "4", "base + one layer per COPY");
    let listing = d
        .run_docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .expect("image ls");
    assert!(listing.contains("testkit/multi:1"), "{listing}");

    drop(d);
    assert!(!pid_alive(pid), "dockerd pid {pid} still alive");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(dir.to_str().expect("utf-8")),
        "mounts left under {}",
        dir.display()
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}
