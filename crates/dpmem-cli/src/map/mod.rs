//! `dpmem map`: a picture of the memory, as an SVG (or a self-contained HTML page around it).
//!
//! Per socket, each memseg list is a band of pages coloured by how they are held (pinned,
//! mapped on demand, external, not mapped; hatched where they may hold old data) with the
//! breaks in IOVA contiguity marked; under the pages, the heap's elements (busy, free, parked)
//! where they lie; under those, the memzones and pools with their names and sizes. Bands are
//! all one width: long stretches of address space without pages are folded, and what is
//! narrower than a pixel is summarised, so that a few MiB and many GiB both read at a glance
//! (see [`axis`] and [`runs`]).
//!
//! The EAL is this process's own, brought up as `dpmem info` brings up its (the embedded
//! default, or the EAL options after `--`), or, with `--file-prefix`, a running primary's,
//! attached to as `dpmem proc-info` attaches: a quiet secondary that reads and leaves.

mod axis;
mod band;
mod gather;
mod html;
mod lanes;
mod legend;
mod pages;
mod palette;
mod picture;
mod runs;
mod xml;

use std::path::PathBuf;

use clap::Args;

use gather::MapInput;

#[derive(Debug, Args)]
pub struct MapArgs {
    /// Draw a running primary's memory: attach to the one with this file prefix (its
    /// `--file-prefix`) as a secondary. Without it, draw this process's own EAL.
    #[arg(long, value_name = "PREFIX", conflicts_with = "eal_args")]
    file_prefix: Option<String>,
    /// Where to write the picture (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write a self-contained HTML page around the SVG, with tables of memzones, pools and
    /// heaps (default file `dpmem-map.html`).
    #[arg(long)]
    html: bool,
    /// EAL options, after `--`, for this process's own EAL. Without them a 16 MiB
    /// configuration that runs on any Linux machine is used: hugepages when they are usable,
    /// else `--no-huge`.
    #[arg(last = true, value_name = "EAL-ARGS")]
    eal_args: Vec<String>,
}

/// Where the picture went.
#[derive(Debug)]
pub enum Written {
    /// To this file.
    File(PathBuf),
    /// This text, for standard output (written by the caller once the EAL is gone).
    Stdout(String),
}

/// Reads the memory, lets the EAL go, draws, and writes the picture to its file; for `-o -`
/// the document is handed back to be printed.
pub fn run(args: MapArgs) -> Result<Written, String> {
    let eal = match &args.file_prefix {
        Some(prefix) => crate::proc_info::attach(prefix)?,
        None => crate::info::bring_up("map", args.eal_args)?.0,
    };
    let input = MapInput::collect(&eal);
    // Gone before anything is written: a primary is left alone as soon as possible, and this
    // process's own EAL leaves no files behind if the write ends the program.
    drop(eal);
    let svg = picture::render(&input);
    let document = if args.html {
        html::page(&input, &svg)
    } else {
        svg
    };
    let default_name = if args.html {
        "dpmem-map.html"
    } else {
        "dpmem-map.svg"
    };
    let path = args.output.unwrap_or_else(|| PathBuf::from(default_name));
    if path.as_os_str() == "-" {
        return Ok(Written::Stdout(document));
    }
    std::fs::write(&path, document)
        .map_err(|e| format!("writing the map to {}: {e}", path.display()))?;
    Ok(Written::File(path))
}
