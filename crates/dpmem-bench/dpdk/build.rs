//! Builds the DPDK side of the benchmarks.
//!
//! DPDK's fast paths are `static inline`, so Rust cannot call them: the workloads that time
//! DPDK live in C (`csrc/dpdk_shim.c`, `csrc/dpdk_mempool_shim.c` for the mempool loops,
//! `csrc/dpdk_mbuf_shim.c` for the packet buffer loops, `csrc/dpdk_dma_shim.c` for the copy
//! engine's, `csrc/dpdk_frame_shim.c` for the media frames' and `csrc/dpdk_mp_shim.c` for the
//! inter-process channel's), compiled here against Debian's libdpdk-dev. This crate's library
//! is linked into the `dpmem-bench-dpdk` program only, never into `dpmem`. When the `dpdk`
//! feature is off
//! or pkg-config cannot find libdpdk, the crate still builds; it then gets the reason in
//! `DPMEM_BENCH_DPDK_MISSING`, which the program prints instead of running, so that every
//! DPDK column can say why it is empty instead of silently showing nothing.

use std::env;
use std::process::Command;

const SHIM: &str = "csrc/dpdk_shim.c";
const MEMPOOL_SHIM: &str = "csrc/dpdk_mempool_shim.c";
const MBUF_SHIM: &str = "csrc/dpdk_mbuf_shim.c";
const DMA_SHIM: &str = "csrc/dpdk_dma_shim.c";
const FRAME_SHIM: &str = "csrc/dpdk_frame_shim.c";
const MP_SHIM: &str = "csrc/dpdk_mp_shim.c";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dpdk_shim)");
    println!("cargo::rerun-if-changed={SHIM}");
    println!("cargo::rerun-if-changed={MEMPOOL_SHIM}");
    println!("cargo::rerun-if-changed={MBUF_SHIM}");
    println!("cargo::rerun-if-changed={DMA_SHIM}");
    println!("cargo::rerun-if-changed={FRAME_SHIM}");
    println!("cargo::rerun-if-changed={MP_SHIM}");
    println!("cargo::rerun-if-changed=build.rs");

    match build_shim() {
        Ok(()) => println!("cargo::rustc-cfg=dpdk_shim"),
        Err(reason) => {
            // rustc-env values are single lines; pkg-config errors are not.
            let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
            println!("cargo::rustc-env=DPMEM_BENCH_DPDK_MISSING={reason}");
        }
    }
}

fn build_shim() -> Result<(), String> {
    if env::var_os("CARGO_FEATURE_DPDK").is_none() {
        return Err("built without the `dpdk` feature".to_owned());
    }
    // Probe without emitting link flags yet: the shim must come before the DPDK libraries
    // on the link line, or `--as-needed` drops librte_eal before anything refers to it.
    let lib = pkg_config::Config::new()
        .cargo_metadata(false)
        .env_metadata(true)
        .probe("libdpdk")
        .map_err(|e| format!("pkg-config libdpdk failed: {e}"))?;

    // The pkg-config crate keeps only -I and -D, but libdpdk's cflags also carry
    // `-include rte_config.h` and `-march=...`, which the headers rely on; ask for them raw.
    let cflags = pkg_config_output(&["--cflags", "libdpdk"])?;
    let mut build = cc::Build::new();
    build
        .file(SHIM)
        .file(MEMPOOL_SHIM)
        .file(MBUF_SHIM)
        .file(DMA_SHIM)
        .file(FRAME_SHIM)
        .file(MP_SHIM)
        .warnings(true)
        .extra_warnings(true)
        .opt_level(3);
    for flag in cflags.split_whitespace() {
        build.flag(flag);
    }
    build
        .try_compile("dpmem_bench_dpdk_shim")
        .map_err(|e| format!("compiling the shim ({SHIM} and the others in csrc/) failed: {e}"))?;

    // Now the libraries, after the shim. Shared libraries are enough: the shim only calls
    // exported functions, and whatever is static inline is compiled into the shim itself.
    for path in &lib.link_paths {
        println!("cargo::rustc-link-search=native={}", path.display());
    }
    for name in &lib.libs {
        println!("cargo::rustc-link-lib={name}");
    }
    Ok(())
}

fn pkg_config_output(args: &[&str]) -> Result<String, String> {
    let program = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = Command::new(&program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
