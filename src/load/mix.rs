//! What a load client does: the operations, and the mixes they are drawn
//! from (`--mix session`, `--mix original` or `--mix search=1,lookup=8,buy=1`).

use rand::Rng;
use serde::Serialize;
use std::fmt;

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Search,
    Lookup,
    Buy,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Search, Op::Lookup, Op::Buy];

    pub fn name(self) -> &'static str {
        match self {
            Op::Search => "search",
            Op::Lookup => "lookup",
            Op::Buy => "buy",
        }
    }

    /// Position in [`Op::ALL`] (per-operation tables are arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How each client chooses its next request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mix {
    /// The original client's session that keeps buying (the default of
    /// `pygmy load`): search a random topic, look up one of the books
    /// found, buy it — also when the lookup shows it sold out. Such a buy
    /// answers 404, and a store with the original's restock rule (on by
    /// default: `restock_on_empty`) restocks the book by 10 copies, so
    /// buys go on for the whole run instead of stopping once every book
    /// has sold out. The 404s are counted (errors, not failures) and the
    /// report says how many buys found no stock.
    Session,
    /// The original Pygmy client's session: search a random topic, look up
    /// one of the books found, buy it if the lookup shows copies in stock,
    /// then start over.
    Original,
    /// Independent requests, each operation drawn with these weights: a
    /// search of a random topic, a lookup or a buy of a random book.
    Weighted([u32; 3]),
}

impl Mix {
    /// Parses `session`, `original` or `op=weight,...` (ops: search, lookup, buy; an
    /// op left out has weight 0).
    pub fn parse(text: &str) -> Result<Mix, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("original") {
            return Ok(Mix::Original);
        }
        if text.eq_ignore_ascii_case("session") {
            return Ok(Mix::Session);
        }
        let mut weights = [0u32; 3];
        let mut seen = [false; 3];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(|| {
                format!("{part:?} is not op=weight (example: search=1,lookup=8,buy=1)")
            })?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown operation {:?} (expected search, lookup or buy)",
                        name.trim()
                    )
                })?;
            if seen[op.index()] {
                return Err(format!("{} is given twice", op.name()));
            }
            seen[op.index()] = true;
            weights[op.index()] = weight.trim().parse().map_err(|_| {
                format!(
                    "weight {:?} of {} is not a whole number",
                    weight.trim(),
                    op.name()
                )
            })?;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err(
                "the mix has no operation with a weight above 0 (example: search=1,lookup=8,buy=1)"
                    .into(),
            );
        }
        if weights.iter().map(|w| u64::from(*w)).sum::<u64>() > u64::from(u32::MAX) {
            return Err("the weights add up to more than 2^32".into());
        }
        Ok(Mix::Weighted(weights))
    }

    /// Draws an operation (weighted mixes only; the original session's
    /// steps depend on the previous answer).
    pub fn pick(weights: &[u32; 3], rng: &mut impl Rng) -> Op {
        let total: u32 = weights.iter().sum();
        let mut x = rng.gen_range(0..total);
        for op in Op::ALL {
            let w = weights[op.index()];
            if x < w {
                return op;
            }
            x -= w;
        }
        Op::Buy
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mix::Session => f.write_str("session (search, lookup, buy even if sold out)"),
            Mix::Original => f.write_str("original (search, lookup, buy if in stock)"),
            Mix::Weighted(w) => {
                let parts: Vec<String> = Op::ALL
                    .into_iter()
                    .filter(|op| w[op.index()] > 0)
                    .map(|op| format!("{}={}", op.name(), w[op.index()]))
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn parses_the_original_and_weighted_mixes() {
        assert_eq!(Mix::parse("original"), Ok(Mix::Original));
        assert_eq!(Mix::parse("Session"), Ok(Mix::Session));
        assert_eq!(
            Mix::parse("search=1, lookup=8,buy=1"),
            Ok(Mix::Weighted([1, 8, 1]))
        );
        assert_eq!(Mix::parse("buy=3"), Ok(Mix::Weighted([0, 0, 3])));
    }

    #[test]
    fn bad_mixes_name_the_problem() {
        let err = |s| Mix::parse(s).unwrap_err();
        assert!(err("serch=1").contains("unknown operation \"serch\""));
        assert!(err("buy").contains("not op=weight"));
        assert!(err("buy=x").contains("weight \"x\" of buy"));
        assert!(err("buy=1,buy=2").contains("buy is given twice"));
        assert!(err("buy=0").contains("no operation"));
        assert!(err("").contains("no operation"));
    }

    #[test]
    fn picks_only_operations_with_weight_and_roughly_in_proportion() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            counts[Mix::pick(&[1, 8, 0], &mut rng).index()] += 1;
        }
        assert_eq!(counts[Op::Buy.index()], 0);
        assert!(counts[Op::Lookup.index()] > 6 * counts[Op::Search.index()]);
    }
}
