//! The API's OpenAPI description and its reference page: served without a key, the page and
//! its assets under a strict Content-Security-Policy.

use crate::helpers::{Storage, TestApp};

#[actix_web::test]
async fn the_openapi_description_is_served_without_a_key_with_the_configured_page_limit() {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.api.max_page_size = 77;
    let app = TestApp::spawn(settings).await;
    let res = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let limit = doc["paths"]["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("a limit parameter")
        .clone();
    assert_eq!(limit["schema"]["maximum"], 77, "{limit}");
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
}

#[actix_web::test]
async fn the_reference_page_and_its_assets_carry_a_strict_content_security_policy() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    for (path, kind) in [
        ("/docs/api", "text/html"),
        ("/ui/reference.js", "text/javascript"),
        ("/ui/hookd.css", "text/css"),
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers();
        assert!(
            h["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    let page = app
        .client
        .get(format!("{}/docs/api", app.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("/ui/reference.js") && !page.contains("<script>"),
        "no inline script"
    );
    let missing = app
        .client
        .get(format!("{}/ui/nothing.js", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
}
