//! Small answers every handler gives: a page with a status, a JSON error, and when to come
//! back.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::html;

/// A small HTML page with a status.
pub fn problem(status: StatusCode, text: &str) -> Response {
    let page = html::message_page("./", text);
    (status, Html(page)).into_response()
}

pub fn json_error(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}

/// Tell the client when to come back.
pub fn busy(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

pub fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}
