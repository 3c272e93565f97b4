//! After-sales: what a customer asks after delivery, decided by staff within service levels.
//!
//! - Function `after-sales-api` (HTTP, [`routes`]): the customer opens ([`open`]) and withdraws
//!   tickets and uploads photo evidence; customer service answers them ([`decide`]): approves a
//!   return (a return waybill through the courier port), an exchange (its replacement reserved)
//!   or a refund, rejects, or answers a complaint; the warehouse takes returned goods in and
//!   checks them ([`returns`]): pass restocks the units (audited) and refunds or ships the
//!   replacement, fail rejects with the evidence.
//! - Function `sla-sweeper` (schedule, [`sweeper`]): every deadline not kept by its time is
//!   breached once (SlaBreached from the stream).
//!
//! Every change goes through [`change_ticket`]: read the order with its parcels, tickets and
//! after-sales units, decide, and write the ticket conditionally on its version together with
//! what follows (units taken or freed, stock moved, the customer's month counted). Events come
//! from the stream ([`crate::events`]): TicketOpened, TicketResolved, SlaBreached and the
//! RefundRequested the refunds function pays once.

mod closing;
pub mod decide;
pub mod open;
pub mod returns;
pub mod routes;
pub mod sweeper;

use super::{Common, TtlCache};
use crate::aws::s3::S3Bucket;
use crate::courier::Courier;
use crate::domain::after_sales_policy::AfterSalesPolicy;
use crate::domain::ticket::{Ticket, TicketId};
use crate::photos::DispatchPhotos;
use crate::store::{AfterSalesUnits, AfterSalesView, StoreError};
use aws_sdk_dynamodb::types::TransactWriteItem;
use std::sync::Arc;
use thiserror::Error;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct AfterSalesDeps {
    pub common: Common,
    pub courier: Arc<dyn Courier>,
    /// Evidence photos: the customer's and the QC's, uploaded straight to the bucket.
    pub photos: DispatchPhotos,
    /// Opens the customer's address for a return's booking: the courier collects there.
    pub sealer: Arc<crate::personal::Sealer>,
    policy: Arc<TtlCache<AfterSalesPolicy>>,
    /// Attempts at one change before giving up on contention.
    pub max_attempts: usize,
}

#[derive(Debug, Error)]
pub enum AfterSalesError {
    #[error("ticket {0} is not in the table")]
    TicketMissing(TicketId),
    #[error("still contended after {0} attempts")]
    Contended(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AfterSalesDeps {
    pub fn new(
        common: Common,
        courier: Arc<dyn Courier>,
        photos: DispatchPhotos,
        sealer: Arc<crate::personal::Sealer>,
    ) -> Self {
        let policy = Arc::new(TtlCache::new(time::Duration::minutes(1)));
        Self { common, courier, photos, sealer, policy, max_attempts: 5 }
    }

    /// The deployed function's dependencies: the AWS configuration chain, the photo bucket
    /// (`EVIDENCE_PHOTO_BUCKET`), the courier gateway (`COURIER_GATEWAY_URL`) and the personal
    /// data key (`PERSONAL_DATA_KEY_ID`).
    pub async fn from_env(config: &crate::config::Config) -> Result<Self, String> {
        let aws = crate::aws::config().await;
        let common = Common::new(aws_sdk_dynamodb::Client::new(&aws), config, Arc::new(crate::clock::SystemClock));
        let bucket = std::env::var("EVIDENCE_PHOTO_BUCKET").map_err(|_| "EVIDENCE_PHOTO_BUCKET is not set")?;
        let gateway = std::env::var("COURIER_GATEWAY_URL").map_err(|_| "COURIER_GATEWAY_URL is not set")?;
        let courier = crate::courier::HttpCourier::new(gateway);
        let photos = DispatchPhotos::new(S3Bucket::from_config(&aws, &bucket).map_err(|e| e.to_string())?);
        let sealer = crate::personal::Sealer::from_env(&aws).map_err(|e| e.to_string())?;
        Ok(Self::new(common, Arc::new(courier), photos, sealer))
    }

    /// The policy operations saved (trusted for a minute), or the default.
    pub async fn policy(&self, now: OffsetDateTime) -> Result<Arc<AfterSalesPolicy>, StoreError> {
        let store = &self.common.store;
        self.policy.get_or_load(now, || async { Ok(store.after_sales_policy().await?.unwrap_or_default()) }).await
    }
}

/// Why a refund of `amount_minor` on `order` needs a person's decision now: scored when the
/// ticket opens (staff see it in the queue) and again when the refund is approved, since the
/// customer's month may have moved since.
pub(crate) async fn review_reasons(
    deps: &AfterSalesDeps,
    policy: &AfterSalesPolicy,
    order: &crate::domain::Order,
    amount_minor: i64,
    now: OffsetDateTime,
) -> Result<Vec<crate::domain::ticket::ReviewReason>, StoreError> {
    let store = &deps.common.store;
    let customer = order.customer_id.as_str();
    let history = store.refund_history(customer, now).await?;
    let rules = store.risk_rules().await?.unwrap_or_else(crate::domain::risk::RiskRules::defaults);
    Ok(policy.review_reasons(history, amount_minor, rules.lists_customer(customer)))
}

/// What a change of a ticket sees: the order with its parcels and tickets as read, the ticket,
/// the time and the policy.
pub struct TicketView<'a> {
    pub view: &'a AfterSalesView,
    pub ticket: &'a Ticket,
    pub now: OffsetDateTime,
    pub policy: &'a AfterSalesPolicy,
}

/// What a change decided: the ticket as it is to be, with the order's units as they are to be
/// and other writes that go with it; or nothing to do; or a refusal.
pub enum TicketChange<E> {
    Change { ticket: Box<Ticket>, units: Option<AfterSalesUnits>, extra: Vec<TransactWriteItem> },
    Nothing,
    Refused(E),
}

/// Who changes a ticket, as its audit record names them: a staff member's change is recorded
/// (subject `tickets/<id>`, its status before and after) in the change's own transaction.
pub struct AuditAs<'a> {
    pub actor: &'a str,
    pub action: &'a str,
}

/// Read, change one ticket and write it (with its audit record, when `audit` names who), until
/// the write's conditions hold. Answers the ticket as written, or as stored when nothing changed.
pub async fn change_ticket<E, F>(
    deps: &AfterSalesDeps,
    id: &TicketId,
    audit: Option<AuditAs<'_>>,
    mut change: F,
) -> Result<Result<Ticket, E>, AfterSalesError>
where
    F: FnMut(TicketView<'_>) -> TicketChange<E>,
{
    let store = &deps.common.store;
    for _ in 0..deps.max_attempts {
        let view = store.after_sales_of(id.order_id).await?;
        let ticket = view.tickets.iter().find(|t| &t.ticket_id == id);
        let ticket = ticket.ok_or_else(|| AfterSalesError::TicketMissing(id.clone()))?;
        let now = deps.common.clock.now();
        let policy = deps.policy(now).await?;
        match change(TicketView { view: &view, ticket, now, policy: &policy }) {
            TicketChange::Nothing => return Ok(Ok(ticket.clone())),
            TicketChange::Refused(refusal) => return Ok(Err(refusal)),
            TicketChange::Change { ticket: mut changed, units, extra } => {
                changed.updated_at = now;
                let mut writes = vec![store.put_ticket(&mut changed, Some(ticket.version))];
                if let Some(mut units) = units {
                    writes.push(store.put_after_sales_units(id.order_id, &mut units));
                }
                writes.extend(extra);
                if let Some(AuditAs { actor, action }) = &audit {
                    let subject = format!("tickets/{id}");
                    let before = serde_json::json!({ "status": ticket.status });
                    let after = serde_json::json!({ "status": changed.status, "closure": changed.closure });
                    writes.push(store.audit_record(actor, action, &subject, Some(&before), Some(&after), now));
                }
                if store.write_all(writes).await? {
                    return Ok(Ok(*changed));
                }
            }
        }
    }
    Err(AfterSalesError::Contended(deps.max_attempts))
}
