//! The request log tests read through `/_sim/requests`: counts by operation and status, and the
//! ordered list of requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many entries the ordered log keeps (the counts keep everything).
pub const LOG_CAPACITY: usize = 100_000;

/// One request served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEntry {
    /// HTTP method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Operation label (`machines:allocate`), or `-` when no route matched.
    pub op: String,
    /// Status code; 0 when the connection was reset.
    pub code: u16,
}

/// Counts and log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Requests by operation, then by status code (as a string key, for JSON).
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Total requests.
    pub total: u64,
    /// The requests in order (the most recent `LOG_CAPACITY`).
    pub log: Vec<RequestEntry>,
}

impl RequestStats {
    /// Records one request.
    pub fn record(&mut self, entry: RequestEntry) {
        *self
            .counts
            .entry(entry.op.clone())
            .or_default()
            .entry(entry.code.to_string())
            .or_default() += 1;
        self.total += 1;
        if self.log.len() >= LOG_CAPACITY {
            self.log.remove(0);
        }
        self.log.push(entry);
    }

    /// Requests of an operation with a given code.
    pub fn count(&self, op: &str, code: u16) -> u64 {
        self.counts
            .get(op)
            .and_then(|c| c.get(&code.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of an operation, any code.
    pub fn count_op(&self, op: &str) -> u64 {
        self.counts.get(op).map(|c| c.values().sum()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_op_and_code() {
        let mut s = RequestStats::default();
        for code in [200, 200, 409] {
            s.record(RequestEntry {
                method: "POST".into(),
                path: "/p".into(),
                op: "machines:allocate".into(),
                code,
            });
        }
        assert_eq!(s.count("machines:allocate", 200), 2);
        assert_eq!(s.count("machines:allocate", 409), 1);
        assert_eq!(s.count_op("machines:allocate"), 3);
        assert_eq!(s.count_op("machine:read"), 0);
        assert_eq!(s.log.len(), 3);
        assert_eq!(s.total, 3);
    }
}
