//! The risk rule document: `GET /admin/risk-rules`, `PUT /admin/risk-rules` (versioned, audited;
//! the body names the version it edits).

use super::{invalid, json_body, unavailable, StaffDeps};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::info;

pub(super) async fn read_rules(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let stored = deps.common.store.risk_rules().await.map_err(unavailable)?;
    let saved = stored.is_some();
    let rules = stored.unwrap_or_else(crate::domain::risk::RiskRules::defaults);
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "rules": rules, "saved": saved })))
}

/// Save a new version. The body names the version it edits (`version`); a stale one is a 409.
pub(super) async fn put_rules(deps: &StaffDeps, request: &Request, who: &str) -> Result<Response<Body>, Problem> {
    let rules: crate::domain::risk::RiskRules = json_body(request)?;
    rules.validate().map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
    match deps.common.store.save_risk_rules(&rules, who, deps.common.clock.now()).await {
        Ok(saved) => {
            info!(actor = %who, version = saved.version, rules = saved.rules.len(), "risk rules saved");
            Ok(json_response(StatusCode::OK, &serde_json::json!({ "rules": saved, "saved": true })))
        }
        Err(crate::store::SaveRulesError::VersionConflict { current }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "rules-version-conflict",
            "Rules changed meanwhile",
            format!("the current version is {current}; reload, reapply your change and save with that version"),
        )
        .with_field("version")),
        Err(crate::store::SaveRulesError::Store(err)) => Err(unavailable(err)),
    }
}
