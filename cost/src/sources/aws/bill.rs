//! What was billed, from Cost Explorer (JSON 1.1, target prefix `AWSInsightsIndexService`, in
//! `us-east-1`).
//!
//! - **Days.** Cost Explorer's finest granularity that covers every service is the day (UTC,
//!   `TimePeriod.End` exclusive), so the bill covers the complete UTC days inside the window,
//!   strictly before "today" of the injected clock (today's figures are still growing). A window
//!   holding no such day is an error that says so.
//! - **Services and usage types.** `GetDimensionValues` (`Context: COST_AND_USAGE`, the same
//!   period and filter as the costs) first, once with `Dimension: SERVICE`, then once with
//!   `Dimension: USAGE_TYPE`: the SERVICE and USAGE_TYPE strings are discovered, never written
//!   here ([`Bill::services_seen`], [`Bill::usage_types_seen`], in the order answered).
//!   [`crate::reconcile`] sorts the usage types into the model's groups by rules over these
//!   strings; Lattice is billed inside the VPC service and only its usage types tell it apart.
//! - **Costs.** `GetCostAndUsage`: `Granularity: DAILY`, `Metrics: [UnblendedCost]`, grouped by
//!   `DIMENSION SERVICE` and `DIMENSION USAGE_TYPE`, filtered to resources tagged
//!   `Tags {Key, Values: [value]}` (the tag must be activated as a cost allocation tag). Amounts
//!   are decimal strings in `USD`; another unit or a non-number is an error. Each day carries its
//!   `Estimated` flag (Cost Explorer's figures for recent days are not final).
//! - **Pages and requests.** Every call is followed through `NextPageToken`; every call is
//!   counted in [`Bill::requests`], since Cost Explorer charges $0.01 per request (a bill of one
//!   page each is three requests).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_costexplorer::types::{
    Context, DateInterval, Dimension, Expression, Granularity, Group, GroupDefinition,
    GroupDefinitionType, ResultByTime, TagValues,
};
use aws_sdk_costexplorer::Client;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::{answer, aws_error};
use crate::sources::{Bill, BillLine, BillSource, SourceError, Window};

/// `GetDimensionValues`, for errors.
pub const GET_DIMENSION_VALUES: &str = "CostExplorer.GetDimensionValues";
/// `GetCostAndUsage`, for errors.
pub const GET_COST_AND_USAGE: &str = "CostExplorer.GetCostAndUsage";
/// The metric asked.
pub const METRIC: &str = "UnblendedCost";

/// The time now, injectable.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The bill, from Cost Explorer.
#[derive(Clone)]
pub struct CostExplorerBill {
    client: Client,
    clock: Clock,
}

impl std::fmt::Debug for CostExplorerBill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostExplorerBill")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl CostExplorerBill {
    /// Over `client` (in [`super::COST_EXPLORER_REGION`]), today being the system clock's.
    pub fn new(client: Client) -> Self {
        Self::with_clock(client, Arc::new(Utc::now))
    }

    /// Over `client`, today being `clock`'s.
    pub fn with_clock(client: Client, clock: Clock) -> Self {
        Self { client, clock }
    }

    /// The values of `dimension` (SERVICE, USAGE_TYPE) over `period`, every page; `requests`
    /// counts the calls.
    async fn dimension_values(
        &self,
        dimension: Dimension,
        period: &DateInterval,
        filter: &Expression,
        requests: &mut u64,
    ) -> Result<Vec<String>, SourceError> {
        let mut values = Vec::new();
        let mut token: Option<String> = None;
        loop {
            *requests += 1;
            let page = self
                .client
                .get_dimension_values()
                .time_period(period.clone())
                .dimension(dimension.clone())
                .context(Context::CostAndUsage)
                .filter(filter.clone())
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(GET_DIMENSION_VALUES, e))?;
            for value in page.dimension_values() {
                let text = value.value().ok_or_else(|| {
                    answer(
                        GET_DIMENSION_VALUES,
                        format!("a {} value without Value", dimension.as_str()),
                    )
                })?;
                values.push(text.to_owned());
            }
            match page.next_page_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(values),
            }
        }
    }

    /// The cost lines of `period`, every page; `requests` counts the calls.
    async fn lines(
        &self,
        period: &DateInterval,
        filter: &Expression,
        requests: &mut u64,
    ) -> Result<Vec<BillLine>, SourceError> {
        let mut lines = Vec::new();
        let mut token: Option<String> = None;
        loop {
            *requests += 1;
            let page = self
                .client
                .get_cost_and_usage()
                .time_period(period.clone())
                .granularity(Granularity::Daily)
                .metrics(METRIC)
                .group_by(group("SERVICE"))
                .group_by(group("USAGE_TYPE"))
                .filter(filter.clone())
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(GET_COST_AND_USAGE, e))?;
            for day in page.results_by_time() {
                day_lines(day, &mut lines)?;
            }
            match page.next_page_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(lines),
            }
        }
    }
}

fn group(key: &str) -> GroupDefinition {
    GroupDefinition::builder()
        .r#type(GroupDefinitionType::Dimension)
        .key(key)
        .build()
}

/// The filter to resources tagged `key = value`.
pub fn tag_filter(key: &str, value: &str) -> Expression {
    Expression::builder()
        .tags(TagValues::builder().key(key).values(value).build())
        .build()
}

/// The complete UTC days inside `window` before `today`: `(first, day after the last)`.
pub fn complete_days(
    window: &Window,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), SourceError> {
    let start_day = window.start.date_naive();
    let first = if window.start == start_day.and_time(NaiveTime::MIN).and_utc() {
        start_day
    } else {
        start_day.succ_opt().unwrap_or(start_day)
    };
    let end = window.end.date_naive().min(today);
    if first >= end {
        return Err(answer(
            GET_COST_AND_USAGE,
            format!(
                "the window {} holds no complete UTC day before today ({today}): Cost Explorer bills by the day; widen the window to a whole day",
                window.describe()
            ),
        ));
    }
    Ok((first, end))
}

/// One day's groups as lines.
fn day_lines(day: &ResultByTime, lines: &mut Vec<BillLine>) -> Result<(), SourceError> {
    let date = day
        .time_period()
        .map(|period| period.start().to_owned())
        .ok_or_else(|| answer(GET_COST_AND_USAGE, "a result without TimePeriod"))?;
    for group in day.groups() {
        lines.push(group_line(&date, day.estimated(), group)?);
    }
    Ok(())
}

/// One `SERVICE, USAGE_TYPE` group of `date` as a line: its `UnblendedCost` in USD.
fn group_line(date: &str, estimated: bool, group: &Group) -> Result<BillLine, SourceError> {
    let fail = |message: String| answer(GET_COST_AND_USAGE, format!("{date} {message}"));
    let [service, usage_type] = group.keys() else {
        return Err(fail(format!(
            "a group keyed {:?}, not SERVICE and USAGE_TYPE",
            group.keys()
        )));
    };
    let cost = group
        .metrics()
        .and_then(|metrics| metrics.get(METRIC))
        .ok_or_else(|| fail(format!("{service} {usage_type}: no {METRIC}")))?;
    let amount = cost.amount().unwrap_or_default();
    let usd = amount
        .parse::<f64>()
        .ok()
        .filter(|usd| usd.is_finite())
        .ok_or_else(|| {
            fail(format!(
                "{service} {usage_type}: amount {amount:?} is not a number"
            ))
        })?;
    if cost.unit() != Some("USD") {
        let unit = cost.unit();
        return Err(fail(format!(
            "{service} {usage_type}: unit {unit:?}, not USD"
        )));
    }
    Ok(BillLine {
        day: date.to_owned(),
        service: service.clone(),
        usage_type: usage_type.clone(),
        usd,
        estimated,
    })
}

#[async_trait]
impl BillSource for CostExplorerBill {
    async fn bill(&self, window: &Window, tag: (&str, &str)) -> Result<Bill, SourceError> {
        let today = (self.clock)().date_naive();
        let (first, end) = complete_days(window, today)?;
        let (start_day, end_day) = (first.to_string(), end.to_string());
        let period = DateInterval::builder()
            .start(&start_day)
            .end(&end_day)
            .build()
            .map_err(|e| answer(GET_COST_AND_USAGE, e.to_string()))?;
        let filter = tag_filter(tag.0, tag.1);
        let mut requests = 0;
        let services_seen = self
            .dimension_values(Dimension::Service, &period, &filter, &mut requests)
            .await?;
        let usage_types_seen = self
            .dimension_values(Dimension::UsageType, &period, &filter, &mut requests)
            .await?;
        let lines = self.lines(&period, &filter, &mut requests).await?;
        Ok(Bill {
            start_day,
            end_day,
            lines,
            services_seen,
            usage_types_seen,
            requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    #[test]
    fn only_complete_days_before_today_are_billed() {
        let at = |d, h| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
        let window = |from, to| Window::new(from, to).unwrap();
        let days = |w: &Window, today| complete_days(w, today).ok();
        assert_eq!(
            days(&window(at(1, 0), at(3, 0)), day(9)),
            Some((day(1), day(3)))
        );
        assert_eq!(
            days(&window(at(1, 1), at(3, 23)), day(9)),
            Some((day(2), day(3)))
        );
        assert_eq!(
            days(&window(at(1, 0), at(9, 0)), day(4)),
            Some((day(1), day(4)))
        );
        assert_eq!(days(&window(at(1, 1), at(2, 23)), day(9)), None);
        assert_eq!(days(&window(at(4, 0), at(6, 0)), day(4)), None);
    }
}
