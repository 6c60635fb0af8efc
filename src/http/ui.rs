//! hookd's own pages (the API reference; the dashboard), their assets compiled into the
//! binary, every answer with a strict Content-Security-Policy: scripts, styles and requests
//! from hookd itself only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

/// Scripts, styles and requests from this origin only; no frames, forms, plugins or inline code.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// A file served under `/ui/`: its name, and its text compiled in.
struct Asset {
    name: &'static str,
    body: &'static str,
}

macro_rules! assets {
    ($($name:literal),+ $(,)?) => {
        &[$(Asset { name: $name, body: include_str!(concat!("../ui/", $name)) }),+]
    };
}

/// Every stylesheet and script of hookd's pages (`src/ui/`).
const ASSETS: &[Asset] = assets!(
    "hookd.css",
    "reference.js",
    "dashboard.js",
    "api.js",
    "dom.js",
    "charts.js",
    "overview.js",
    "live.js",
    "events.js",
    "dead.js",
    "quarantine.js",
    "endpoints.js",
    "suites.js",
);

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

/// `body` with the security headers every page and asset carries.
fn secured(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        // Pages and assets change with the binary; a browser asks again each time.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    res.body(body)
}

/// `GET /docs/api`: the API reference, rendered from `/api/v1/openapi.json`.
#[utoipa::path(get, path = "/docs/api", operation_id = "api_reference", tag = "pages", security(()),
    responses((status = 200, description = "The API reference page", content_type = "text/html", body = String)))]
pub async fn reference() -> HttpResponse {
    secured(
        "text/html; charset=utf-8",
        include_str!("../ui/reference.html"),
    )
}

/// `GET /dashboard`: the operator's dashboard (sign in with an API key).
#[utoipa::path(get, path = "/dashboard", operation_id = "dashboard", tag = "pages", security(()),
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String)))]
pub async fn dashboard() -> HttpResponse {
    secured(
        "text/html; charset=utf-8",
        include_str!("../ui/dashboard.html"),
    )
}

/// `GET /`: to the dashboard.
#[utoipa::path(get, path = "/", operation_id = "root", tag = "pages", security(()),
    responses((status = 302, description = "To `/dashboard`")))]
pub async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/dashboard"))
        .finish()
}

/// `GET /ui/{file}`: a stylesheet or script of hookd's pages.
#[utoipa::path(get, path = "/ui/{file}", operation_id = "ui_asset", tag = "pages", security(()),
    params(("file" = String, Path, description = "`hookd.css`, `reference.js`, …")),
    responses((status = 200, description = "The file", body = String),
        (status = 404, description = "No such file", body = crate::http::openapi::ErrorBody)))]
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == file.as_str()) {
        Some(a) => secured(content_type(a.name), a.body),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "error": {"code": "not_found", "message": "no such file"}
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_pages_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".js") || n.ends_with(".css"))
            .collect();
        files.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        served.sort();
        assert_eq!(files, served);
    }
}
