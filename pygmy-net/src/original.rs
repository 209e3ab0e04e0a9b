//! The original Pygmy's three front-end endpoints, answered as it did so that
//! its clients work unchanged (see [`wire`](crate::wire) for the envelope).
//!
//! `/search` with a topic that has no books answers 404 `Failed` ("no books
//! in topic 'X'"): the original's query found nothing and it answered with
//! an error, and a 404 tells a client that mistyped a topic so.

use crate::api::{parse_id, PublicApi};
use crate::query::Params;
use crate::wire::{bought, listing, Failure, HttpResponse};
use hyper::StatusCode;

/// Which of the original's endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Search,
    Lookup,
    Buy,
}

/// Answers one original request (method already checked: GET).
pub async fn respond(api: &dyn PublicApi, route: Route, query: Option<&str>) -> HttpResponse {
    let params = Params::parse(query);
    let result = match route {
        Route::Search => search(api, &params).await,
        Route::Lookup => lookup(api, &params).await,
        Route::Buy => buy(api, &params).await,
    };
    result.unwrap_or_else(Failure::original)
}

async fn search(api: &dyn PublicApi, params: &Params<'_>) -> Result<HttpResponse, Failure> {
    let topic = required(params, "topic")?;
    let books = api.search(topic).await?;
    if books.is_empty() {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("no books in topic '{topic}'"),
        ));
    }
    Ok(listing(&books))
}

async fn lookup(api: &dyn PublicApi, params: &Params<'_>) -> Result<HttpResponse, Failure> {
    let id = parse_id(required(params, "id")?)?;
    let book = api.lookup(id).await?;
    Ok(listing(std::slice::from_ref(&book)))
}

async fn buy(api: &dyn PublicApi, params: &Params<'_>) -> Result<HttpResponse, Failure> {
    let id = parse_id(required(params, "id")?)?;
    let order = api.buy(id, 1, None).await?;
    Ok(bought(&order))
}

/// A parameter that must be present and non-empty.
fn required<'a>(params: &'a Params<'_>, name: &str) -> Result<&'a str, Failure> {
    match params.get(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Failure::bad_request(format!("missing parameter '{name}'"))),
    }
}
