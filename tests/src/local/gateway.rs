//! What API Gateway's HTTP API does for the local stack: match a request to a route of the
//! template, check its bearer token as the JWT authorizer would (every route but those that opt
//! out with `Authorizer: NONE`), build the payload-2.0 event with the verified claims, invoke the
//! function, answer. Paths under `/_` go to the stand-ins for outside parties instead.

use super::stand_ins::StandIns;
use super::LocalFunction;
use crate::apigw::{self, HttpCall};
use crate::contracts::api::ApiContract;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// API Gateway refuses bodies above 10 MB before any function sees them.
const API_GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

pub(super) struct Route {
    pub method: String,
    pub template: String,
    /// Opted out of the JWT authorizer (the payment provider's webhook: it is signed instead).
    pub public: bool,
    pub function: LocalFunction,
}

pub(super) struct Gateway {
    pub routes: Vec<Route>,
    pub stand_ins: StandIns,
    /// Every answer to a route that broke the published API (docs/openapi.yaml), at most 100:
    /// logged as it happens, and what a test of the local stack asserts is empty.
    pub contract_breaches: Arc<Mutex<Vec<String>>>,
}

pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = stopped.changed() => return,
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let gateway = gateway.clone();
                async move { Ok::<_, std::convert::Infallible>(gateway.handle(request, peer).await.map(Full::new)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A JSON answer with `{"message": …}`, as API Gateway gives when it answers itself.
pub(super) fn plain(status: u16, message: &str) -> hyper::Response<Bytes> {
    json(status, &serde_json::json!({ "message": message }))
}

pub(super) fn json(status: u16, body: &serde_json::Value) -> hyper::Response<Bytes> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("static response")
}

impl Gateway {
    pub(super) fn route(&self, method: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.method == method && apigw::match_route(&r.template, path).is_some())
    }

    async fn handle(&self, request: hyper::Request<Incoming>, peer: SocketAddr) -> hyper::Response<Bytes> {
        let method = request.method().as_str().to_owned();
        let path_and_query =
            request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
        let path = request.uri().path().to_owned();
        if path.starts_with("/_") {
            let idempotency_key =
                request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return plain(413, "Request Entity Too Large"),
            };
            let call = super::stand_ins::StandInCall { method: &method, path: &path, idempotency_key, body: &body };
            return self.stand_ins.handle(self, call).await;
        }
        let Some(route) = self.route(&method, &path) else {
            return plain(404, "Not Found");
        };
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let claims = if route.public {
            None
        } else {
            let authorization = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization"));
            match self.stand_ins.issuer.verify(authorization.map(|(_, v)| v.as_str())) {
                Ok(claims) => Some(claims),
                // API Gateway's own answer; the function is not invoked.
                Err(_) => return self.checked(route, plain(401, "Unauthorized")),
            }
        };
        let body = match Limited::new(request.into_body(), API_GATEWAY_BODY_LIMIT).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return self.checked(route, plain(413, "Request Entity Too Large")),
        };
        let body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
        let peer_ip = peer.ip().to_string();
        let call = HttpCall {
            method: &method,
            path: &path_and_query,
            route_template: &route.template,
            headers,
            body,
            source_ip: &peer_ip,
            claims,
        };
        self.invoke(route, &call).await
    }

    /// Invoke a route's function with the event for `call`, check its answer against the
    /// published API, and turn it into a response.
    pub(super) async fn invoke(&self, route: &Route, call: &HttpCall<'_>) -> hyper::Response<Bytes> {
        match route.function.http(apigw::request(call)).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let bytes = Bytes::copy_from_slice(orderflow::http::body_bytes(&body));
                self.checked(route, hyper::Response::from_parts(parts, bytes))
            }
            Err(err) => {
                tracing::error!(error = %err, "function error");
                self.checked(route, plain(500, "Internal Server Error"))
            }
        }
    }

    /// `answer` to a call of `route`, once checked against the published API: what breaks it is
    /// logged and recorded (the caller still gets the answer, as it would from AWS).
    fn checked(&self, route: &Route, answer: hyper::Response<Bytes>) -> hyper::Response<Bytes> {
        let route_key = format!("{} {}", route.method, route.template);
        let (parts, bytes) = answer.into_parts();
        if let Err(breach) = ApiContract::published().check(&route_key, parts.status.as_u16(), &parts.headers, &bytes) {
            tracing::error!(%breach, "the answer breaks docs/openapi.yaml");
            let mut breaches = self.contract_breaches.lock().expect("not poisoned");
            if breaches.len() < 100 {
                breaches.push(breach);
            }
        }
        hyper::Response::from_parts(parts, bytes)
    }
}

/// POST a signed JSON `payload` to the webhook at `path`, as an outside party (the payment
/// provider, a courier) would, with its `signature_header`: the webhook's status and JSON
/// answer, as `{"status", "body"}`; an error when the template has no such route.
pub(super) async fn deliver_signed(
    gateway: &Gateway,
    path: &str,
    signature_header: &str,
    signature: String,
    payload: String,
) -> Result<serde_json::Value, String> {
    let route = gateway.route("POST", path).ok_or_else(|| format!("the template has no POST {path} route"))?;
    let call = HttpCall {
        method: "POST",
        path,
        route_template: &route.template,
        headers: vec![("content-type".into(), "application/json".into()), (signature_header.into(), signature)],
        body: Some(payload),
        source_ip: "127.0.0.1",
        claims: None,
    };
    let response = gateway.invoke(route, &call).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice::<serde_json::Value>(response.body()).unwrap_or_default();
    Ok(serde_json::json!({ "status": status, "body": body }))
}
