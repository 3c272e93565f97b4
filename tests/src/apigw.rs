//! API Gateway HTTP API (payload 2.0) events, built as API Gateway builds them and turned into
//! the `lambda_http::Request` a handler receives, through the same conversion the runtime uses.

use lambda_http::request::LambdaRequest;
use lambda_http::Request;
use serde_json::{json, Map, Value};

/// A route template from the deployment template (`/orders/{id}`) and the values it captures.
pub fn match_route(template: &str, path: &str) -> Option<Map<String, Value>> {
    let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Map::new();
    for (t, p) in t.iter().zip(&p) {
        match t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_owned(), Value::String((*p).to_owned()));
            }
            None if t == p => {}
            None => return None,
        }
    }
    Some(params)
}

pub struct HttpCall<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub route_template: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub source_ip: &'a str,
    /// What the JWT authorizer verified, for a route behind it.
    pub claims: Option<crate::auth::VerifiedClaims>,
}

/// The payload-2.0 event API Gateway would send for this call.
pub fn event_json(call: &HttpCall<'_>) -> Value {
    let (path, query) = call.path.split_once('?').unwrap_or((call.path, ""));
    let mut headers = Map::new();
    for (name, value) in &call.headers {
        headers.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
    }
    let now = time::OffsetDateTime::now_utc();
    let authorizer =
        call.claims.as_ref().map(|verified| json!({ "jwt": { "claims": verified.claims, "scopes": verified.scopes } }));
    json!({
        "version": "2.0",
        "routeKey": format!("{} {}", call.method, call.route_template),
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        // A path its route does not match would have another route's answer checked against it.
        "pathParameters": match_route(call.route_template, path)
            .unwrap_or_else(|| panic!("{path} is not a path of the route {}", call.route_template)),
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": format!("{} {}", call.method, call.route_template),
            "stage": "$default",
            "time": now.unix_timestamp().to_string(),
            "timeEpoch": now.unix_timestamp() * 1000 + i64::from(now.millisecond()),
            "authorizer": authorizer,
            "http": {
                "method": call.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": call.source_ip,
                "userAgent": call.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v.as_str()).unwrap_or("")
            }
        },
        "body": call.body,
        "isBase64Encoded": false
    })
}

/// Turn an API Gateway event (from [`event_json`] or a file in `events/`) into a request.
pub fn request_from_event(event: Value) -> Request {
    let lambda_request: LambdaRequest = serde_json::from_value(event).expect("a valid API Gateway v2 event");
    lambda_request.into()
}

pub fn request(call: &HttpCall<'_>) -> Request {
    request_from_event(event_json(call))
}

/// A file from `events/` as a request.
pub fn request_from_file(name: &str) -> Request {
    let path = crate::emulators::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    request_from_event(serde_json::from_str(&text).expect("event file is JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_capture_their_parameters() {
        assert_eq!(match_route("/orders/{id}", "/orders/42").unwrap()["id"], "42");
        assert!(match_route("/orders/{id}", "/orders/42/cancel").is_none());
        assert!(match_route("/orders", "/stock").is_none());
    }
}
