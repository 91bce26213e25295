//! Writes a tagged image of an OCI layout as a legacy docker archive (for `docker load`):
//! `cargo run --example write_archive LAYOUT_DIR TAG OUT|-`. Handy for measuring with `time -v`.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use hoist_oci::Layout;
use hoist_oci::archive::write_docker_archive;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(tag), Some(out)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: write_archive LAYOUT_DIR TAG OUT|-".into());
    };
    let layout = Layout::open(&dir)?;
    let manifest = layout.resolve(Some(&tag))?;
    let sink: Box<dyn Write> = if out == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(&out)?)
    };
    let images = [(manifest, vec![tag])];
    write_docker_archive(&layout, &images, BufWriter::with_capacity(256 * 1024, sink))?;
    Ok(())
}
