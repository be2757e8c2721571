//! Compiles bpf/http_trace.bpf.c and generates its Rust skeleton into OUT_DIR.

use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/http_trace.bpf.c";
const HEADER: &str = "bpf/http_trace.h";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let vmlinux_dir = PathBuf::from("vmlinux").join(&arch);

    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            OsStr::new("-I"),
            vmlinux_dir.as_os_str(),
            OsStr::new("-I"),
            OsStr::new("bpf"),
        ])
        .build_and_generate(out_dir.join("http_trace.skel.rs"))
        .expect("failed to build the BPF program (is clang installed?)");

    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed={HEADER}");
    println!("cargo:rerun-if-changed={}", vmlinux_dir.display());
}
