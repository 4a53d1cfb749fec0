//! Placeholder: filled in by the next change.

use crate::Console;
use axum::Router;

pub fn routes() -> Router<Console> {
    Router::new()
}
