//! What turmoil's clock costs before Pygmy does anything: the same number
//! of hosts as a `pygmy-sim` run (five servers and the one host whose tasks
//! are every client and then the checker), all idle, stepped 1 ms at a
//! time for the 15 simulated seconds a seed's clients run. Every host's
//! tokio runtime is entered, its timers polled and its clock advanced on
//! every step whether or not it has work, so this is the floor under a
//! seed's CPU time (see the README's "Speed" paragraph of the simulation
//! section for the figures). It prints
//! the wall time; run it under `/usr/bin/time` for the CPU time, which is
//! steadier on a shared machine.
//!
//! ```text
//! cargo run --release -p pygmy-sim --example idle_ticks        # 1 ms ticks, as the runs use
//! cargo run --release -p pygmy-sim --example idle_ticks -- 2000 # 2 ms ticks, for comparison
//! ```

use std::time::{Duration, Instant};

fn main() {
    let tick_us: u64 = match std::env::args().nth(1) {
        Some(s) => match s.parse() {
            Ok(us) if us > 0 => us,
            _ => {
                eprintln!("usage: idle_ticks [TICK_MICROSECONDS]");
                std::process::exit(2);
            }
        },
        None => 1000,
    };
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(100))
        .tick_duration(Duration::from_micros(tick_us))
        .rng_seed(1)
        .build();
    for i in 0..5 {
        sim.host(format!("server-{i}"), || async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    sim.client("clients", async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Ok(())
    });
    let started = Instant::now();
    if let Err(e) = sim.run() {
        eprintln!("simulation error: {e}");
        std::process::exit(1);
    }
    let wall = started.elapsed();
    println!(
        "6 idle hosts, 15 s simulated in {tick_us} µs ticks: {:.3} s wall",
        wall.as_secs_f64()
    );
}
