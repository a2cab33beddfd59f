//! The mempools part of `dpmem info`: every pool the EAL's memzones hold (a primary's pools
//! show when `dpmem info` attaches as a secondary).

use std::fmt::Write;

use dpmem::eal::Eal;
use dpmem::mbuf::PktmbufPool;
use dpmem::mempool::Mempool;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct MempoolInfo {
    pub name: String,
    pub size: u32,
    pub elt_size: u32,
    pub cache_size: u32,
    pub avail: u32,
    pub in_use: u32,
    pub handler: String,
    pub socket: dpmem::Socket,
    pub populated: u32,
    pub non_io: bool,
    /// Objects held in per-lcore caches, for each lcore whose cache holds any.
    pub lcore_caches: Vec<LcoreCacheCount>,
    /// For a packet buffer pool: its buffers' room and private sizes, pinned or not.
    pub packet_buffers: Option<PacketBuffers>,
    /// The memzone holding the pool's header, private area and caches.
    pub memzone: String,
    /// Where the objects are (`dpmem map` draws them; the text and JSON leave them out, as a
    /// pool populated page by page has one per page).
    #[serde(skip)]
    pub chunks: Vec<ObjectChunk>,
}

/// A stretch of memory holding some of a pool's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectChunk {
    pub va: usize,
    pub len: usize,
    pub objects: u32,
}

#[derive(Debug, Serialize)]
pub struct LcoreCacheCount {
    pub lcore: u32,
    pub count: u32,
}

#[derive(Debug, Serialize)]
pub struct PacketBuffers {
    pub data_room: u16,
    pub priv_size: u16,
    pub pinned: bool,
}

pub fn collect(eal: &Eal) -> Vec<MempoolInfo> {
    let mut pools = Vec::new();
    Mempool::walk(eal, |p| {
        pools.push(MempoolInfo {
            name: p.name().to_owned(),
            size: p.size(),
            elt_size: p.elt_size(),
            cache_size: p.cache_size(),
            avail: p.avail_count(),
            in_use: p.in_use_count(),
            handler: p.handler_name(),
            socket: p.socket(),
            populated: p.populated_size(),
            non_io: p.is_non_io(),
            lcore_caches: p
                .lcore_cache_counts()
                .into_iter()
                .map(|(lcore, count)| LcoreCacheCount { lcore, count })
                .collect(),
            packet_buffers: PktmbufPool::describe(p).map(|d| PacketBuffers {
                data_room: d.data_room,
                priv_size: d.priv_size,
                pinned: d.pinned,
            }),
            memzone: p.memzone().name.clone(),
            chunks: object_chunks(p),
        })
    });
    pools
}

fn object_chunks(pool: &Mempool<'_>) -> Vec<ObjectChunk> {
    let mut chunks = Vec::new();
    pool.mem_iter(|_, chunk| {
        chunks.push(ObjectChunk {
            va: chunk.addr,
            len: chunk.len,
            objects: chunk.objects,
        })
    });
    chunks
}

pub fn render(pools: &[MempoolInfo]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "mempools: {}", pools.len());
    for p in pools {
        let _ = writeln!(
            out,
            "  {}: size {} elt {} cache {} avail {} in use {} handler {} {}{}{}{}",
            p.name,
            p.size,
            p.elt_size,
            p.cache_size,
            p.avail,
            p.in_use,
            p.handler,
            p.socket,
            if p.non_io { " non-io" } else { "" },
            render_caches(&p.lcore_caches),
            match &p.packet_buffers {
                Some(b) => format!(
                    "; packet buffers: room {} priv {}{}",
                    b.data_room,
                    b.priv_size,
                    if b.pinned { " pinned external" } else { "" }
                ),
                None => String::new(),
            }
        );
    }
    out
}

/// `; cached: lcore 0: 12, lcore 3: 5`, or nothing when no cache holds an object.
fn render_caches(caches: &[LcoreCacheCount]) -> String {
    if caches.is_empty() {
        return String::new();
    }
    let each: Vec<String> = caches
        .iter()
        .map(|c| format!("lcore {}: {}", c.lcore, c.count))
        .collect();
    format!("; cached: {}", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_pool_with_its_counts() {
        let prefix = format!("cli_mp{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
        let pool = Mempool::create(
            &eal,
            "cli_pool",
            100,
            64,
            8,
            0,
            dpmem::Socket::Any,
            dpmem::mempool::MempoolFlags::empty(),
        )
        .unwrap();
        let obj = pool.get().unwrap();
        let pools = collect(&eal);
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].name, "cli_pool");
        assert_eq!(pools[0].in_use, 1);
        assert_eq!(pools[0].handler, "ring_mp_mc");
        assert_eq!(pools[0].memzone, pool.memzone().name);
        let objects: u32 = pools[0].chunks.iter().map(|c| c.objects).sum();
        assert_eq!(objects, 100);
        let text = render(&pools);
        assert!(
            text.contains("cli_pool: size 100 elt 64 cache 8 avail 99 in use 1"),
            "{text}"
        );
        // SAFETY: the object came from this pool.
        unsafe { pool.put(obj) };
        pool.free().unwrap();
    }

    #[test]
    fn a_packet_buffer_pool_shows_its_room_and_private_size() {
        let prefix = format!("cli_mb{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
        let pool = PktmbufPool::builder("cli_pkts", 63)
            .priv_size(8)
            .create(&eal)
            .unwrap();
        let packet = pool.alloc().unwrap();
        let text = render(&collect(&eal));
        assert!(
            text.contains("cli_pkts: size 63 elt 2312 cache 0 avail 62 in use 1"),
            "{text}"
        );
        assert!(text.contains("packet buffers: room 2176 priv 8"), "{text}");
        drop(packet);
        pool.free().unwrap();
    }
}
