//! A multi-layer push SIGKILLed at several points and re-run: it completes, and over both runs at
//! most one chunk per layer is sent twice (counted by the fault proxy).

use hoist_oci::Compression;
use hoist_testkit::synth::{ImageSpec, write_oci_layout};
use hoist_testkit::{FaultAction, FaultProxy, FaultRule, Registry, require_tool};
use hoist_tests::{Hoist, registry_image, upload_bytes};
use std::time::{Duration, Instant};

const CHUNK: u64 = 256 << 10;

#[test]
fn sigkill_at_several_points_then_rerun() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start().expect("registry");
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("fault proxy");
    // With one upload at a time, PATCH 1 is the config, 2-6 the first layer, 7-11 the second.
    // Kill points: inside the first layer, and inside the second with the first one done.
    for (point, stalled_patch) in [(0u64, 4usize), (1, 9)] {
        let dir = tmp.path().join(format!("point{point}"));
        let cache = dir.join("cache");
        let src = dir.join("src");
        let spec = ImageSpec::uniform(2, 1 << 20, Compression::Gzip, 500 + point);
        let image = write_oci_layout(&src, "v1", &spec).expect("synthetic layout");
        let blobs = image.layers.iter().map(|l| l.size).sum::<u64>() + image.config_size;
        let repo = format!("resume/p{point}");
        let push = || {
            Hoist::new(&cache)
                .args(["-q", "--chunk-size", "256KiB", "--concurrency", "1", "copy"])
                .arg(format!("oci:{}:v1", src.display()))
                .arg(format!("docker://{}/{repo}:v1", proxy.host()))
        };

        proxy.clear_records();
        proxy.set_plan(vec![FaultRule::new(
            "PATCH",
            "/blobs/uploads/",
            stalled_patch,
            FaultAction::Stall(Duration::from_secs(60)),
        )]);
        let before = proxy.faults_injected();
        let mut child = push().command().spawn().expect("spawn hoist");
        let deadline = Instant::now() + Duration::from_secs(60);
        // The stall holds the PATCH before any of its body is forwarded, so the kill lands
        // between chunks as far as the registry can tell. (A kill mid-body leaves distribution
        // with a partial chunk its upload state does not know of: see faults.rs, cut_mid_chunk.)
        while proxy.faults_injected() == before {
            assert!(
                Instant::now() < deadline,
                "the push never reached the stall"
            );
            assert!(
                child.try_wait().expect("wait").is_none(),
                "hoist ended early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGKILL: no chance to save anything beyond what it already wrote.
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let first = upload_bytes(&proxy);
        proxy.set_plan(Vec::new());
        proxy.clear_records();

        push().run().success();
        let second = upload_bytes(&proxy);
        let pushed = registry_image(registry.addr(), &repo, "v1").expect("pushed image");
        assert_eq!(pushed.manifest_digest, image.manifest_digest);
        let resent = (first + second).saturating_sub(blobs);
        eprintln!(
            "kill at PATCH {stalled_patch}: first run {first} B, re-run {second} B, re-sent {resent} B"
        );
        assert!(
            resent <= CHUNK * image.layers.len() as u64,
            "killed at PATCH {stalled_patch}: {resent} bytes re-sent (first run {first}, re-run {second})"
        );
        assert!(first > 0 && second > 0, "{first} {second}");
        // The state file persisted in the cache and the re-run used it: the first layer's
        // acknowledged chunks were not sent again.
        assert!(
            second < blobs,
            "the re-run sent everything again ({second} of {blobs})"
        );
    }
}
