//! One module per Lambda function. Each exposes a `Deps` struct (its clients and settings,
//! built once at cold start) and a `handle` function the thin `main.rs` wraps in `service_fn`.

pub mod after_sales;
pub(crate) mod booking;
pub mod dashboard;
pub mod event_relay;
pub mod fulfilment;
pub mod hold_expiry;
pub mod logistics;
pub mod order_intake;
pub mod payment_processor;
pub mod payment_webhook;
pub mod refunds;
pub mod staff_api;
pub mod stock_reservation;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::Store;
use std::sync::Arc;

/// What every function that changes orders needs: the table and the time. (No bus: a change's
/// events come from the table's stream, through the event relay.)
#[derive(Clone)]
pub struct Common {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl Common {
    /// A client from the standard AWS configuration chain (region, credentials and
    /// `AWS_ENDPOINT_URL`), for the table named in `config`.
    pub async fn from_aws(config: &Config) -> Self {
        let aws = crate::aws::config().await;
        Self::new(aws_sdk_dynamodb::Client::new(&aws), config, Arc::new(SystemClock))
    }

    pub fn new(dynamodb: aws_sdk_dynamodb::Client, config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self { store: Store::new(dynamodb, &config.table_name, config.expiry_buckets), clock }
    }
}

/// The answer to an SQS batch: the messages that failed, each logged, for SQS to redeliver
/// (and after maxReceiveCount move to the DLQ). The others are deleted by the event source.
pub fn partial_batch_failures<'a>(
    failed: impl IntoIterator<Item = (&'a aws_lambda_events::event::sqs::SqsMessage, String)>,
    what: &str,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for (message, error) in failed {
        let id = message.message_id.clone().unwrap_or_default();
        tracing::warn!(message_id = %id, error = %error, "{what} failed; message left for redelivery");
        let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Process every message of an SQS batch concurrently and answer with the failures (see
/// [`partial_batch_failures`]).
pub async fn each_message<'a, F, Fut, E>(
    event: &'a aws_lambda_events::event::sqs::SqsEvent,
    what: &str,
    process: F,
) -> aws_lambda_events::event::sqs::SqsBatchResponse
where
    F: Fn(&'a aws_lambda_events::event::sqs::SqsMessage) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let outcomes = futures::future::join_all(event.records.iter().map(process)).await;
    let failed = event.records.iter().zip(outcomes).filter_map(|(m, outcome)| Some((m, outcome.err()?.to_string())));
    partial_batch_failures(failed, what)
}

/// An SQS message an EventBridge rule delivered: the event's `detail-type` and `detail`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct BusEnvelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: serde_json::Value,
    /// When the bus took the event (RFC 3339).
    #[serde(default)]
    pub time: Option<String>,
}

impl BusEnvelope {
    /// The envelope of `message`, or why it is none (a message for the dead-letter queue).
    pub(crate) fn of(message: &aws_lambda_events::event::sqs::SqsMessage) -> Result<Self, String> {
        let body = message.body.as_deref().ok_or_else(|| "empty body".to_owned())?;
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    /// The detail as `T`, if `detail-type` is one of `accepted`.
    pub(crate) fn detail_of<T: serde::de::DeserializeOwned>(self, accepted: &[&str]) -> Result<T, String> {
        if !accepted.contains(&self.detail_type.as_str()) {
            return Err(format!("unexpected detail-type {}", self.detail_type));
        }
        serde_json::from_value(self.detail).map_err(|e| e.to_string())
    }
}

/// A value read from the table and trusted for a while (the warehouse catalogue, the hold
/// policy), so a warm function does not read it for every order yet sees a change within `ttl`.
pub struct TtlCache<T> {
    ttl: time::Duration,
    slot: std::sync::Mutex<Option<(time::OffsetDateTime, Arc<T>)>>,
    /// Held while loading, so the messages of one batch handled at once load a stale value
    /// once, not once each.
    loading: tokio::sync::Mutex<()>,
}

impl<T> TtlCache<T> {
    pub fn new(ttl: time::Duration) -> Self {
        Self { ttl, slot: std::sync::Mutex::new(None), loading: tokio::sync::Mutex::new(()) }
    }

    fn fresh(&self, now: time::OffsetDateTime) -> Option<Arc<T>> {
        let slot = self.slot.lock().expect("cache lock");
        let (read_at, value) = slot.as_ref()?;
        (now - *read_at < self.ttl && now >= *read_at).then(|| value.clone())
    }

    pub async fn get_or_load<E, F>(&self, now: time::OffsetDateTime, load: impl FnOnce() -> F) -> Result<Arc<T>, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.fresh(now) {
            return Ok(value);
        }
        let _loading = self.loading.lock().await;
        if let Some(value) = self.fresh(now) {
            return Ok(value);
        }
        let value = Arc::new(load().await?);
        *self.slot.lock().expect("cache lock") = Some((now, value.clone()));
        Ok(value)
    }
}

/// A 400 naming one invalid field.
pub(crate) fn invalid(field: &str, code: &'static str, detail: impl Into<String>) -> crate::http::Problem {
    crate::http::Problem::invalid_fields(vec![crate::domain::FieldError {
        field: field.to_owned(),
        code,
        detail: detail.into(),
    }])
}

/// A 409 worth retrying in a second: what the request changes kept changing under it.
pub(crate) fn busy(code: &'static str, detail: impl Into<String>) -> crate::http::Problem {
    let mut busy =
        crate::http::Problem::new(lambda_http::http::StatusCode::CONFLICT, code, "Changed meanwhile", detail);
    busy.retry_after = Some(1);
    busy
}

/// A 409: the entity is not in a state that allows the action.
pub(crate) fn conflict(code: &'static str, detail: impl Into<String>) -> crate::http::Problem {
    crate::http::Problem::new(lambda_http::http::StatusCode::CONFLICT, code, "Not allowed now", detail)
}

/// `GET` (as saved, or the default) or `PUT` (a valid whole document naming the version it
/// replaces, saved as the next one and audited) of an operations policy; the caller has checked
/// that `who` administers.
pub(crate) async fn policy_document<T: crate::store::PolicyDocument>(
    store: &Store,
    request: &lambda_http::Request,
    who: &str,
    now: time::OffsetDateTime,
) -> Result<lambda_http::Response<lambda_http::Body>, crate::http::Problem> {
    use crate::http::{json_response, Problem};
    use lambda_http::http::{Method, StatusCode};
    if request.method() != Method::PUT {
        let policy = store.policy::<T>().await.map_err(|err| {
            tracing::warn!(error = %err, "policy read failed");
            Problem::unavailable()
        })?;
        return Ok(json_response(StatusCode::OK, &policy.unwrap_or_default()));
    }
    let policy: T = json_body(request)?;
    policy.validate().map_err(|(field, e)| invalid(&field, e.code, e.detail))?;
    let saved = store.save_policy(&policy, who, now).await.map_err(save_problem)?;
    tracing::info!(actor = %who, policy = T::ENTITY, version = saved.version(), "policy saved");
    Ok(json_response(StatusCode::OK, &saved))
}

/// The calendar month (UTC, `YYYY-MM`) a report asks for with `?month=`; `now`'s by default.
pub(crate) fn month_asked(
    request: &lambda_http::Request,
    now: time::OffsetDateTime,
) -> Result<String, crate::http::Problem> {
    use lambda_http::RequestExt;
    let asked = request.query_string_parameters_ref().and_then(|q| q.first("month").map(str::to_owned));
    let month = asked.unwrap_or_else(|| logistics::kpi::month_of(now));
    let valid = month.len() == 7
        && month.as_bytes()[4] == b'-'
        && month.chars().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit());
    if !valid {
        return Err(invalid("month", "month-invalid", "YYYY-MM"));
    }
    Ok(month)
}

/// The request's JSON body as `T`, or a 400 `body-invalid` saying why.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    request: &lambda_http::Request,
) -> Result<T, crate::http::Problem> {
    serde_json::from_slice(crate::http::body_bytes(request.body())).map_err(|e| {
        crate::http::Problem::new(
            lambda_http::http::StatusCode::BAD_REQUEST,
            "body-invalid",
            "Body invalid",
            format!("the body does not match this route: {e}"),
        )
    })
}

pub(crate) fn warehouse_id(raw: &str) -> Result<crate::domain::WarehouseId, crate::http::Problem> {
    crate::domain::WarehouseId::parse(raw).map_err(|e| invalid("warehouse", e.code, e.detail))
}

/// A versioned save that lost to another (409: reload, reapply, save again), or a failure.
pub(crate) fn save_problem(err: crate::store::SaveError) -> crate::http::Problem {
    match err {
        crate::store::SaveError::VersionConflict { current } => crate::http::Problem::new(
            lambda_http::http::StatusCode::CONFLICT,
            "version-conflict",
            "Changed meanwhile",
            format!("the current version is {current}; reload, reapply your change and save with that version"),
        )
        .with_field("version"),
        crate::store::SaveError::Store(err) => {
            tracing::warn!(error = %err, "save failed");
            crate::http::Problem::unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn messages_handled_at_once_load_a_stale_value_once() {
        let cache = TtlCache::new(time::Duration::minutes(1));
        let loads = AtomicUsize::new(0);
        let now = time::OffsetDateTime::now_utc();
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, ()>(7)
        };
        let all = futures::future::join_all((0..10).map(|_| cache.get_or_load(now, load))).await;
        assert!(all.iter().all(|v| v.as_deref() == Ok(&7)));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache.get_or_load(now + time::Duration::minutes(2), load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2, "a stale value is read again");
    }
}
