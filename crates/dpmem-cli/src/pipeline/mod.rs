//! `dpmem pipeline`: the whole stack end to end, as a media transport runs it. TX sessions
//! packetise generated 1080p59.94 frames (ST 2110-20: a header buffer per packet and a
//! zero-copy payload segment attached to the frame), a port moves the packet chains (the
//! loopback port as a NIC would, or kernel UDP sockets), RX sessions reassemble them into
//! frames through the DMA copy engine, and every received byte is checked against what was
//! sent. It prints how many 1080p59.94 streams that sustains here, nanoseconds per packet
//! per stage, and how close the bytes it copied per second come to the machine's memory copy
//! bandwidth, measured in the same run.
//!
//! - `args`: the command line;
//! - `app_frames`: frames the application maps and lends (`--external`);
//! - `pattern`: the bytes of a generated frame, checked without a copy of what was sent;
//! - `bandwidth`: the memory copy bound;
//! - `port_choice`: the port a stream runs over;
//! - `stream`: one stream's TX session, port(s) and RX session;
//! - `stage_clock`: time per stage;
//! - `high_water`: the most buffers each pool had out;
//! - `live_figures`: the counters the progress line and `/dpmem/pipeline` (telemetry) read;
//! - `lane`: one lcore's streams, borrowing layer and loop;
//! - `run_loop`: the EAL, the RX pool, the copy device, a lane per lcore, the audit;
//! - `report`: what it prints, as text or JSON.

mod app_frames;
mod args;
mod bandwidth;
mod high_water;
mod lane;
mod live_figures;
mod pattern;
mod port_choice;
mod report;
mod run_loop;
mod stage_clock;
mod stream;

pub use args::PipelineArgs;

/// Runs the pipeline; the report, or why it could not run or what went wrong in it.
pub fn run(args: PipelineArgs) -> Result<String, String> {
    let report = run_loop::run(&args)?;
    let text = if args.json {
        report.to_json()?
    } else {
        report.to_text()
    };
    if let Some(failure) = report.failure() {
        // The figures first, then the failure as the command's error.
        print!("{text}");
        return Err(failure);
    }
    Ok(text)
}
