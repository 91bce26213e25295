//! Apply layer files (gzip, zstd or plain tar) in order onto a root directory and print what
//! was done: `cargo run -p hoist-unpack --example unpack_layers -- ROOT LAYER...`.

use std::path::PathBuf;
use std::time::Instant;

use hoist_unpack::{LayerInfo, Unpacker};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let root = args.next().ok_or("usage: unpack_layers ROOT LAYER...")?;
    let unpacker = Unpacker::builder().build()?;
    let start = Instant::now();
    for layer in args {
        let stats = unpacker.apply_layer_file(&root, &layer, &LayerInfo::default())?;
        println!(
            "{}: {} entries, {} bytes written, {:?}, diff_id {}",
            layer.display(),
            stats.entries,
            stats.bytes_written,
            stats.compression,
            stats.diff_id.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    println!("total {:.2?}", start.elapsed());
    Ok(())
}
