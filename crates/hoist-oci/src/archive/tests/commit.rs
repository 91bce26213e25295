//! Entries committed beside the stream: where their blobs are, and when they are reported.

use std::io::{self, Read};

use super::*;

/// Two layers of several frames each, as `docker save` lays them out.
pub(super) fn big_layer_archive() -> (Vec<u8>, Vec<Vec<u8>>) {
    let noise = |seed: u8| -> Vec<u8> {
        (0..1_500_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
            .collect()
    };
    let layers = vec![
        tar_of(&[("big/a", &noise(1)[..])]),
        tar_of(&[("big/b", &noise(2)[..])]),
    ];
    (two_layer_archive(&layers, "big:1"), layers)
}

/// A legacy archive of one image tagged `tag` with two layers, in `docker save`'s order.
fn two_layer_archive(layers: &[Vec<u8>], tag: &str) -> Vec<u8> {
    let cfg = config_for(
        layers.iter().map(|t| Digest::sha256_of(t)).collect(),
        "amd64",
    );
    let manifest = format!(
        r#"[{{"Config":"{c}.json","RepoTags":["{tag}"],"Layers":["aa/layer.tar","bb/layer.tar"]}}]"#,
        c = cfg.digest().hex()
    );
    archive(vec![
        Item::File("aa/layer.tar", layers[0].clone()),
        Item::File("bb/layer.tar", layers[1].clone()),
        Item::File(
            &format!("{}.json", cfg.digest().hex()),
            cfg.bytes().to_vec(),
        ),
        Item::File("manifest.json", manifest.into_bytes()),
    ])
}

#[test]
fn big_layers_commit_beside_the_stream_and_a_cut_leaves_no_temp_file() {
    let (bytes, layers) = big_layer_archive();
    for compression in [Compression::None, Compression::Gzip] {
        let (_d, l) = new_layout();
        let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&stored);
        let options = SpoolOptions::new()
            .compress_layers(compression, None, 2)
            .on_event(move |e| {
                if let SpoolEvent::LayerStored { index, diff_id, .. } = e {
                    sink.lock().expect("lock").push((index, diff_id));
                }
            });
        let images = spool_with(pipe(bytes.clone()), &l, options).expect("spool");
        let image = l.image(Some("big:1"), None).expect("tagged");
        assert_eq!(image.descriptor.digest, images[0].manifest.digest);
        for layer in &image.manifest.value().layers {
            l.verify_blob(layer).expect("committed and verified");
        }
        let want: Vec<(usize, Option<Digest>)> = layers
            .iter()
            .enumerate()
            .map(|(i, t)| (i, Some(Digest::sha256_of(t))))
            .collect();
        assert_eq!(*stored.lock().expect("lock"), want, "{compression}");
    }

    // Cut inside the second layer while the first may still be committing.
    let cut = bytes[..512 + layers[0].len() + 512 + 700_000].to_vec();
    let (_d, l) = new_layout();
    let err = spool(pipe(cut), &l).expect_err("cut");
    assert!(err.is_corrupt(), "{err}");
    assert!(
        blobs(&l).iter().all(|p| p.starts_with("sha256/")),
        "temp files left: {:?}",
        blobs(&l)
    );
    // The first layer was whole: it stays, complete and verified (but untagged).
    assert!(blobs(&l).contains(&format!("sha256/{}", Digest::sha256_of(&layers[0]).hex())));
    assert!(l.list().expect("list").is_empty());
}

/// A pipe that stalls once, after `at` bytes, as a daemon does between writes.
struct Stalling {
    inner: Pipe,
    at: usize,
    read: usize,
    pause: std::time::Duration,
}

impl Read for Stalling {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.at && !self.pause.is_zero() {
            std::thread::sleep(std::mem::take(&mut self.pause));
        }
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

#[test]
fn a_layer_is_reported_stored_while_the_next_one_streams() {
    let noise = |len: u32, seed: u8| -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 ^ seed)
            .collect()
    };
    // The second layer spans several progress steps.
    let layers = [
        tar_of(&[("a", &noise(1_500_000, 1)[..])]),
        tar_of(&[("b", &noise(9_000_000, 2)[..])]),
    ];
    let bytes = two_layer_archive(&layers, "s:1");
    // Stall 1 MB into the second layer, long enough for the first layer's commit to end.
    let reader = Stalling {
        inner: pipe(bytes),
        at: 512 + layers[0].len() + 512 + 1_000_000,
        read: 0,
        pause: std::time::Duration::from_millis(400),
    };
    let (_d, l) = new_layout();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    let options = SpoolOptions::new().on_event(move |e| sink.lock().expect("lock").push(e));
    spool_with(reader, &l, options).expect("spool");
    let events = events.lock().expect("lock");
    let at = |f: &dyn Fn(&SpoolEvent) -> bool| events.iter().position(f).expect("event");
    let first_stored = at(&|e| matches!(e, SpoolEvent::LayerStored { index: 0, .. }));
    let second_midway = at(
        &|e| matches!(e, SpoolEvent::LayerProgress { index: 1, bytes } if *bytes < layers[1].len() as u64),
    );
    assert!(
        first_stored < second_midway,
        "layer 0 reported stored only after layer 1 was partly read: {first_stored} vs {second_midway}"
    );
    let blob = match &events[first_stored] {
        SpoolEvent::LayerStored { blob, .. } => blob.clone(),
        _ => unreachable!("matched above"),
    };
    l.verify_blob(&blob).expect("in place when reported");
}

#[test]
fn more_layers_than_commit_slots_are_stored_and_reported_in_order() {
    // Nine layers, each committed on its own thread, more than MAX_COMMITS at a time.
    let layers: Vec<Vec<u8>> = (0..9u8)
        .map(|n| {
            let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8 ^ n).collect();
            tar_of(&[(&format!("l{n}"), &body[..])])
        })
        .collect();
    let cfg = config_for(
        layers.iter().map(|t| Digest::sha256_of(t)).collect(),
        "amd64",
    );
    let dirs: Vec<String> = (0..layers.len())
        .map(|n| format!("d{n}/layer.tar"))
        .collect();
    let manifest = format!(
        r#"[{{"Config":"{c}.json","RepoTags":["many:1"],"Layers":[{l}]}}]"#,
        c = cfg.digest().hex(),
        l = dirs
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let config_name = format!("{}.json", cfg.digest().hex());
    let mut items: Vec<Item<'_>> = dirs
        .iter()
        .zip(&layers)
        .map(|(d, t)| Item::File(d, t.clone()))
        .collect();
    // The config arrives between layers, as `docker save` may put it.
    items.insert(3, Item::File(&config_name, cfg.bytes().to_vec()));
    items.push(Item::File("manifest.json", manifest.into_bytes()));

    let (_d, l) = new_layout();
    let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&stored);
    let options = SpoolOptions::new().on_event(move |e| {
        if let SpoolEvent::LayerStored { index, .. } = e {
            sink.lock().expect("lock").push(index);
        }
    });
    spool_with(pipe(archive(items)), &l, options).expect("spool");
    assert_eq!(
        *stored.lock().expect("lock"),
        (0..layers.len()).collect::<Vec<_>>()
    );
    let image = l.image(Some("many:1"), None).expect("tagged");
    assert_eq!(image.manifest.value().layers.len(), layers.len());
    for layer in &image.manifest.value().layers {
        l.verify_blob(layer).expect("committed and verified");
    }
    assert!(
        blobs(&l).iter().all(|p| p.starts_with("sha256/")),
        "temp files left: {:?}",
        blobs(&l)
    );
}
