//! The allocator's arenas of a node process.
//!
//! glibc's malloc gives threads that allocate at the same time arenas of
//! their own (up to eight per core), and keeps memory freed in an arena
//! for that arena. A node's runtime threads take turns at the same work
//! (a merge of the order index on one, the next on another), so each arena
//! ends up holding its own high-water mark. After the report's 60 s mixed
//! load (about 300,000 orders) the order primary held 28.2 MB (peak 32.0)
//! with the default, 26.8 (30.3) with two arenas and 22.6 (26.5) with one;
//! the catalog primary 26.4, 16.2 and 15.3 MB (see docs/BENCHMARKS.md).
//! Each node runs one or two busy threads, so one arena's lock is rarely
//! contended.

/// Limits this process to one malloc arena. Call it before starting any
/// thread; a no-op off glibc.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, and is called
    // before any other thread exists, as glibc asks.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands memory freed inside the heap back to the operating system.
///
/// With one arena, memory freed by connections that have gone (each held a
/// read buffer and its task) stays in the arena's free lists, scattered
/// between live blocks, so the heap's top is rarely free and glibc's own
/// trimming does nothing: 2,000 slow clients that came and went left a
/// front end at 31 MB instead of 11. `malloc_trim` also releases the free
/// pages inside the heap. A no-op off glibc.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free
    // memory; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Every `every`, [`trim`]s the heap, so memory a burst of clients held
/// returns once they leave. A trim of a heap with nothing to give back costs
/// microseconds.
pub async fn trim_every(every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        trim();
    }
}
