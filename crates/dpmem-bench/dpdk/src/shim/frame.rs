//! The media frame loops of the C shim (`csrc/dpdk_frame_shim.c`) behind [`DpdkFrameLoops`].

use std::ffi::{c_char, c_int, c_uint, CString};

use dpmem_bench::{DpdkFrameLoops, Elapsed, FrameShape};

use super::{error_text, leaked_argv, Shim};

/// The shim's `struct dpmem_bench_frame_shape`, field for field.
#[repr(C)]
struct CFrameShape {
    tx_buffers: u32,
    tx_cache: u32,
    hdr_room: u16,
    rx_buffers: u32,
    rx_cache: u32,
    rx_room: u16,
    burst: u32,
    hdr_len: u16,
    payload_len: u16,
    frame_size: u32,
    line_bytes: u32,
    pgroup_bytes: u32,
    pgroup_pixels: u32,
    fps_num: u32,
    fps_den: u32,
    rx_packets: u32,
    nb_desc: u32,
    max_reap: u32,
}

impl From<&FrameShape> for CFrameShape {
    fn from(s: &FrameShape) -> CFrameShape {
        CFrameShape {
            tx_buffers: s.tx_buffers,
            tx_cache: s.tx_cache,
            hdr_room: s.hdr_room,
            rx_buffers: s.rx_buffers,
            rx_cache: s.rx_cache,
            rx_room: s.rx_room,
            burst: s.burst,
            hdr_len: s.hdr_len,
            payload_len: s.payload_len,
            frame_size: s.frame_size,
            line_bytes: s.line_bytes,
            pgroup_bytes: s.pgroup_bytes,
            pgroup_pixels: s.pgroup_pixels,
            fps_num: s.fps_num,
            fps_den: s.fps_den,
            rx_packets: s.rx_packets,
            nb_desc: s.nb_desc,
            max_reap: s.max_reap,
        }
    }
}

mod ffi {
    use std::ffi::{c_char, c_int, c_uint};

    use super::CFrameShape;

    extern "C" {
        pub fn dpmem_bench_dpdk_frame_init(
            argc: c_int,
            argv: *mut *mut c_char,
            shape: *const CFrameShape,
            template: *const u8,
            template_len: c_uint,
            dev_name: *const c_char,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_frame_run(
            row: c_uint,
            frames: u64,
            ns: *mut u64,
            cycles: *mut u64,
        ) -> c_int;
    }
}

impl DpdkFrameLoops for Shim {
    fn frame_eal_init(
        &self,
        args: &[String],
        shape: &FrameShape,
        template: &[u8],
        device: &str,
    ) -> Result<(), String> {
        let (argc, argv) = leaked_argv(args)?;
        let name = CString::new(device).map_err(|_| format!("device {device:?} contains NUL"))?;
        let template_len =
            c_uint::try_from(template.len()).map_err(|_| "a header template of 4 GiB")?;
        let c_shape = CFrameShape::from(shape);
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator; the
        // shape, the template (template_len bytes) and the name (NUL-terminated) live across
        // the call, which copies what it keeps.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_frame_init(
                argc,
                argv,
                &c_shape,
                template.as_ptr(),
                template_len,
                name.as_ptr() as *const c_char,
            )
        };
        match rc {
            0 => Ok(()),
            rc if rc == rustix::io::Errno::NODEV.raw_os_error() => Err(format!(
                "DPDK: no dmadev called {device:?} (is the dma_skeleton driver installed?)"
            )),
            rc if rc == rustix::io::Errno::INVAL.raw_os_error() => Err(
                "rte_eal_init, a pool, a memzone or the dmadev set-up failed, or the shim's \
                 header length and burst are not the workload's: Invalid argument"
                    .to_owned(),
            ),
            rc => Err(format!(
                "rte_eal_init/pools/frames/dmadev set-up failed: {}",
                error_text(rc as c_int)
            )),
        }
    }

    fn frame_run(&self, row: u32, frames: u64) -> Result<Elapsed, String> {
        let mut elapsed = Elapsed { ns: 0, cycles: 0 };
        // SAFETY: plain values and live out-pointers; the pools exist (frame_eal_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_frame_run(row, frames, &mut elapsed.ns, &mut elapsed.cycles)
        };
        match rc {
            0 => Ok(elapsed),
            rc if rc == rustix::io::Errno::NOENT.raw_os_error() => {
                Err("DPDK: a pool ran out of buffers (ENOENT)".to_owned())
            }
            rc if rc == rustix::io::Errno::BUSY.raw_os_error() => {
                Err("DPDK: a pool was not full before or after the row".to_owned())
            }
            rc if rc == rustix::io::Errno::IO.raw_os_error() => Err(
                "DPDK: a frame was not done exactly once, a copy failed, or a payload is not \
                 where it was copied to (EIO)"
                    .to_owned(),
            ),
            rc => Err(format!("DPDK frame row {row} failed: {}", error_text(rc))),
        }
    }
}
