//! Project automation: `cargo xtask ci|tidy|bench|demo`.

fn main() {
    println!("xtask");
}
