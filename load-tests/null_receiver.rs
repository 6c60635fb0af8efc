//! The baseline for hookd's ingress: a minimal actix-web server that verifies
//! `X-Hub-Signature-256` like hookd does and answers 200, without journaling anything.
//!
//! cargo run --release --example null-receiver -- 127.0.0.1:18081 test_app_secret

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

// The same allocator as hookd, so the comparison measures hookd's work, not malloc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use hookd::meta::signature::verify;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18081".into());
    let secret = args.next().unwrap_or_else(|| "test_app_secret".into());
    let secrets = web::Data::new(vec![secret.into_bytes()]);
    eprintln!("null receiver on {listen}");
    HttpServer::new(move || {
        App::new()
            .app_data(secrets.clone())
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .route("/webhooks/{source}", web::post().to(receive))
    })
    .bind(listen)?
    .run()
    .await
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    secrets: web::Data<Vec<Vec<u8>>>,
) -> HttpResponse {
    let header = req
        .headers()
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes());
    match verify(header, &body, &secrets) {
        Ok(()) => HttpResponse::Ok().body("EVENT_RECEIVED"),
        Err(_) => HttpResponse::Unauthorized().finish(),
    }
}
