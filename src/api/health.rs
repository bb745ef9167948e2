use actix_web::HttpResponse;
use serde_json::json;

/// `GET /healthz`: answers once the store is open, which it is before the server listens.
pub async fn check() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}
