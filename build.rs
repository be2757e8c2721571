//! Compiles bpf/http_trace.bpf.c (and the files of bpf/ it includes) twice, as the modern build (kernels with bpf_loop(), 5.17+) and
//! the legacy one (older kernels: `-mcpu=v2 -DHT_LEGACY`, see the top of the source), links the
//! two into one object with libbpf's static linker, and generates that object's Rust skeleton
//! into OUT_DIR.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/http_trace.bpf.c";
const BPF_DIR: &str = "bpf";

fn compile(out: &Path, vmlinux_dir: &Path, extra: &[&str]) {
    let mut args: Vec<OsString> = vec!["-I".into(), vmlinux_dir.into(), "-I".into(), "bpf".into()];
    args.extend(extra.iter().map(OsString::from));
    SkeletonBuilder::new()
        .source(SRC)
        .obj(out)
        .clang_args(args)
        .build()
        .expect("failed to build the BPF program (is clang installed?)");
}

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let vmlinux_dir = PathBuf::from("vmlinux").join(&arch);

    let modern = out_dir.join("http_trace_modern.o");
    let legacy = out_dir.join("http_trace_legacy.o");
    compile(&modern, &vmlinux_dir, &[]);
    // v2: clang 20 and later default to v3, whose atomics (even an unused fetch-and-add) 5.10
    // refuses.
    compile(&legacy, &vmlinux_dir, &["-mcpu=v2", "-DHT_LEGACY"]);

    // The skeleton's names come from the object's: http_trace.o gives HttpTraceSkel.
    let linked = out_dir.join("http_trace.o");
    let mut linker = libbpf_rs::Linker::new(&linked).expect("creating the BPF linker");
    for obj in [&modern, &legacy] {
        linker
            .add_file(obj)
            .expect("adding a BPF object to the linker");
    }
    linker
        .link()
        .expect("linking the modern and legacy BPF builds");
    drop(linker);
    SkeletonBuilder::new()
        .obj(&linked)
        .generate(out_dir.join("http_trace.skel.rs"))
        .expect("failed to generate the BPF skeleton");

    // The source and every file of bpf/ it includes.
    println!("cargo:rerun-if-changed={BPF_DIR}");
    println!("cargo:rerun-if-changed={}", vmlinux_dir.display());
}
