//! `dpmem pipeline`'s command line.

use clap::Args;

use super::port_choice::PortKind;

/// Frame formats the pipeline generates (ST 2110-20, 4:2:2 10-bit, 1,260-byte payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatChoice {
    /// 1920x1080 at 59.94 frames per second: 5,184,000-byte frames, 4,115 packets.
    #[value(name = "1080p59")]
    Fhd5994,
    /// 1280x720 at 59.94: 2,304,000-byte frames, 1,829 packets.
    #[value(name = "720p59")]
    Hd5994,
}

impl FormatChoice {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            FormatChoice::Fhd5994 => "1080p59",
            FormatChoice::Hd5994 => "720p59",
        }
    }

    pub fn format(self) -> dpmem::frame::St20Format {
        let fhd = dpmem::frame::St20Format::FHD_5994_422_10;
        match self {
            FormatChoice::Fhd5994 => fhd,
            FormatChoice::Hd5994 => dpmem::frame::St20Format {
                width: 1280,
                height: 720,
                ..fhd
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Streams: each a TX session, its port and an RX session.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sessions: u32,
    /// The frame format.
    #[arg(long, value_enum, default_value = "1080p59")]
    pub format: FormatChoice,
    /// Seconds to run (fractions allowed).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// The port the packets go through.
    #[arg(long, value_enum, default_value = "loopback")]
    pub port: PortKind,
    /// Send every packet twice, over two ports (ST 2022-7): a second header over the same
    /// payload bytes; the RX side keeps the first copy of each.
    #[arg(long)]
    pub redundant: bool,
    /// Frames the application brings: each stream maps memory of its own (hugepages when
    /// free), registers it for I/O and lends its frames to the TX session, which hands each
    /// back and never frees it.
    #[arg(long)]
    pub external: bool,
    /// Copy received payloads with the CPU only (no DMA copy engine).
    #[arg(long)]
    pub no_dma: bool,
    /// Descriptors in each channel of the copy device: how many payload copies (and so
    /// received packets held for them) can be in flight per lcore; when full, the CPU copies.
    /// Short enough that the RX buffers the engine holds stay in cache: on a 2-vCPU EPYC,
    /// 4,096 gave half the rate of 512.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u16).range(64..=8192))]
    pub dma_ring: u16,
    /// Frame buffers per RX session (TX sessions have two).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=64))]
    pub rx_frames: u16,
    /// The lcores to spread the streams over (EAL `-l` syntax: `0`, `0-1`, `0,2`), with the
    /// embedded default's memory. Default: every CPU this process may use, but one left to
    /// the copy engine's worker (with `--no-dma`, every one).
    #[arg(long, conflicts_with = "eal_args")]
    pub lcores: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress line on standard error.
    #[arg(long)]
    pub quiet: bool,
    /// EAL options, after `--`. Without them: hugepages when enough are free, `--no-huge`
    /// otherwise, with memory sized for the streams asked for.
    #[arg(last = true, value_name = "EAL-ARGS")]
    pub eal_args: Vec<String>,
}

impl PipelineArgs {
    /// Refuses settings that cannot run, naming the rule.
    pub fn check(&self) -> Result<(), String> {
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 3600.0) {
            return Err(format!(
                "--duration {}: give seconds, more than 0 and at most 3600",
                self.duration
            ));
        }
        Ok(())
    }
}
