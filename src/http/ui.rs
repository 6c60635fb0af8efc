//! hookd's own pages (the API reference; the dashboard), their assets compiled into the
//! binary, every answer with a strict Content-Security-Policy: scripts, styles and requests
//! from hookd itself only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

/// Scripts, styles and requests from this origin only; no frames, forms, plugins or inline code.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// A file served under `/ui/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "hookd.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../ui/hookd.css"),
    },
    Asset {
        name: "reference.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/reference.js"),
    },
];

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

/// `GET /ui/{file}`: a stylesheet or script of hookd's pages.
#[utoipa::path(get, path = "/ui/{file}", operation_id = "ui_asset", tag = "pages", security(()),
    params(("file" = String, Path, description = "`hookd.css`, `reference.js`, …")),
    responses((status = 200, description = "The file", body = String),
        (status = 404, description = "No such file", body = crate::http::openapi::ErrorBody)))]
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == file.as_str()) {
        Some(a) => secured(a.content_type, a.body),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "error": {"code": "not_found", "message": "no such file"}
        })),
    }
}
