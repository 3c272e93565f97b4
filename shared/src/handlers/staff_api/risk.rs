//! The risk rule document: `GET /admin/risk-rules`, `PUT /admin/risk-rules` (versioned, audited;
//! the body names the version it edits). Blacklisted phones, addresses and IPs are stored as
//! keyed fingerprints: a save fingerprints each clear value and keeps what already is one, so a
//! document read back and saved again keeps its lists.

use super::{invalid, json_body, unavailable, StaffDeps};
use crate::domain::risk::{ListField, RiskRules};
use crate::domain::values::Invalid;
use crate::domain::Phone;
use crate::http::{json_response, Problem};
use crate::personal::{Fingerprint, Fingerprinter};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use std::net::IpAddr;
use tracing::info;

pub(super) async fn read_rules(deps: &StaffDeps) -> Result<Response<Body>, Problem> {
    let stored = deps.common.store.risk_rules().await.map_err(unavailable)?;
    let saved = stored.is_some();
    let rules = stored.unwrap_or_else(crate::domain::risk::RiskRules::defaults);
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "rules": rules, "saved": saved })))
}

/// Save a new version. The body names the version it edits (`version`); a stale one is a 409.
pub(super) async fn put_rules(deps: &StaffDeps, request: &Request, who: &str) -> Result<Response<Body>, Problem> {
    let rules: RiskRules = json_body(request)?;
    rules.validate().map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
    let fingerprinter = deps.personal.fingerprints.fingerprinter(&deps.common.store).await.map_err(unavailable)?;
    let rules = rules
        .fingerprint_lists(|field, value| list_value(fingerprinter, field, value))
        .map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
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

/// A personal list value as stored: a fingerprint as it is, or the fingerprint of a phone (E.164),
/// an IP, or an address written `country|province|city|district|street or locker station|house
/// or locker number` (the district may be empty), the parts an order's address is matched by.
fn list_value(fingerprinter: &Fingerprinter, field: ListField, value: &str) -> Result<String, Invalid> {
    if let Some(fingerprint) = Fingerprint::parse(value) {
        return Ok(fingerprint.to_string());
    }
    let made = match field {
        ListField::Phone => fingerprinter.phone(&Phone::parse(value)?),
        ListField::Ip => {
            let ip: IpAddr = value.parse().map_err(|_| Invalid::new("ip-invalid", "an IPv4 or IPv6 address"))?;
            fingerprinter.ip(ip)
        }
        ListField::Address => {
            let parts: Vec<&str> = value.split('|').collect();
            let required = [0, 1, 2, 4, 5];
            if parts.len() != 6 || required.iter().any(|&i| parts[i].trim().is_empty()) {
                return Err(Invalid::new(
                    "address-invalid",
                    "an address is listed as country|province|city|district|street or locker station|house or locker number",
                ));
            }
            fingerprinter.address(&parts)
        }
        ListField::Customer | ListField::Device => return Ok(value.to_owned()),
    };
    Ok(made.to_string())
}
