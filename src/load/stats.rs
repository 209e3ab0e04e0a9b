//! What a load run measured: recorders (a few, shared by the clients and
//! merged at the end), live counters for the progress bar and for `chaos`,
//! and the report with its table.
//!
//! Latency is the time from sending a request to having read its whole
//! answer, recorded in microseconds in an HDR histogram (3 significant
//! digits, up to 60 s) for every request, failed ones included: a client
//! waited for those too.

use super::client::ErrorKind;
use super::mix::Op;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Highest latency the histograms hold exactly (larger values are clamped).
const MAX_MICROS: u64 = 60_000_000;

/// One operation's measurements.
#[derive(Clone)]
struct OpStats {
    latency: Histogram<u64>,
    count: u64,
    errors: BTreeMap<ErrorKind, u64>,
    /// The first message seen for each kind of error.
    samples: BTreeMap<ErrorKind, String>,
}

impl OpStats {
    fn new() -> Self {
        OpStats {
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("1..60 s at 3 digits is a valid histogram"),
            count: 0,
            errors: BTreeMap::new(),
            samples: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &OpStats) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.count += other.count;
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
        for (kind, sample) in &other.samples {
            self.samples.entry(*kind).or_insert_with(|| sample.clone());
        }
    }
}

/// Measurements of one or more load clients.
#[derive(Clone)]
pub struct Recorder {
    ops: [OpStats; 3],
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            ops: [OpStats::new(), OpStats::new(), OpStats::new()],
        }
    }
}

impl Recorder {
    /// Records one request: its latency and, if it failed, why.
    pub fn record(&mut self, op: Op, latency: Duration, error: Option<(ErrorKind, &str)>) {
        let stats = &mut self.ops[op.index()];
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        stats.latency.saturating_record(micros.clamp(1, MAX_MICROS));
        stats.count += 1;
        if let Some((kind, detail)) = error {
            *stats.errors.entry(kind).or_default() += 1;
            stats
                .samples
                .entry(kind)
                .or_insert_with(|| detail.chars().take(200).collect());
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.ops.iter_mut().zip(other.ops.iter()) {
            mine.merge(theirs);
        }
    }
}

/// Counters shared by all clients, read while the run goes on.
#[derive(Default)]
pub struct Live {
    sent: AtomicU64,
    errors: AtomicU64,
    failed: AtomicU64,
}

/// A reading of the live counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Requests answered or given up on.
    pub requests: u64,
    /// Of which not successful (4xx included).
    pub errors: u64,
    /// Of which failures: everything but a 4xx (see `ErrorKind::is_failure`).
    pub failed: u64,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            requests: self.requests - earlier.requests,
            errors: self.errors - earlier.errors,
            failed: self.failed - earlier.failed,
        }
    }
}

impl Live {
    pub fn record(&self, error: Option<ErrorKind>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if kind.is_failure() {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn read(&self) -> Counts {
        Counts {
            requests: self.sent.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Latency quantiles, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// One operation's line of the report (or the total's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpReport {
    pub op: String,
    pub count: u64,
    /// Requests that did not succeed, 4xx answers included.
    pub errors: u64,
    /// Errors other than 4xx answers (5xx, connect, timeout, io, bad answer).
    pub failed: u64,
    /// Requests per second over the whole run.
    pub throughput: f64,
    pub latency_ms: Latency,
    /// Errors by kind: an HTTP status (`"503"`), `connect`, `timeout`, `io`
    /// or `bad-answer`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first message seen for each kind.
    pub error_samples: BTreeMap<String, String>,
}

impl OpReport {
    fn from_stats(op: &str, stats: &OpStats, elapsed: Duration) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let h = &stats.latency;
        let latency = if stats.count == 0 {
            Latency::default()
        } else {
            Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }
        };
        let secs = elapsed.as_secs_f64();
        OpReport {
            op: op.to_string(),
            count: stats.count,
            errors: stats.errors.values().sum(),
            failed: stats
                .errors
                .iter()
                .filter(|(k, _)| k.is_failure())
                .map(|(_, n)| n)
                .sum(),
            throughput: if secs > 0.0 {
                stats.count as f64 / secs
            } else {
                0.0
            },
            latency_ms: latency,
            errors_by_kind: stats
                .errors
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            error_samples: stats
                .samples
                .iter()
                .map(|(k, s)| (k.to_string(), s.clone()))
                .collect(),
        }
    }
}

/// The whole run's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub api: String,
    pub mix: String,
    pub clients: u32,
    pub seed: u64,
    pub elapsed_s: f64,
    /// One line per operation that ran, in the order search, lookup, buy.
    pub ops: Vec<OpReport>,
    pub total: OpReport,
    /// Open loop (`--rate`): the rate asked for and reached.
    pub rate: Option<RateReport>,
    /// When buys found no stock.
    pub stock: Option<StockReport>,
    /// Requests sent again to another front end after theirs failed
    /// (`--url A,B,…`; see the `load` module docs).
    pub failovers: u64,
}

/// An open-loop run's rates (see the `load` module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateReport {
    /// Requests per second asked for.
    pub asked: f64,
    /// Requests per second answered (or given up on).
    pub reached: f64,
    /// The most any request was sent after it was due, in ms: a client
    /// still waiting for an earlier answer (latency counts this wait).
    pub most_behind_ms: f64,
}

/// When buys found no stock: a buy answered 404, or (mixes `session` and
/// `original`) a lookup showing the book sold out. Times are seconds from
/// the start of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StockReport {
    /// The last successful buy.
    pub last_buy_s: Option<f64>,
    /// The first time a buy or lookup found no stock.
    pub first_sold_out_s: Option<f64>,
    /// Buys answered 404 (no stock, or, with a store that restocks, no
    /// stock until the restock).
    pub sold_out_buys: u64,
    /// Lookups that showed the book sold out.
    pub sold_out_lookups: u64,
    /// Set when buys stopped for lack of stock: the last successful buy
    /// was more than a second (and a tenth of the run) before the end,
    /// and books were found sold out after it.
    pub buys_stopped_s: Option<f64>,
}

impl StockReport {
    pub fn new(
        last_buy_s: Option<f64>,
        first_sold_out_s: Option<f64>,
        last_sold_out_s: Option<f64>,
        sold_out_buys: u64,
        sold_out_lookups: u64,
        elapsed_s: f64,
    ) -> Self {
        let quiet = 1.0f64.max(elapsed_s / 10.0);
        let buys_stopped_s = match (last_buy_s, last_sold_out_s) {
            (last, Some(sold_out)) => {
                let last = last.unwrap_or(0.0);
                (elapsed_s - last > quiet && sold_out > last).then_some(last)
            }
            _ => None,
        };
        StockReport {
            last_buy_s,
            first_sold_out_s,
            sold_out_buys,
            sold_out_lookups,
            buys_stopped_s,
        }
    }

    /// One line for the table, or none when stock never ran out.
    fn line(&self) -> Option<String> {
        let first = self.first_sold_out_s?;
        let what = format!(
            "stock: first sold out at {first:.1} s; {} buys answered 404 (no stock), {} lookups showed none",
            self.sold_out_buys, self.sold_out_lookups
        );
        Some(match self.buys_stopped_s {
            Some(t) => format!(
                "{what}\nbuys STOPPED for lack of stock at {t:.1} s: no buy succeeded after it (restock, or use --mix session with the store's restock rule)"
            ),
            None => format!("{what}; buys went on to the end"),
        })
    }
}

impl Report {
    pub fn new(
        recorder: &Recorder,
        elapsed: Duration,
        url: String,
        api: String,
        mix: String,
        clients: u32,
        seed: u64,
    ) -> Self {
        let mut total = OpStats::new();
        let mut ops = Vec::new();
        for op in Op::ALL {
            let stats = &recorder.ops[op.index()];
            total.merge(stats);
            if stats.count > 0 {
                ops.push(OpReport::from_stats(op.name(), stats, elapsed));
            }
        }
        Report {
            url,
            api,
            mix,
            clients,
            seed,
            elapsed_s: elapsed.as_secs_f64(),
            ops,
            total: OpReport::from_stats("all", &total, elapsed),
            rate: None,
            stock: None,
            failovers: 0,
        }
    }

    /// The report as a table, for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} clients, mix {}, {} API, {:.1} s, seed {}\n",
            self.clients, self.mix, self.api, self.elapsed_s, self.seed
        );
        match &self.rate {
            Some(r) => out.push_str(&format!(
                "open loop: {:.0} req/s asked, {:.0} reached; latency from each request's intended start (most sent late: {:.1} ms)\n",
                r.asked, r.reached, r.most_behind_ms
            )),
            None => out.push_str("closed loop: latency from each request's send (--rate N for an open loop)\n"),
        }
        out.push_str(&format!(
            "{:<7} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "op", "count", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        ));
        for r in self.ops.iter().chain(std::iter::once(&self.total)) {
            let l = &r.latency_ms;
            out.push_str(&format!(
                "{:<7} {:>9} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
                r.op, r.count, r.errors, r.throughput, l.p50, l.p90, l.p99, l.p999, l.max
            ));
        }
        if let Some(line) = self.stock.as_ref().and_then(StockReport::line) {
            out.push_str(&line);
            out.push('\n');
        }
        if self.url.contains(',') {
            out.push_str(&format!(
                "failovers: {} requests sent again to another front end\n",
                self.failovers
            ));
        }
        if self.total.errors == 0 {
            out.push_str("no errors\n");
        } else {
            out.push_str("errors by kind:\n");
            for r in &self.ops {
                for (kind, n) in &r.errors_by_kind {
                    let sample = r.error_samples.get(kind).map_or("", String::as_str);
                    out.push_str(&format!(
                        "  {:<7} {:<10} {:>7}  e.g. {sample}\n",
                        r.op, kind, n
                    ));
                }
            }
            out.push_str(&format!(
                "{} failed (5xx, connect, timeout, io, bad answer); {} answered 4xx (unknown or sold-out item)\n",
                self.total.failed,
                self.total.errors - self.total.failed
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_errors_by_kind_and_separates_failures() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=100 {
            a.record(Op::Lookup, Duration::from_millis(i), None);
        }
        b.record(
            Op::Buy,
            Duration::from_millis(5),
            Some((ErrorKind::Status(404), "sold out")),
        );
        b.record(
            Op::Buy,
            Duration::from_millis(5),
            Some((ErrorKind::Connect, "refused")),
        );
        b.record(Op::Buy, Duration::from_millis(5), None);
        a.merge(&b);
        let report = Report::new(
            &a,
            Duration::from_secs(2),
            "u".into(),
            "original".into(),
            "m".into(),
            2,
            1,
        );
        let ops: Vec<&str> = report.ops.iter().map(|r| r.op.as_str()).collect();
        assert_eq!(ops, ["lookup", "buy"]);
        let buy = &report.ops[1];
        assert_eq!((buy.count, buy.errors, buy.failed), (3, 2, 1));
        assert_eq!(buy.errors_by_kind.get("404"), Some(&1));
        assert_eq!(buy.errors_by_kind.get("connect"), Some(&1));
        assert_eq!(report.total.count, 103);
        let lookup = &report.ops[0];
        assert!((lookup.throughput - 50.0).abs() < 1e-9);
        assert!((lookup.latency_ms.p50 - 50.0).abs() < 0.1);
        assert!((lookup.latency_ms.max - 100.0).abs() < 0.1);
        assert!(report.table().contains("connect"));
    }

    #[test]
    fn stock_report_says_when_buys_stopped() {
        // Sold out at 1 s, last buy at 1.2 s, lookups found none until the
        // end of a 10 s run: stopped.
        let r = StockReport::new(Some(1.2), Some(1.0), Some(9.9), 0, 500, 10.0);
        assert_eq!(r.buys_stopped_s, Some(1.2));
        assert!(r.line().unwrap().contains("STOPPED"));
        // Restocked: buys went on to 9.95 s.
        let r = StockReport::new(Some(9.95), Some(1.0), Some(9.9), 40, 40, 10.0);
        assert_eq!(r.buys_stopped_s, None);
        assert!(r.line().unwrap().contains("went on to the end"));
        // Never sold out: nothing to say.
        let r = StockReport::new(Some(9.9), None, None, 0, 0, 10.0);
        assert_eq!((r.buys_stopped_s, r.line()), (None, None));
    }
}
