//! The local stack's runtime: the functions of the deployment template, each wired to its
//! triggers as AWS would: HTTP API routes on a local port behind the JWT check
//! ([`gateway`]), SQS queues polled into the consumer with batch and partial-failure semantics,
//! the table's stream into the relay, schedules on a timer; and the stand-ins for outside
//! parties ([`stand_ins`]). Handlers run in this process, called exactly as the Lambda runtime
//! calls them.

mod courier_demo;
mod gateway;
mod stand_ins;

use crate::template::Trigger;
use crate::Stack;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gateway::{Gateway, Route};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioExecutor;
use orderflow::courier::{Courier, HttpCourier};
use orderflow::handlers::after_sales::{self, AfterSalesDeps};
use orderflow::handlers::dashboard::{self, DashboardDeps};
use orderflow::handlers::event_relay::RelayDeps;
use orderflow::handlers::fulfilment::{self, FulfilmentCore, FulfilmentDeps};
use orderflow::handlers::hold_expiry::{self, ExpiryDeps};
use orderflow::handlers::logistics::webhook::{self as courier_webhook, CourierWebhookDeps};
use orderflow::handlers::logistics::{self, LogisticsDeps};
use orderflow::handlers::order_intake::{self, IntakeDeps};
use orderflow::handlers::payment_processor::{self, ProcessorDeps};
use orderflow::handlers::payment_webhook::{self, WebhookDeps};
use orderflow::handlers::refunds::{self, RefundDeps};
use orderflow::handlers::staff_api::{self, StaffDeps};
use orderflow::handlers::stock_reservation::{self, ReservationDeps};
use orderflow::payment_provider::{HttpPaymentProvider, PaymentProvider};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    Fulfilment(FulfilmentCore),
    FulfilmentApi(FulfilmentDeps),
    CourierWebhook(CourierWebhookDeps),
    Tracking(LogisticsDeps),
    TrackingPoller(LogisticsDeps),
    LogisticsApi(LogisticsDeps),
    Refunds(RefundDeps),
    AfterSalesApi(AfterSalesDeps),
    Dashboard(DashboardDeps),
}

impl LocalFunction {
    /// The function `binary` of the template, with the outside parties it calls over HTTP.
    pub fn for_binary(stack: &Stack, binary: &str, outside: &OutsideParties) -> Result<Self, String> {
        let courier = &outside.courier;
        Ok(match binary {
            "order-intake" => Self::OrderIntake(stack.intake()),
            "staff-api" => Self::StaffApi(stack.staff()),
            "stock-reservation" => Self::StockReservation(stack.reservation()),
            "hold-expiry" => Self::HoldExpiry(stack.expiry()),
            "payment-webhook" => Self::PaymentWebhook(stack.payment_webhook()),
            "payment-processor" => Self::PaymentProcessor(stack.payment_processor()),
            "event-relay" => Self::EventRelay(stack.relay_deps()),
            "fulfilment" => Self::Fulfilment(stack.fulfilment_core("fulfilment")),
            "fulfilment-api" => Self::FulfilmentApi(stack.fulfilment_with("fulfilment-api", courier.clone())),
            "courier-webhook" => Self::CourierWebhook(stack.courier_webhook()),
            "tracking" => Self::Tracking(stack.logistics_with("tracking", courier.clone())),
            "tracking-poller" => Self::TrackingPoller(stack.logistics_with("tracking-poller", courier.clone())),
            "logistics-api" => Self::LogisticsApi(stack.logistics_with("logistics-api", courier.clone())),
            "after-sales-api" => Self::AfterSalesApi(stack.after_sales_with(courier.clone())),
            "dashboard" => Self::Dashboard(stack.dashboard()),
            "refunds" => Self::Refunds(RefundDeps { provider: outside.provider.clone(), ..stack.refunds() }),
            other => return Err(format!("the template names a function binary {other:?} the local stack cannot run")),
        })
    }

    pub async fn http(
        &self,
        request: lambda_http::Request,
    ) -> Result<lambda_http::Response<lambda_http::Body>, String> {
        let result = match self {
            Self::OrderIntake(deps) => order_intake::handle(deps, request).await,
            Self::StaffApi(deps) => staff_api::handle(deps, request).await,
            Self::PaymentWebhook(deps) => payment_webhook::handle(deps, request).await,
            Self::FulfilmentApi(deps) => fulfilment::routes::handle(deps, request).await,
            Self::CourierWebhook(deps) => courier_webhook::handle(deps, request).await,
            Self::LogisticsApi(deps) => logistics::routes::handle(deps, request).await,
            Self::AfterSalesApi(deps) => after_sales::routes::handle(deps, request).await,
            _ => return Err("this function has no HTTP trigger".into()),
        };
        result.map_err(|e| e.to_string())
    }

    async fn sqs(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        match self {
            Self::StockReservation(deps) => Ok(stock_reservation::handle_batch(deps, event).await),
            Self::PaymentProcessor(deps) => Ok(payment_processor::handle_batch(deps, event).await),
            Self::Fulfilment(deps) => Ok(fulfilment::handle_batch(deps, event).await),
            Self::Tracking(deps) => Ok(logistics::consumer::handle_batch(deps, event).await),
            Self::Refunds(deps) => Ok(refunds::handle_batch(deps, event).await),
            Self::Dashboard(deps) => Ok(dashboard::handle_batch(deps, event).await),
            _ => Err("this function has no SQS trigger".into()),
        }
    }

    /// One scheduled invocation, with `deadline` for the sweeper.
    async fn tick(&self, deadline: std::time::Instant) -> Result<(), String> {
        match self {
            Self::HoldExpiry(deps) => {
                hold_expiry::sweep(deps, Some(deadline)).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Self::TrackingPoller(deps) => {
                let settings = logistics::poller::PollerSettings::default();
                logistics::poller::run(deps, &settings).await.map(|_| ()).map_err(|e| e.to_string())
            }
            _ => Err("this function has no schedule".into()),
        }
    }
}

/// The outside parties the functions call over HTTP, as deployed functions would.
pub struct OutsideParties {
    pub courier: Arc<dyn Courier>,
    pub provider: Arc<dyn PaymentProvider>,
}

pub struct LocalOptions {
    pub api_port: Option<u16>,
    /// Concurrent pollers per queue: how many Lambda instances would consume it.
    pub pollers_per_queue: usize,
    /// Run scheduled functions this often instead of at the template's rate.
    pub schedule_every: Option<Duration>,
    /// Move every handed-over parcel one step this often (the mock courier's timer); never
    /// when none.
    pub courier_moves_every: Option<Duration>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self { api_port: None, pollers_per_queue: 2, schedule_every: None, courier_moves_every: None }
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
    contract_breaches: Arc<std::sync::Mutex<Vec<String>>>,
    event_breaches: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    /// What broke a published contract so far: the functions' answers that the API's document
    /// (docs/openapi.yaml) does not allow, and the events the relay published that break their
    /// schema (docs/events).
    pub fn contract_breaches(&self) -> Vec<String> {
        let answers = self.contract_breaches.lock().expect("not poisoned").clone();
        answers.into_iter().chain(self.event_breaches.lock().expect("not poisoned").iter().cloned()).collect()
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
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.api_port.unwrap_or(0)))
        .await
        .map_err(|e| format!("cannot listen for the API: {e}"))?;
    let api_address = listener.local_addr().map_err(|e| e.to_string())?;
    // Waybills are booked and refunds paid over HTTP, as in production, at the stand-ins.
    let outside = OutsideParties {
        courier: Arc::new(HttpCourier::new(format!("http://{api_address}/_mock-courier"))),
        provider: Arc::new(HttpPaymentProvider::new(format!("http://{api_address}/_mock-provider"))),
    };
    for function in &stack.functions.functions {
        let local = LocalFunction::for_binary(&stack, &function.binary, &outside)?;
        for trigger in &function.triggers {
            match trigger {
                Trigger::Http { method, path, public } => routes.push(Route {
                    method: method.clone(),
                    template: path.clone(),
                    public: *public,
                    function: local.clone(),
                }),
                Trigger::Sqs { queue, batch_size } => {
                    let consumer = matches!(
                        local,
                        LocalFunction::StockReservation(_)
                            | LocalFunction::PaymentProcessor(_)
                            | LocalFunction::Fulfilment(_)
                            | LocalFunction::Tracking(_)
                            | LocalFunction::Refunds(_)
                            | LocalFunction::Dashboard(_)
                    );
                    if !consumer {
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
                    if !matches!(local, LocalFunction::HoldExpiry(_) | LocalFunction::TrackingPoller(_)) {
                        return Err(format!("{} has a schedule but is not a scheduled function", function.binary));
                    }
                    let every = match options.schedule_every {
                        Some(every) => every,
                        None => parse_rate(expression)?,
                    };
                    tasks.push(tokio::spawn(run_schedule(every, local.clone(), stopped.clone())));
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
    let stand_ins = stand_ins::StandIns {
        store: stack.store(),
        courier: stack.courier.clone(),
        provider: stack.provider.clone(),
        webhook_secret: Stack::webhook_secret(),
        notifier: stack.notifier.clone(),
        issuer: Arc::new(crate::auth::LocalIssuer::generate(format!("http://{api_address}/_local-auth"))),
        clock: stack.clock.clone(),
    };
    let contract_breaches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gateway = Arc::new(Gateway { routes, stand_ins, contract_breaches: contract_breaches.clone() });
    if let Some(every) = options.courier_moves_every {
        tasks.push(tokio::spawn(move_parcels(every, gateway.clone(), stopped.clone())));
    }
    tasks.push(tokio::spawn(gateway::serve(listener, gateway, stopped)));
    let event_breaches = stack.event_violations.clone();
    Ok(Running { api_address, stop, tasks, contract_breaches, event_breaches })
}

/// The mock courier's timer: every handed-over parcel takes a step, pushed to the webhook.
async fn move_parcels(every: Duration, gateway: Arc<Gateway>, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => gateway.stand_ins.move_parcels(&gateway).await,
            _ = stopped.changed() => return,
        }
    }
}

/// An EventBridge schedule: invoke on every tick, one invocation at a time (the template
/// reserves a concurrency of one), with the function's timeout as the deadline.
async fn run_schedule(every: Duration, function: LocalFunction, mut stopped: watch::Receiver<bool>) {
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
        if let Err(err) = function.tick(deadline).await {
            tracing::error!(error = %err, "scheduled run failed");
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
        let (status, bytes) = self.send(method, path, headers, body).await?;
        let value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
        };
        Ok((status, value))
    }

    /// Status and body as sent (S3's answers are XML).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<(u16, Bytes), String> {
        let mut request = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| e.to_string())?;
        let response = self.client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, bytes))
    }

    /// A bearer token from the local issuer (`POST /_local-auth/token`), as an
    /// `authorization` header value.
    pub async fn bearer(&self, request: serde_json::Value) -> Result<String, String> {
        let (status, answer) = self.call("POST", "/_local-auth/token", &[], Some(request.to_string())).await?;
        match answer["access_token"].as_str() {
            Some(token) if status == 200 => Ok(format!("Bearer {token}")),
            _ => Err(format!("no token: {status} {answer}")),
        }
    }
}
