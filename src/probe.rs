//! `pygmy probe URL`: exits 0 when `URL` answers a 2xx status, 1 otherwise
//! (another status, no answer, no answer in time). It is the health check of
//! the container image, which has no shell and no curl: `pygmy probe
//! http://127.0.0.1:8011/ready`.

use crate::load::parse_duration;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct ProbeArgs {
    /// What to ask, e.g. http://127.0.0.1:8010/ready (plain HTTP).
    pub url: String,
    /// Give up after this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `pygmy probe`: `Ok` with the status line on a 2xx.
pub async fn run(args: &ProbeArgs) -> Result<String, String> {
    if !args.url.starts_with("http://") {
        return Err(format!(
            "{:?}: expected a plain http:// URL, such as http://127.0.0.1:8010/ready",
            args.url
        ));
    }
    let answer = tokio::time::timeout(args.timeout, crate::http::get_json(&args.url))
        .await
        .map_err(|_| format!("{}: no answer in {:?}", args.url, args.timeout))??;
    match answer {
        (status @ 200..=299, body) => Ok(format!("{} {status} {body}", args.url)),
        (status, body) => Err(format!("{} answered {status}: {body}", args.url)),
    }
}
