//! Request authentication (SPEC §4): the bearer token, the `X-Tenant-ID`
//! check and the super-admin role, as extractors.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use uuid::Uuid;

use super::error::ApiError;
use crate::app::AppState;
use crate::domain::tenancy::{Ctx, TenantId};
use crate::platform::auth::AuthError;

/// An authenticated caller, with the correlation id of the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Ctx);

/// An authenticated super-admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Ctx);

fn correlation_id(parts: &Parts) -> String {
    ["x-correlation-id", "x-request-id"]
        .iter()
        .find_map(|h| {
            parts
                .headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .filter(|v| {
                    !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
                })
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A proxy or client that sends two of these has a bug or an
        // intention; neither is served by checking only the first.
        for name in [header::AUTHORIZATION.as_str(), "x-tenant-id"] {
            if parts.headers.get_all(name).iter().nth(1).is_some() {
                return Err(ApiError::bad_request(format!(
                    "the {name} header is repeated; send it once"
                )));
            }
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized(&AuthError::Missing))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized(&AuthError::Missing))?;
        let principal = state
            .tokens
            .verify(token)
            .map_err(|e| ApiError::unauthorized(&e))?;
        if let Some(claimed) = parts.headers.get("x-tenant-id") {
            let claimed = claimed
                .to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .map(TenantId);
            if claimed != Some(principal.tenant_id) {
                return Err(ApiError::forbidden(
                    "X-Tenant-ID does not match the token's tenant",
                ));
            }
        }
        Ok(Self(Ctx {
            principal,
            correlation_id: correlation_id(parts),
            causation_id: None,
        }))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(ctx) = Caller::from_request_parts(parts, state).await?;
        if !ctx.principal.is_super_admin {
            return Err(ApiError::forbidden(
                "this route requires a super-admin token",
            ));
        }
        Ok(Self(ctx))
    }
}
