//! The local stack's identity provider and authorizer, standing in for Cognito (or any OIDC
//! issuer) and for API Gateway's JWT authorizer: an RSA key generated at start, its JWKS, tokens
//! minted for the demo and the tests, and verification as the authorizer does it (the key by
//! `kid`, RS256, issuer, audience, expiry). What it passes on is what API Gateway passes on: the
//! claims as strings, the scopes as a list, in the request context.

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The audience tokens are issued for (the template's `JwtAudience`).
pub const AUDIENCE: &str = "orderflow";

/// What API Gateway's JWT authorizer hands the function once a token checks out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifiedClaims {
    pub claims: HashMap<String, String>,
    pub scopes: Vec<String>,
}

/// The kinds of token the local issuer mints.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenRequest {
    /// A shopper, signed in: the token's subject is the customer id.
    Customer { customer_id: String },
    /// A shop backend's client-credentials token, with scopes (`orderflow/orders.on-behalf`).
    Service { client_id: String, scopes: Vec<String> },
    /// A staff member, with the roles of their groups (`operations`, …).
    Staff { subject: String, roles: Vec<String> },
}

pub struct LocalIssuer {
    pub issuer: String,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks: Value,
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// jsonwebtoken takes raw RSA keys as PKCS#1 DER but aws-lc-rs exports PKCS#8, which
/// jsonwebtoken reads in PEM form: wrap the DER rather than re-encode the key by hand.
fn pkcs8_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

impl LocalIssuer {
    /// A fresh RSA-2048 key for `issuer` (a URL, as an OIDC issuer's).
    pub fn generate(issuer: impl Into<String>) -> Self {
        use aws_lc_rs::encoding::AsDer;
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
        let der = key.as_der().expect("PKCS#8 of a fresh key");
        let public = key.public_key();
        let (n, e) =
            (public.modulus().big_endian_without_leading_zero(), public.exponent().big_endian_without_leading_zero());
        let kid = ulid::Ulid::new().to_string();
        let jwks = json!({ "keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": base64url(n), "e": base64url(e)
        }]});
        Self {
            issuer: issuer.into(),
            kid,
            encoding: EncodingKey::from_rsa_pem(pkcs8_pem(der.as_ref()).as_bytes()).expect("a PKCS#8 RSA key"),
            decoding: DecodingKey::from_rsa_raw_components(n, e),
            jwks,
        }
    }

    /// The issuer's public keys, as `/.well-known/jwks.json` serves them.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// A token of `kind`, valid for `lifetime` from now.
    pub fn mint(&self, kind: &TokenRequest, lifetime: time::Duration) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({
            "iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + lifetime.whole_seconds(),
            "jti": ulid::Ulid::new().to_string(),
        });
        let extra = match kind {
            TokenRequest::Customer { customer_id } => json!({ "sub": customer_id, "token_use": "id" }),
            TokenRequest::Service { client_id, scopes } => {
                json!({ "sub": client_id, "client_id": client_id, "scope": scopes.join(" "), "token_use": "access" })
            }
            TokenRequest::Staff { subject, roles } => json!({ "sub": subject, "groups": roles, "token_use": "id" }),
        };
        claims.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(Algorithm::RS256) };
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("an RS256 token")
    }

    /// Check an `Authorization` header as the JWT authorizer does; the claims it passes on.
    pub fn verify(&self, authorization: Option<&str>) -> Result<VerifiedClaims, String> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or("no bearer token")?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err("unknown key".into());
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &self.decoding, &validation)
            .map_err(|e| e.to_string())?;
        let claims: HashMap<String, String> = data.claims.iter().map(|(k, v)| (k.clone(), as_claim(v))).collect();
        let scopes = claims.get("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        Ok(VerifiedClaims { claims, scopes })
    }
}

/// A claim as API Gateway renders it into the request context: strings as they are, arrays as
/// `[a b]`, anything else as JSON text.
fn as_claim(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(as_claim).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> LocalIssuer {
        LocalIssuer::generate("http://127.0.0.1:3000/_local-auth")
    }

    #[test]
    fn a_minted_token_verifies_and_passes_its_claims_as_api_gateway_does() {
        let issuer = issuer();
        let staff = issuer.mint(
            &TokenRequest::Staff { subject: "alice".into(), roles: vec!["operations".into(), "risk".into()] },
            time::Duration::minutes(5),
        );
        let verified = issuer.verify(Some(&format!("Bearer {staff}"))).unwrap();
        assert_eq!(verified.claims["sub"], "alice");
        assert_eq!(verified.claims["groups"], "[operations risk]");
        let service = issuer.mint(
            &TokenRequest::Service { client_id: "shop".into(), scopes: vec!["orderflow/orders.on-behalf".into()] },
            time::Duration::minutes(5),
        );
        assert_eq!(issuer.verify(Some(&format!("Bearer {service}"))).unwrap().scopes, ["orderflow/orders.on-behalf"]);
    }

    #[test]
    fn expired_foreign_tampered_or_missing_tokens_are_refused() {
        let (ours, theirs) = (issuer(), issuer());
        let customer = TokenRequest::Customer { customer_id: "cust-1".into() };
        let expired = ours.mint(&customer, time::Duration::seconds(-10));
        assert!(ours.verify(Some(&format!("Bearer {expired}"))).is_err(), "expired");
        let foreign = theirs.mint(&customer, time::Duration::minutes(5));
        assert!(ours.verify(Some(&format!("Bearer {foreign}"))).is_err(), "another issuer's key");
        let good = ours.mint(&customer, time::Duration::minutes(5));
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let claims = r#"{"sub":"cust-2","iss":"http://127.0.0.1:3000/_local-auth","aud":"orderflow","exp":9999999999}"#;
        parts[1] = base64url(claims.as_bytes());
        assert!(ours.verify(Some(&format!("Bearer {}", parts.join(".")))).is_err(), "claims changed after signing");
        assert!(ours.verify(None).is_err());
        assert!(ours.verify(Some("Basic dXNlcjpwdw==")).is_err());
        assert!(ours.verify(Some(&format!("Bearer {good}"))).is_ok());
    }
}
