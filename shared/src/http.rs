//! HTTP plumbing shared by the API functions: RFC 9457 problem details with a stable `code` and
//! the offending `field`, JSON responses, and path matching.

use crate::domain::FieldError;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

/// An error answer. `code` is stable and documented; `detail` is for humans and never carries
/// internal detail or personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub title: &'static str,
    pub status: u16,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Box<str>>,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// RFC 9457 extension members: what a client needs to act on the problem (the current
    /// prices after a price change, say).
    /// (Boxed: a problem travels in every handler's `Result`, and most have none.)
    #[serde(flatten, skip_serializing_if = "no_extensions")]
    pub extensions: Box<serde_json::Map<String, serde_json::Value>>,
    /// Seconds for the `Retry-After` header, when waiting helps.
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

/// 409s that mean "someone else was writing the same thing": retry as is.
const RETRYABLE_CONFLICTS: [&str; 3] = ["request-in-progress", "verification-busy", "shipment-busy"];

fn no_extensions(extensions: &serde_json::Map<String, serde_json::Value>) -> bool {
    extensions.is_empty()
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            title,
            status: status.as_u16(),
            code,
            field: None,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Box::default(),
            retry_after: None,
        }
    }

    /// A 429: a limit was reached; `retry_after` seconds from now the request may succeed.
    pub fn too_many(code: &'static str, detail: impl Into<String>, retry_after: u64) -> Self {
        let mut problem = Self::new(StatusCode::TOO_MANY_REQUESTS, code, "Too many requests", detail);
        problem.retry_after = Some(u32::try_from(retry_after).unwrap_or(u32::MAX).max(1));
        problem
    }

    pub fn with_extension(mut self, name: &str, value: impl Serialize) -> Self {
        self.extensions.insert(name.to_owned(), serde_json::to_value(value).expect("plain data"));
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into().into_boxed_str());
        self
    }

    /// A 400 listing every invalid field; the first one is also the top-level `code` and `field`.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let first = errors.first().cloned().expect("at least one field error");
        let mut problem =
            Self::new(StatusCode::BAD_REQUEST, first.code, "The request is invalid", first.detail.clone())
                .with_field(first.field);
        problem.errors = errors;
        problem
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", format!("no such {what}"))
    }

    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "route-not-found", "Not found", "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this route does not take that method",
        )
    }

    /// A failure of ours or of AWS; the detail stays in the logs, the client learns to retry.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily-unavailable",
            "Temporarily unavailable",
            "the service could not complete the request; retry with the same Idempotency-Key",
        )
    }

    /// The problem's `type` URI: one per stable code.
    pub fn type_uri(&self) -> String {
        format!("https://orderflow.dev/problems/{}", self.code)
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "type")]
            type_uri: String,
            #[serde(flatten)]
            problem: &'a Problem,
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(status, &Wire { type_uri: self.type_uri(), problem: &self });
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // Only where the same request may succeed on its own a moment later: not after a price
        // change or a decision already taken.
        let retryable = status == StatusCode::SERVICE_UNAVAILABLE || RETRYABLE_CONFLICTS.contains(&self.code);
        let retry_after = self.retry_after.or(retryable.then_some(1));
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).expect("response bodies are plain data");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .expect("static response parts are valid")
}

/// The request body as bytes, whatever form API Gateway delivered it in.
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// The non-empty segments of a path: `/orders/01H/cancel` → `["orders", "01H", "cancel"]`.
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conflicts_that_clear_by_themselves_say_when_to_retry() {
        let conflict = |code| Problem::new(StatusCode::CONFLICT, code, "t", "d").into_response();
        assert_eq!(conflict("request-in-progress").headers()[header::RETRY_AFTER], "1");
        assert!(conflict("price-changed").headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            Problem::too_many("verification-resend-too-soon", "d", 42).into_response().headers()[header::RETRY_AFTER],
            "42"
        );
    }

    #[test]
    fn invalid_fields_lead_with_the_first() {
        let p = Problem::invalid_fields(vec![
            FieldError { field: "phone".into(), code: "phone-malformed", detail: "bad".into() },
            FieldError { field: "currency".into(), code: "currency-unknown", detail: "bad".into() },
        ]);
        assert_eq!((p.status, p.code, p.field.as_deref()), (400, "phone-malformed", Some("phone")));
        let response = p.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_slice(body_bytes(response.body())).unwrap();
        assert_eq!(body["errors"][1]["field"], "currency");
        assert_eq!(body["type"], "https://orderflow.dev/problems/phone-malformed");
    }

    #[test]
    fn paths_split_into_segments() {
        assert_eq!(segments("/orders/01H/cancel/"), ["orders", "01H", "cancel"]);
        assert!(segments("/").is_empty());
    }
}
