//! The operations dashboard's figures: the counters the dashboard function keeps from the bus
//! events (`handlers::dashboard`), for a range of days, per hour and channel, with the totals
//! and rates per channel and overall, and what stands now (the review queue's length and the
//! alerts open, counted on the partitions that hold exactly them). Never read from the orders.

use super::{invalid, unavailable, StaffDeps};
use crate::domain::dashboard::{HourCounters, Metric, Rates};
use crate::http::{json_response, Problem};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use time::Date;

/// The longest range one request reads: two months of hourly counters.
pub const MAX_DAYS: i64 = 62;
/// The longest range answered hour by hour; a longer one is answered by day only, so the answer
/// stays small however many channels there are.
pub const MAX_HOURLY_DAYS: i64 = 7;

#[derive(Debug, Serialize)]
struct Summary {
    counts: BTreeMap<Metric, i64>,
    rates: Rates,
}

#[derive(Debug, Serialize)]
struct ChannelSummary {
    channel: String,
    #[serde(flatten)]
    summary: Summary,
}

/// One UTC day's counters of a channel.
#[derive(Debug, Serialize)]
struct DayCounters {
    day: String,
    channel: String,
    counts: BTreeMap<Metric, i64>,
}

/// What stands now, whatever the range.
#[derive(Debug, Serialize)]
struct Now {
    /// Orders held or frozen by risk, waiting for a person.
    review_queue: i64,
    /// Stuck-parcel alerts raised and not cleared.
    open_alerts: i64,
}

#[derive(Debug, Serialize)]
struct Dashboard {
    from: String,
    to: String,
    /// The server's UTC day, so a page showing a range ending today knows when it moved on.
    today: String,
    /// Every hour with a count, per channel, in order; empty beyond [`MAX_HOURLY_DAYS`].
    hours: Vec<HourCounters>,
    /// Every day with a count, per channel, in order.
    days: Vec<DayCounters>,
    by_channel: Vec<ChannelSummary>,
    total: Summary,
    now: Now,
}

fn add(into: &mut BTreeMap<Metric, i64>, counts: &BTreeMap<Metric, i64>) {
    for (metric, count) in counts {
        *into.entry(*metric).or_insert(0) += count;
    }
}

fn summary(rows: &[&HourCounters]) -> Summary {
    let mut counts = BTreeMap::new();
    for row in rows {
        add(&mut counts, &row.counts);
    }
    let rates = Rates::of(&counts);
    Summary { counts, rates }
}

/// The hourly rows summed by UTC day and channel.
fn by_day(hours: &[HourCounters]) -> Vec<DayCounters> {
    let mut days: BTreeMap<(&str, &str), BTreeMap<Metric, i64>> = BTreeMap::new();
    for row in hours {
        add(days.entry((row.hour.get(..10).unwrap_or_default(), row.channel.as_str())).or_default(), &row.counts);
    }
    let rows = days.into_iter().map(|((day, channel), counts)| DayCounters {
        day: day.to_owned(),
        channel: channel.to_owned(),
        counts,
    });
    rows.collect()
}

fn day(request: &Request, name: &'static str, default: Date) -> Result<Date, Problem> {
    let raw = request.query_string_parameters_ref().and_then(|q| q.first(name).map(str::to_owned));
    let Some(raw) = raw else { return Ok(default) };
    let format = time::macros::format_description!("[year repr:full sign:automatic]-[month]-[day]");
    let parsed = (raw.len() == 10).then(|| Date::parse(&raw, &format).ok()).flatten();
    parsed.ok_or_else(|| invalid(name, "day-malformed", format!("{name} is YYYY-MM-DD")))
}

/// `GET /admin/dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD` (UTC days, both included; today when
/// left out).
pub(super) async fn figures(deps: &StaffDeps, request: &Request) -> Result<Response<Body>, Problem> {
    let today = deps.common.clock.now().date();
    let to = day(request, "to", today)?;
    let from = day(request, "from", to)?;
    if from > to || (to - from).whole_days() >= MAX_DAYS {
        let detail = format!("from must not be after to, and the range at most {MAX_DAYS} days");
        return Err(invalid("from", "range-invalid", detail));
    }
    let (first, last) = (format!("{from}T00"), format!("{to}T23"));
    let store = &deps.common.store;
    let (hours, review_queue, open_alerts) = tokio::try_join!(
        store.dashboard_counters(&first, &last),
        store.review_queue_length(),
        store.open_alerts_count()
    )
    .map_err(unavailable)?;
    let now = Now { review_queue, open_alerts };
    let mut channels: BTreeMap<&str, Vec<&HourCounters>> = BTreeMap::new();
    for row in &hours {
        channels.entry(row.channel.as_str()).or_default().push(row);
    }
    let by_channel = channels
        .iter()
        .map(|(channel, rows)| ChannelSummary { channel: (*channel).to_owned(), summary: summary(rows) })
        .collect();
    let total = summary(&hours.iter().collect::<Vec<_>>());
    let days = by_day(&hours);
    let hours = if (to - from).whole_days() < MAX_HOURLY_DAYS { hours } else { Vec::new() };
    let (from, to, today) = (from.to_string(), to.to_string(), today.to_string());
    let dashboard = Dashboard { from, to, today, by_channel, total, hours, days, now };
    Ok(json_response(StatusCode::OK, &dashboard))
}
