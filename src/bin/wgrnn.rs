//! The `wgrnn` command line: `forward` (run a stack on the GPU, print throughput and agreement
//! with the CPU reference).

fn main() {
    println!("wgrnn");
}
