//! DynamoDB's consumed capacity, logged per call: what on-demand bills (read and write request
//! units), per table, for the cost report.
//!
//! The services ask for it (`ReturnConsumedCapacity: TOTAL` on every call) and
//! [`crate::aws_call::AwsCallInterceptor`] reads it from each successful response and writes one
//! log line per table: `{"fields": {"message": "dynamodb consumed capacity", "table": …,
//! "read_units": …, "write_units": …}}` in the function's JSON log. Locally those lines are the
//! source of the DynamoDB units; on AWS the same figure comes from `AWS/DynamoDB` metrics, and the
//! line is the function's own record of it (about 150 bytes of log per call).
//!
//! `TOTAL` answers `CapacityUnits` only (the API reference: `ReadCapacityUnits` and
//! `WriteCapacityUnits` come with `INDEXES`), so a call's units are read or write units by its
//! operation. A write refused by its condition consumes units too, but DynamoDB answers it with an
//! error that carries no `ConsumedCapacity`: those units are missing here (they are in the metric).

use serde::Deserialize;

/// The log line's message, which the cost report's local source looks for.
pub const MESSAGE: &str = "dynamodb consumed capacity";

/// One table's units in one call.
#[derive(Clone, Debug, PartialEq)]
pub struct TableUnits {
    /// The table.
    pub table: String,
    /// Read request units.
    pub read: f64,
    /// Write request units.
    pub write: f64,
}

/// Whether the DynamoDB operation (`PutItem`, or its `X-Amz-Target` `DynamoDB_20120810.PutItem`)
/// reads.
fn reads(operation: &str) -> bool {
    matches!(
        operation,
        "GetItem" | "BatchGetItem" | "Query" | "Scan" | "TransactGetItems"
    )
}

/// The units a response body reports, per table; empty when it reports none.
pub fn from_response(operation: &str, body: &[u8]) -> Vec<TableUnits> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Consumed),
        Many(Vec<Consumed>),
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Consumed {
        table_name: Option<String>,
        capacity_units: Option<f64>,
        read_capacity_units: Option<f64>,
        write_capacity_units: Option<f64>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        consumed_capacity: Option<OneOrMany>,
    }
    let operation = operation.rsplit('.').next().unwrap_or(operation);
    let Ok(Response {
        consumed_capacity: Some(consumed),
    }) = serde_json::from_slice::<Response>(body)
    else {
        return Vec::new();
    };
    let all = match consumed {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    };
    all.into_iter()
        .filter_map(|c| {
            let total = c.capacity_units.unwrap_or(0.0);
            let (read, write) = match (c.read_capacity_units, c.write_capacity_units) {
                (None, None) if reads(operation) => (total, 0.0),
                (None, None) => (0.0, total),
                (read, write) => (read.unwrap_or(0.0), write.unwrap_or(0.0)),
            };
            Some(TableUnits {
                table: c.table_name?,
                read,
                write,
            })
        })
        .collect()
}

/// Logs each table's units (INFO, [`MESSAGE`]).
pub fn log(units: &[TableUnits]) {
    for call in units {
        tracing::info!(
            table = %call.table,
            read_units = call.read,
            write_units = call.write,
            "{MESSAGE}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_calls_units_are_read_or_write_by_operation() {
        // The API reference's PutItem example answer with ReturnConsumedCapacity TOTAL
        // (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html).
        let body = br#"{"ConsumedCapacity":{"CapacityUnits":1,"TableName":"Thread"}}"#;
        assert_eq!(
            from_response("DynamoDB_20120810.PutItem", body),
            [TableUnits {
                table: "Thread".into(),
                read: 0.0,
                write: 1.0
            }]
        );
        let read =
            br#"{"ConsumedCapacity":{"CapacityUnits":0.5,"TableName":"payments"},"Item":{}}"#;
        assert_eq!(
            from_response("DynamoDB_20120810.GetItem", read),
            [TableUnits {
                table: "payments".into(),
                read: 0.5,
                write: 0.0
            }]
        );
    }

    #[test]
    fn a_transactions_units_come_per_table_and_split_units_are_kept() {
        let body = br#"{"ConsumedCapacity":[
            {"TableName":"inventory","CapacityUnits":4.0},
            {"TableName":"other","CapacityUnits":3.0,"ReadCapacityUnits":1.0,"WriteCapacityUnits":2.0}
        ]}"#;
        assert_eq!(
            from_response("DynamoDB_20120810.TransactWriteItems", body),
            [
                TableUnits {
                    table: "inventory".into(),
                    read: 0.0,
                    write: 4.0
                },
                TableUnits {
                    table: "other".into(),
                    read: 1.0,
                    write: 2.0
                }
            ]
        );
    }

    #[test]
    fn answers_without_consumed_capacity_report_nothing() {
        assert!(from_response("DynamoDB_20120810.PutItem", b"{}").is_empty());
        assert!(from_response("DynamoDB_20120810.PutItem", b"not json").is_empty());
        assert!(
            from_response(
                "DynamoDB_20120810.PutItem",
                br#"{"ConsumedCapacity":{"CapacityUnits":1}}"#
            )
            .is_empty(),
            "no table name: nothing to attribute"
        );
    }
}
