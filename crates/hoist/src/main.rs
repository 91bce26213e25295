//! The `hoist` command line: glue that parses, validates, builds library objects and reports.

fn main() {
    println!("hoist {}", env!("CARGO_PKG_VERSION"));
}
