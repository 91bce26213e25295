//! Measures compression throughput of the codecs on a file: `cargo run --example codec_speed FILE`.

use std::fs::File;
use std::io::{self, BufReader};
use std::time::Instant;

use hoist_oci::codec::{Compression, compress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: codec_speed FILE [codec:level:threads ...]")?;
    let mut specs: Vec<String> = std::env::args().skip(2).collect();
    if specs.is_empty() {
        specs = ["gzip:1:1", "gzip:6:1", "zstd:3:1", "zstd:3:2"]
            .map(String::from)
            .to_vec();
    }
    for spec in specs {
        let parts: Vec<&str> = spec.split(':').collect();
        let (codec, level, threads): (Compression, i32, usize) =
            (parts[0].parse()?, parts[1].parse()?, parts[2].parse()?);
        let input = BufReader::new(File::open(&path)?);
        let start = Instant::now();
        let info = compress(input, io::sink(), codec, Some(level), threads)?;
        let secs = start.elapsed().as_secs_f64();
        let mib = info.uncompressed_size as f64 / (1024.0 * 1024.0);
        println!(
            "{spec:>10}: {:6.1} MiB/s in, ratio {:.3}, {:.2}s",
            mib / secs,
            info.size as f64 / info.uncompressed_size as f64,
            secs
        );
    }
    Ok(())
}
