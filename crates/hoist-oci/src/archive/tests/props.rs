//! Damaged archives under proptest: errors or consistent results, never a panic.

use super::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Damaged archives (flipped bytes, cut short) give an error or a consistent result:
    /// never a panic, never a temp file, never a tag without its image.
    #[test]
    fn damaged_archives_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = legacy_archive().bytes;
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if do_cut {
            let n = cut.index(bytes.len());
            bytes.truncate(n);
        }
        let (_d, l) = new_layout();
        let result = spool(pipe(bytes), &l);
        prop_assert!(blobs(&l).iter().all(|p| p.starts_with("sha256/")), "{:?}", blobs(&l));
        match result {
            Ok(images) => {
                for image in images {
                    let img = l.image_at(&image.manifest, None).expect("spooled image reads back");
                    for layer in &img.manifest.value().layers {
                        l.verify_blob(layer).expect("spooled blobs verify");
                    }
                }
            }
            Err(_) => prop_assert!(l.list().expect("list").is_empty()),
        }
    }

    /// Whatever images go out through write_docker_archive come back identical.
    #[test]
    fn write_then_spool_round_trips(
        layers in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..3000), 0usize..3), 1..5),
    ) {
        let (_s, src) = new_layout();
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, (content, c)) in layers.iter().enumerate() {
            let c = [Compression::None, Compression::Gzip, Compression::Zstd][*c];
            let name = format!("f{i}");
            let tar = tar_of(&[(name.as_str(), &content[..])]);
            let mut w = src.blob_writer().expect("writer");
            let info = compress(&tar[..], &mut w, c, None, 1).expect("compress");
            w.commit(Some(&info.digest), Some(info.size)).expect("commit");
            descs.push(Descriptor::new(MediaType::oci_layer(c), info.digest, info.size));
            diff_ids.push(info.diff_id);
        }
        let config = config_for(diff_ids.clone(), "amd64");
        src.write_json(&config).expect("config");
        let manifest = crate::RawJson::from_value(crate::ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::new(MediaType::OCI_MANIFEST)),
            artifact_type: None,
            config: config.descriptor(MediaType::OCI_CONFIG),
            layers: descs,
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        })
        .expect("manifest");
        src.write_json(&manifest).expect("write manifest");
        let mut out = Vec::new();
        write_docker_archive(
            &src,
            &[(manifest.descriptor(MediaType::OCI_MANIFEST), vec!["p:1".into()])],
            &mut out,
        )
        .expect("write");
        let (_d, dst) = new_layout();
        spool(pipe(out), &dst).expect("spool");
        let back = dst.image(Some("p:1"), None).expect("image");
        prop_assert_eq!(back.config.digest(), config.digest());
        let got: Vec<Digest> =
            back.manifest.value().layers.iter().map(|d| d.digest.clone()).collect();
        prop_assert_eq!(got, diff_ids);
    }
}
