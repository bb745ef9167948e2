//! What handlers answer with: the shared state they take (`State`) and the success body
//! `{"data": …}` (docs/api/README.md). Handlers import these from here, not from `api`.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::api::state::AppState;

pub type State = web::Data<AppState>;

/// A success body: `{"data": …}`.
#[derive(Serialize)]
pub struct Envelope<T> {
    pub data: T,
}

/// 200 `{"data": …}`.
pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    HttpResponse::Ok().json(Envelope { data })
}
