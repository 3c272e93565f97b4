//! The local stack's runtime: the functions of the deployment template, each wired to its
//! triggers as AWS would: HTTP API routes on a local port, SQS queues polled into the consumer
//! with batch and partial-failure semantics. Handlers run in this process, called exactly as the
//! Lambda runtime calls them.

use crate::apigw::{self, HttpCall};
use crate::template::Trigger;
use crate::Stack;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use orderflow::handlers::event_relay::RelayDeps;
use orderflow::handlers::hold_expiry::{self, ExpiryDeps};
use orderflow::handlers::order_intake::{self, IntakeDeps};
use orderflow::handlers::payment_processor::{self, ProcessorDeps};
use orderflow::handlers::payment_webhook::{self, WebhookDeps};
use orderflow::handlers::staff_api::{self, StaffDeps};
use orderflow::handlers::stock_reservation::{self, ReservationDeps};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// API Gateway refuses bodies above 10 MB before any function sees them.
const API_GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// A function of the template, by its binary name, ready to be called.
#[derive(Clone)]
pub enum LocalFunction {
    OrderIntake(IntakeDeps),
    StaffApi(StaffDeps),
    StockReservation(ReservationDeps),
    HoldExpiry(ExpiryDeps),
    PaymentWebhook(WebhookDeps),
    PaymentProcessor(ProcessorDeps),
    EventRelay(RelayDeps),
}

impl LocalFunction {
    pub fn for_binary(stack: &Stack, binary: &str) -> Result<Self, String> {
        Ok(match binary {
            "order-intake" => Self::OrderIntake(stack.intake()),
            "staff-api" => Self::StaffApi(stack.staff()),
            "stock-reservation" => Self::StockReservation(stack.reservation()),
            "hold-expiry" => Self::HoldExpiry(stack.expiry()),
            "payment-webhook" => Self::PaymentWebhook(stack.payment_webhook()),
            "payment-processor" => Self::PaymentProcessor(stack.payment_processor()),
            "event-relay" => Self::EventRelay(stack.relay_deps()),
            other => return Err(format!("the template names a function binary {other:?} the local stack cannot run")),
        })
    }

    async fn http(&self, request: lambda_http::Request) -> Result<lambda_http::Response<lambda_http::Body>, String> {
        let result = match self {
            Self::OrderIntake(deps) => order_intake::handle(deps, request).await,
            Self::StaffApi(deps) => staff_api::handle(deps, request).await,
            Self::PaymentWebhook(deps) => payment_webhook::handle(deps, request).await,
            Self::StockReservation(_) | Self::HoldExpiry(_) | Self::PaymentProcessor(_) | Self::EventRelay(_) => {
                return Err("this function has no HTTP trigger".into())
            }
        };
        result.map_err(|e| e.to_string())
    }

    async fn sqs(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        match self {
            Self::StockReservation(deps) => Ok(stock_reservation::handle_batch(deps, event).await),
            Self::PaymentProcessor(deps) => Ok(payment_processor::handle_batch(deps, event).await),
            _ => Err("this function has no SQS trigger".into()),
        }
    }
}

struct Route {
    method: String,
    template: String,
    function: LocalFunction,
}

pub struct LocalOptions {
    pub api_port: Option<u16>,
    /// Concurrent pollers per queue: how many Lambda instances would consume it.
    pub pollers_per_queue: usize,
    /// Run scheduled functions this often instead of at the template's rate.
    pub schedule_every: Option<Duration>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self { api_port: None, pollers_per_queue: 2, schedule_every: None }
    }
}

/// `rate(5 minutes)` → 5 minutes. Cron expressions have no local runner.
pub fn parse_rate(expression: &str) -> Result<Duration, String> {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("only rate(...) schedules run locally, not {expression:?}"))?;
    let (count, unit) = inner.trim().split_once(' ').ok_or_else(|| format!("malformed rate {expression:?}"))?;
    let count: u64 = count.parse().map_err(|_| format!("malformed rate {expression:?}"))?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        other => return Err(format!("unknown rate unit {other:?}")),
    };
    Ok(Duration::from_secs(count * seconds))
}

/// The running local stack; dropping it stops the API and the pollers.
pub struct Running {
    pub api_address: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub async fn run(stack: Arc<Stack>, options: LocalOptions) -> Result<Running, String> {
    let (stop, stopped) = watch::channel(false);
    let mut routes = Vec::new();
    let mut tasks = Vec::new();
    for function in &stack.functions.functions {
        let local = LocalFunction::for_binary(&stack, &function.binary)?;
        for trigger in &function.triggers {
            match trigger {
                Trigger::Http { method, path } => {
                    routes.push(Route { method: method.clone(), template: path.clone(), function: local.clone() })
                }
                Trigger::Sqs { queue, batch_size } => {
                    if !matches!(local, LocalFunction::StockReservation(_) | LocalFunction::PaymentProcessor(_)) {
                        return Err(format!("{} has an SQS trigger but is not an SQS consumer", function.binary));
                    }
                    for _ in 0..options.pollers_per_queue.max(1) {
                        tasks.push(tokio::spawn(poll_queue(
                            stack.clone(),
                            queue.clone(),
                            *batch_size,
                            local.clone(),
                            stopped.clone(),
                        )));
                    }
                }
                Trigger::Schedule { expression } => {
                    let LocalFunction::HoldExpiry(deps) = &local else {
                        return Err(format!("{} has a schedule but is not a scheduled function", function.binary));
                    };
                    let every = match options.schedule_every {
                        Some(every) => every,
                        None => parse_rate(expression)?,
                    };
                    tasks.push(tokio::spawn(run_schedule(every, deps.clone(), stopped.clone())));
                }
                Trigger::TableStream(_) => {
                    let LocalFunction::EventRelay(deps) = &local else {
                        return Err(format!("{} reads the table stream but is not the event relay", function.binary));
                    };
                    let mapping = stack.relay_mapping().await?;
                    tasks.push(tokio::spawn(run_stream_mapping(mapping, deps.clone(), stopped.clone())));
                }
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.api_port.unwrap_or(0)))
        .await
        .map_err(|e| format!("cannot listen for the API: {e}"))?;
    let api_address = listener.local_addr().map_err(|e| e.to_string())?;
    let routes = Arc::new(routes);
    let mock = Arc::new(MockProvider {
        store: stack.store(),
        secret: Stack::webhook_secret(),
        notifier: stack.notifier.clone(),
    });
    tasks.push(tokio::spawn(serve_api(listener, routes, mock, stopped)));
    Ok(Running { api_address, stop, tasks })
}

async fn serve_api(
    listener: tokio::net::TcpListener,
    routes: Arc<Vec<Route>>,
    mock: Arc<MockProvider>,
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
        let (routes, mock) = (routes.clone(), mock.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (routes, mock) = (routes.clone(), mock.clone());
                async move { Ok::<_, std::convert::Infallible>(gateway(&routes, &mock, request, peer).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn plain(status: u16, message: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::json!({ "message": message }).to_string())))
        .expect("static response")
}

/// What API Gateway does for one request: match a route, build the event, invoke, answer.
async fn gateway(
    routes: &[Route],
    mock: &MockProvider,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let path = request.uri().path().to_owned();
    if method == "POST" && path == MockProvider::PATH {
        let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return plain(413, "Request Entity Too Large"),
        };
        return mock.pay(routes, &body).await;
    }
    if method == "GET" && path == "/_mock-notifier/messages" {
        let body = serde_json::json!({ "messages": mock.notifier.sent() }).to_string();
        return hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static response");
    }
    let Some(route) = routes.iter().find(|r| r.method == method && apigw::match_route(&r.template, &path).is_some())
    else {
        return plain(404, "Not Found");
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match Limited::new(request.into_body(), API_GATEWAY_BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(413, "Request Entity Too Large"),
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
    };
    match route.function.http(apigw::request(&call)).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = Bytes::copy_from_slice(orderflow::http::body_bytes(&body));
            hyper::Response::from_parts(parts, Full::new(bytes))
        }
        Err(err) => {
            tracing::error!(error = %err, "function error");
            plain(500, "Internal Server Error")
        }
    }
}

/// The payment provider, as far as the local stack needs one: `POST /_mock-provider/payments`
/// with `{"order_id": "...", "outcome": "succeeded"}` makes a payment event (amount and currency
/// from the order unless given; `event_id` repeats an earlier event), signs it with the local
/// webhook secret and delivers it to the webhook route, as the provider would.
pub struct MockProvider {
    store: orderflow::store::Store,
    secret: String,
    notifier: Arc<crate::notifier::LocalNotifier>,
}

#[derive(serde::Deserialize)]
struct MockPayment {
    order_id: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    amount_minor: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    payment_id: Option<String>,
}

impl MockProvider {
    pub const PATH: &'static str = "/_mock-provider/payments";

    async fn pay(&self, routes: &[Route], body: &[u8]) -> hyper::Response<Full<Bytes>> {
        let request: MockPayment = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return plain(400, &format!("expected {{\"order_id\": ..., \"outcome\": \"succeeded\"}}: {e}")),
        };
        let order = match orderflow::domain::OrderId::parse(&request.order_id) {
            Ok(id) => self.store.order(id).await.ok().flatten(),
            Err(_) => None,
        };
        let amount = request.amount_minor.or(order.as_ref().map(|o| o.total_minor)).unwrap_or(0);
        let currency = request
            .currency
            .or_else(|| order.as_ref().and_then(|o| serde_json::to_value(o.currency).ok()?.as_str().map(str::to_owned)))
            .unwrap_or_else(|| "CNY".into());
        let event = serde_json::json!({
            "id": request.event_id.unwrap_or_else(|| format!("evt_{}", ulid::Ulid::new())),
            "type": format!("payment.{}", request.outcome.as_deref().unwrap_or("succeeded")),
            "created": time::OffsetDateTime::now_utc().unix_timestamp(),
            "data": {
                "payment_id": request.payment_id.unwrap_or_else(|| format!("pay_{}", ulid::Ulid::new())),
                "order_id": request.order_id,
                "amount_minor": amount,
                "currency": currency,
            }
        });
        let payload = event.to_string();
        let signature = orderflow::domain::payment::sign(
            self.secret.as_bytes(),
            time::OffsetDateTime::now_utc().unix_timestamp(),
            payload.as_bytes(),
        );
        let Some(route) = routes.iter().find(|r| r.method == "POST" && r.template == "/payments/webhook") else {
            return plain(500, "the template has no POST /payments/webhook route");
        };
        let call = HttpCall {
            method: "POST",
            path: "/payments/webhook",
            route_template: &route.template,
            headers: vec![("content-type".into(), "application/json".into()), ("payment-signature".into(), signature)],
            body: Some(payload),
            source_ip: "127.0.0.1",
        };
        match route.function.http(apigw::request(&call)).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let answer: serde_json::Value =
                    serde_json::from_slice(orderflow::http::body_bytes(response.body())).unwrap_or_default();
                let body = serde_json::json!({ "event": event, "webhook": { "status": status, "body": answer } });
                hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .expect("static response")
            }
            Err(err) => plain(500, &err),
        }
    }
}

/// An EventBridge schedule: invoke on every tick, one invocation at a time (the template
/// reserves a concurrency of one), with the function's timeout as the deadline.
async fn run_schedule(every: Duration, deps: ExpiryDeps, mut stopped: watch::Receiver<bool>) {
    const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);
    const SAFETY_MARGIN: Duration = Duration::from_secs(10);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        let deadline = std::time::Instant::now() + FUNCTION_TIMEOUT - SAFETY_MARGIN;
        if let Err(err) = hold_expiry::sweep(&deps, Some(deadline)).await {
            tracing::error!(error = %err, "scheduled sweep failed");
        }
    }
}

/// The Lambda DynamoDB-stream event source: poll the table's stream, gather batches for the
/// template's batching window, invoke the relay, retry and checkpoint (see [`crate::stream`]).
async fn run_stream_mapping(
    mut mapping: crate::stream::StreamMapping,
    deps: RelayDeps,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let poll = mapping.poll(true, |event| crate::outbox::invoke_relay(deps.clone(), event));
        let report = tokio::select! {
            report = poll => report,
            _ = stopped.changed() => return,
        };
        match report {
            Ok(report) if report.delivered > 0 && report.failures == 0 => {}
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => {
                tracing::error!(error = %err, "reading the table stream failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The Lambda SQS event source: receive a batch, invoke, delete what succeeded. Failed messages
/// come back after the visibility timeout and, past maxReceiveCount, go to the dead-letter queue.
async fn poll_queue(
    stack: Arc<Stack>,
    queue: String,
    batch_size: i32,
    function: LocalFunction,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let event = tokio::select! {
            event = stack.receive(&queue, batch_size, 1) => event,
            _ = stopped.changed() => return,
        };
        if event.records.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let response = match function.sqs(event.clone()).await {
            Ok(response) => response,
            Err(err) => {
                tracing::error!(error = %err, "SQS consumer misconfigured");
                return;
            }
        };
        let failed: HashSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        let succeeded: Vec<_> = event
            .records
            .into_iter()
            .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
            .collect();
        stack.delete(&queue, &succeeded).await;
    }
}

/// A plain HTTP/1.1 client for the local API, as curl would call it.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    pub fn new(base: impl Into<String>) -> Self {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        Self { base: base.into(), client }
    }

    /// Status and JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<(u16, serde_json::Value), String> {
        let mut request = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| e.to_string())?;
        let response = self.client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
        };
        Ok((status, value))
    }
}
