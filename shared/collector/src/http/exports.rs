//! Export manifests (admin; CONTRACT section 4a): what each export served, newest first, and one
//! by id. The manifests are recorded by the export route and the CLI (`app::lineage`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::HttpState;
use super::auth::require;
use super::body::{Params, path_id};
use super::error::ApiError;
use crate::domain::lineage::ExportManifest;
use crate::domain::types::{Caller, FieldError, Id, PageLimit, Role};

pub fn router() -> Router<HttpState> {
    Router::new().route("/api/exports", get(list_exports)).route("/api/exports/{export_id}", get(get_export))
}

/// A page of manifests, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportPage {
    pub items: Vec<ExportManifest>,
    /// The `cursor` of the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Export manifests (admin), newest first: `limit` 1..100 (default 20), `cursor` from the
/// previous page. The interaction ids an export held are stored, not listed.
#[utoipa::path(get, path = "/api/exports", tag = "exports",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "default 20"),
           ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = ExportPage),
              (status = 400, description = "`validation_failed`: a bad `limit` or `cursor`"),
              (status = 401, description = "`unauthenticated`: no identity"),
              (status = 403, description = "`forbidden`: admin only")))]
pub async fn list_exports(State(s): State<HttpState>, caller: Caller, Params(q): Params) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
    let mut errors = Vec::new();
    let limit = match q.get("limit") {
        None => PageLimit::DEFAULT,
        Some(l) => PageLimit::parse(l).unwrap_or_else(|m| {
            errors.push(FieldError::new("limit", m));
            PageLimit::DEFAULT
        }),
    };
    let cursor = q.get("cursor").and_then(|c| {
        Id::parse(c).map_err(|_| errors.push(FieldError::new("cursor", "is not a cursor this API issued"))).ok()
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (items, next) = s.app.list_exports(limit, cursor).await?;
    Ok(Json(ExportPage { items, next_cursor: next.map(|id| id.to_string()) }).into_response())
}

/// One export's manifest (admin).
#[utoipa::path(get, path = "/api/exports/{export_id}", tag = "exports", params(("export_id" = uuid::Uuid, Path)),
    responses((status = 200, body = ExportManifest),
              (status = 401, description = "`unauthenticated`: no identity"),
              (status = 403, description = "`forbidden`: admin only"),
              (status = 404, description = "`not_found`: no such export (or not a UUID)")))]
pub async fn get_export(
    State(s): State<HttpState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&caller, &[Role::Admin])?;
    Ok(Json(s.app.export_manifest(path_id(&id)?).await?).into_response())
}
