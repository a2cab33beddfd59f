//! Checking a pool's bookkeeping (`rte_mempool_audit`) and describing it
//! (`rte_mempool_dump`).

use dpmem_eal::options::MAX_LCORE;

use crate::cache;
use crate::error::MempoolError;
use crate::layout::{COOKIE_IN_POOL, COOKIE_OUT, COOKIE_TRAILER};
use crate::pool::Mempool;

impl<'eal> Mempool<'eal> {
    /// Checks the pool's bookkeeping (`rte_mempool_audit`): counts within bounds, caches
    /// below their limits, every object's header naming this pool, and with the `debug`
    /// feature every object's trailer intact and cookie valid.
    pub fn audit(&self) -> Result<(), MempoolError> {
        let bad = |reason: String| MempoolError::Handler {
            pool: self.name.clone(),
            handler: self.handler_name(),
            reason,
        };
        if self.populated_size() > self.size() {
            return Err(bad("more objects than the pool size".into()));
        }
        if !self.caches.is_null() {
            for lcore in 0..MAX_LCORE as usize {
                let len = self.cache_len_at(lcore);
                if len as usize > cache::CACHE_SLOTS {
                    return Err(bad(format!("lcore {lcore} cache holds {len} objects")));
                }
            }
        }
        let pool = self.header.as_ptr() as u64;
        let mut problem = None;
        let objects = self.obj_iter(|_, obj, i| {
            // SAFETY: obj_iter yields this pool's objects, whose headers precede them.
            let h = unsafe { &*Self::obj_header(obj) };
            if problem.is_none() && h.pool != pool {
                problem = Some(format!("object {i} at {obj:p} names another pool"));
            }
            if cfg!(feature = "debug") && problem.is_none() {
                // SAFETY: the trailer follows the element inside the slot.
                let trailer = unsafe { self.trailer_of(obj) };
                if trailer != COOKIE_TRAILER {
                    problem = Some(format!("object {i} at {obj:p}: write past its end"));
                } else if h.cookie != COOKIE_IN_POOL && h.cookie != COOKIE_OUT {
                    problem = Some(format!("object {i} at {obj:p}: header overwritten"));
                }
            }
        });
        if let Some(p) = problem {
            return Err(bad(p));
        }
        if objects != self.populated_size() {
            return Err(bad(format!(
                "{objects} objects listed, {} populated",
                self.populated_size()
            )));
        }
        Ok(())
    }

    /// A description of the pool (`rte_mempool_dump`).
    pub fn dump(&self) -> String {
        let o = self.obj_size();
        let mut s = format!(
            "mempool <{}>@{:p}\n  flags={:#x}\n  socket={}\n  handler={}\n  pool_data={:#x}\n  \
             size={}\n  populated_size={}\n  header_size={}\n  elt_size={}\n  trailer_size={}\n  \
             total_obj_size={}\n  private_data_size={}\n  nb_mem_chunks={}\n  cache_size={}\n  \
             avail_count={}\n  in_use_count={}\n",
            self.name,
            self.header,
            self.flags().bits(),
            self.socket(),
            self.handler_name(),
            self.hdr().pool_data,
            self.size(),
            self.populated_size(),
            o.header_size,
            o.elt_size,
            o.trailer_size,
            o.total_size,
            self.private_data_size(),
            self.nb_mem_chunks(),
            self.cache_size(),
            self.avail_count(),
            self.in_use_count()
        );
        if let Some(store) = &self.store {
            s.push_str(&format!("  store: {store:?}\n"));
        }
        if !self.caches.is_null() {
            for lcore in 0..MAX_LCORE as usize {
                let len = self.cache_len_at(lcore);
                if len > 0 {
                    s.push_str(&format!("  cache lcore {lcore}: {len}\n"));
                }
            }
        }
        self.mem_iter(|_, c| {
            let iova = c
                .iova
                .map_or_else(|| "unknown".to_owned(), |i| i.to_string());
            s.push_str(&format!(
                "  chunk {:#x} iova={iova} len={} objects={}\n",
                c.addr, c.len, c.objects
            ))
        });
        s
    }
}
