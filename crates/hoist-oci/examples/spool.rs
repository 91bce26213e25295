//! Spools a docker archive (a file, or `-` for stdin) into an OCI layout and prints the images:
//! `cargo run --example spool ARCHIVE LAYOUT_DIR`. Handy for measuring memory with `time -v`.

use std::fs::File;
use std::io::{self, Read};

use hoist_oci::Layout;
use hoist_oci::archive::spool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(archive), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: spool ARCHIVE|- LAYOUT_DIR".into());
    };
    let layout = Layout::open_or_create(&dir)?;
    let input: Box<dyn Read> = if archive == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&archive)?)
    };
    for image in spool(input, &layout)? {
        println!(
            "{} config {} tags {:?}",
            image.manifest.digest, image.config.digest, image.tags
        );
    }
    Ok(())
}
