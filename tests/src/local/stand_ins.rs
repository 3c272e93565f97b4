//! The local stack's stand-ins for the parties outside Orderflow, under paths API Gateway would
//! not route (`/_…`); none of them is in the template:
//!
//! - `POST /_local-auth/token` mints a token (the identity provider: Cognito, say):
//!   `{"kind": "customer", "customer_id": "cust-42"}`,
//!   `{"kind": "service", "client_id": "shop", "scopes": ["orderflow/orders.on-behalf"]}` or
//!   `{"kind": "staff", "subject": "alice", "roles": ["operations"]}`; its keys are at
//!   `GET /_local-auth/.well-known/jwks.json`.
//! - `POST /_mock-provider/payments` makes a payment provider's event for an order (its amount
//!   and currency unless given; `event_id` repeats an earlier event), signs it with the local
//!   webhook secret and delivers it to the webhook route, as the provider would.
//! - `POST /_mock-provider/refunds` takes a refund as the payment provider's API would
//!   (`HttpPaymentProvider` calls it, the refund id as `Idempotency-Key`, paid once) and confirms
//!   it with a signed `refund.succeeded` to the webhook; `GET /_mock-provider/refunds` lists them.
//! - `GET /_mock-notifier/messages` lists the verification codes "sent" (the SMS vendor).
//! - `POST /_mock-courier/waybills` is the courier gateway: fulfilment's `HttpCourier` books
//!   waybills here as it would in production (the shipment id as `Idempotency-Key`, the same
//!   waybill for the same shipment); `GET /_mock-courier/waybills` lists them.
//!   `GET /_mock-courier/waybills/{courier}/{number}/checkpoints` answers the tracking poller;
//!   `POST /_mock-courier/chases` takes a chase (the alert's key as `Idempotency-Key`).
//!   The demo's moves (advance, stall, lose, mis-deliver, collect cash) are in
//!   [`super::courier_demo`].

use super::gateway::{deliver_signed, json, plain, Gateway};
use crate::auth::{LocalIssuer, TokenRequest};
use hyper::body::Bytes;
use std::sync::Arc;

pub(super) struct StandIns {
    pub store: orderflow::store::Store,
    pub courier: Arc<crate::courier::MockCourier>,
    pub provider: Arc<crate::provider::MockProvider>,
    pub webhook_secret: String,
    pub notifier: Arc<crate::notifier::LocalNotifier>,
    pub issuer: Arc<LocalIssuer>,
    pub clock: Arc<dyn orderflow::clock::Clock>,
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

/// A request to a stand-in: what of the HTTP request the stand-ins read.
pub(super) struct StandInCall<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub idempotency_key: Option<String>,
    pub body: &'a [u8],
}

impl StandIns {
    pub(super) async fn handle(&self, gateway: &Gateway, call: StandInCall<'_>) -> hyper::Response<Bytes> {
        let body = call.body;
        match (call.method, call.path) {
            ("POST", "/_local-auth/token") => self.token(body),
            ("GET", "/_local-auth/.well-known/jwks.json") => json(200, self.issuer.jwks()),
            ("POST", "/_mock-provider/payments") => self.pay(gateway, body).await,
            ("POST", "/_mock-provider/refunds") => self.refund(gateway, call.idempotency_key.as_deref(), body).await,
            ("GET", "/_mock-provider/refunds") => {
                let refunds: Vec<_> = (self.provider.paid().into_iter())
                    .map(|(i, provider_refund_id)| serde_json::json!({"refund": i, "provider_refund_id": provider_refund_id}))
                    .collect();
                json(200, &serde_json::json!({ "refunds": refunds }))
            }
            ("GET", "/_mock-notifier/messages") => json(
                200,
                &serde_json::json!({ "messages": self.notifier.sent(), "customer_messages": self.notifier.told() }),
            ),
            ("POST", "/_mock-courier/waybills") => self.book(call.idempotency_key.as_deref(), body).await,
            ("POST", "/_mock-courier/chases") => self.chase(call.idempotency_key.as_deref(), body).await,
            ("GET", path) if path.starts_with("/_mock-courier/waybills/") => self.track(path).await,
            ("POST", path) if path.starts_with("/_mock-courier/waybills/") => {
                self.courier_action(gateway, path, body).await
            }
            ("GET", "/_mock-courier/waybills") => {
                let waybills: Vec<_> = (self.courier.bookings().into_iter())
                    .map(|(b, w)| serde_json::json!({"shipment_id": b.shipment_id, "courier": b.courier, "waybill_number": w.number}))
                    .collect();
                json(200, &serde_json::json!({ "waybills": waybills }))
            }
            _ => plain(404, "Not Found"),
        }
    }

    /// The courier gateway's contract, as `HttpCourier` expects it.
    async fn book(&self, key: Option<&str>, body: &[u8]) -> hyper::Response<Bytes> {
        use orderflow::courier::Courier;
        let booking: orderflow::courier::Booking = match serde_json::from_slice(body) {
            Ok(booking) => booking,
            Err(e) => return plain(400, &format!("expected a booking: {e}")),
        };
        if key != Some(booking.idempotency_key().as_str()) {
            return plain(400, "the Idempotency-Key must be the booking's shipment and courier");
        }
        match self.courier.book(&booking).await {
            Ok(waybill) => {
                json(201, &serde_json::json!({ "waybill_number": waybill.number, "label_url": waybill.label_url }))
            }
            Err(e) => plain(422, &e.to_string()),
        }
    }

    /// `GET /_mock-courier/waybills/{courier}/{number}/checkpoints`: the courier's record.
    async fn track(&self, path: &str) -> hyper::Response<Bytes> {
        use orderflow::courier::Courier;
        let parts: Vec<&str> = path.trim_start_matches("/_mock-courier/waybills/").split('/').collect();
        let [courier, number, "checkpoints"] = parts.as_slice() else { return plain(404, "Not Found") };
        let Ok(courier) = orderflow::domain::CourierId::parse(courier) else { return plain(404, "unknown courier") };
        match self.courier.track(&courier, number).await {
            Ok(checkpoints) => json(200, &serde_json::json!({ "checkpoints": checkpoints })),
            Err(e) => plain(422, &e.to_string()),
        }
    }

    /// `POST /_mock-courier/chases`, keyed as `HttpCourier` keys it.
    async fn chase(&self, key: Option<&str>, body: &[u8]) -> hyper::Response<Bytes> {
        use orderflow::courier::Courier;
        let chase: orderflow::courier::Chase = match serde_json::from_slice(body) {
            Ok(chase) => chase,
            Err(e) => return plain(400, &format!("expected a chase: {e}")),
        };
        if key != Some(chase.idempotency_key.as_str()) {
            return plain(400, "the Idempotency-Key must be the chase's key");
        }
        match self.courier.chase(&chase).await {
            Ok(()) => json(202, &serde_json::json!({ "status": "chasing" })),
            Err(e) => plain(422, &e.to_string()),
        }
    }

    /// `POST /_mock-provider/refunds`, keyed as `HttpPaymentProvider` keys it: paid once per
    /// refund id, confirmed at once by a signed `refund.succeeded` to the payment webhook (which
    /// may reach the ledger before this answer does, as a real provider's may).
    async fn refund(&self, gateway: &Gateway, key: Option<&str>, body: &[u8]) -> hyper::Response<Bytes> {
        use orderflow::payment_provider::{PaymentProvider, RefundCallError, RefundInstruction};
        let instruction: RefundInstruction = match serde_json::from_slice(body) {
            Ok(instruction) => instruction,
            Err(e) => return plain(400, &format!("expected a refund: {e}")),
        };
        if key != Some(instruction.refund_id.as_str()) {
            return plain(400, "the Idempotency-Key must be the refund's id");
        }
        let receipt = match self.provider.refund(&instruction).await {
            Ok(receipt) => receipt,
            Err(RefundCallError::Declined(why)) => return plain(422, &why),
            Err(RefundCallError::Unavailable(why)) => return plain(504, &why),
        };
        let now = self.clock.now().unix_timestamp();
        let (payload, signature) = crate::provider::confirmation(
            "refund.succeeded",
            &instruction,
            &receipt.provider_refund_id,
            &self.webhook_secret,
            now,
        );
        if let Err(missing) =
            deliver_signed(gateway, "/payments/webhook", "payment-signature", signature, payload).await
        {
            return plain(500, &missing);
        }
        json(201, &serde_json::to_value(&receipt).expect("a receipt serialises"))
    }

    fn token(&self, body: &[u8]) -> hyper::Response<Bytes> {
        match serde_json::from_slice::<TokenRequest>(body) {
            Ok(request) => {
                let lifetime = time::Duration::hours(1);
                let token = self.issuer.mint(&request, lifetime);
                json(
                    200,
                    &serde_json::json!({
                        "access_token": token, "token_type": "Bearer", "expires_in": lifetime.whole_seconds()
                    }),
                )
            }
            Err(e) => plain(400, &format!("expected a customer, service or staff token request: {e}")),
        }
    }

    async fn pay(&self, gateway: &Gateway, body: &[u8]) -> hyper::Response<Bytes> {
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
            .or_else(|| order.as_ref().map(|o| o.currency.code().to_owned()))
            .unwrap_or_else(|| "CNY".into());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let event = serde_json::json!({
            "id": request.event_id.unwrap_or_else(|| format!("evt_{}", ulid::Ulid::new())),
            "type": format!("payment.{}", request.outcome.as_deref().unwrap_or("succeeded")),
            "created": now,
            "data": {
                "payment_id": request.payment_id.unwrap_or_else(|| format!("pay_{}", ulid::Ulid::new())),
                "order_id": request.order_id,
                "amount_minor": amount,
                "currency": currency,
            }
        });
        let payload = event.to_string();
        let signature = orderflow::domain::payment::sign(self.webhook_secret.as_bytes(), now, payload.as_bytes());
        match deliver_signed(gateway, "/payments/webhook", "payment-signature", signature, payload).await {
            Ok(webhook) => json(200, &serde_json::json!({ "event": event, "webhook": webhook })),
            Err(missing) => plain(500, &missing),
        }
    }
}
