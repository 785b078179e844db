//! The archive run's lease on DynamoDB: taking, renewing and releasing it, and the fenced
//! transactions (the lease check first) every write of a run goes through.

use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

use super::codec::*;
use super::io::{Names, Values, tx_check};
use super::{DynamoStore, FAILED};
use crate::ports::{Lease, StoreError};

impl DynamoStore {
    fn lease_check(&self, lease: &Lease) -> Result<TransactWriteItem, StoreError> {
        tx_check(
            self.table(),
            lease_key(),
            "#token = :t",
            Names::from([("#token".to_owned(), "token".to_owned())]),
            Values::from([(":t".to_owned(), n(lease.token))]),
        )
    }

    /// A transaction of the archive run, fenced: the lease check goes first (so it is item 0 of
    /// the cancellation reasons). `Ok(Err(codes))` when one of `tx`'s own conditions failed,
    /// codes aligned with `tx`.
    ///
    /// No lock serializes these. Every fenced transaction checks the lease item, so two in
    /// flight at once conflict and `io::transact` retries the one DynamoDB cancelled
    /// (TransactionConflict) with backoff: the conditions keep the data right, not the order
    /// of sending. And there is nothing to serialize: a run writes one step after another
    /// (`commit_archive` sends its batches in turn, its reads alone run FAN_OUT wide), the app
    /// runs one run per process, and the writes that are not fenced (ingest, deletes,
    /// `delete_archived`) never touch the lease item.
    pub(super) async fn run_tx(
        &self,
        lease: &Lease,
        tx: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<String>>, StoreError> {
        let mut all = Vec::with_capacity(tx.len() + 1);
        all.push(self.lease_check(lease)?);
        all.extend(tx);
        match self.db().transact(all).await? {
            Ok(()) => Ok(Ok(())),
            Err(codes) if codes.first().is_some_and(|c| c == FAILED) => Err(StoreError::Fenced),
            Err(codes) => Ok(Err(codes.into_iter().skip(1).collect())),
        }
    }

    /// Fenced when the lease was taken over: for calls that may find nothing to write (the
    /// transactions themselves are what guards the data).
    pub(super) async fn check_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let item = self.db().get(self.table(), lease_key()).await?;
        match item.map(|i| get_n::<i64>(&i, "token")).transpose()? {
            Some(token) if token == lease.token => Ok(()),
            _ => Err(StoreError::Fenced),
        }
    }

    /// A fenced transaction whose items have no conditions of their own.
    pub(super) async fn run_tx_plain(&self, lease: &Lease, tx: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.run_tx(lease, tx)
            .await?
            .map_err(|codes| StoreError::Internal(format!("dynamodb transaction cancelled: {}", codes.join(","))))
    }

    pub(super) async fn acquire_lease_impl(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let names = Names::from([
            ("#holder".to_owned(), "holder".to_owned()),
            ("#expires".to_owned(), "expires".to_owned()),
            ("#token".to_owned(), "token".to_owned()),
        ]);
        let values = Values::from([
            (":h".to_owned(), s(holder)),
            (":exp".to_owned(), n(lease_expiry(now, ttl))),
            (":one".to_owned(), n(1)),
            (":now".to_owned(), n(now.timestamp_millis())),
            (":clock_went_back".to_owned(), n(lease_expiry(now, ttl.saturating_add(crate::ports::LEASE_CLOCK_SLACK)))),
        ]);
        let expr = "SET #holder = :h, #expires = :exp ADD #token :one";
        let cond = "attribute_not_exists(pk) OR #expires < :now OR #expires > :clock_went_back";
        match self.db().update(self.table(), lease_key(), expr, names, values, cond).await? {
            Some(item) => lease_from(&item).map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn renew_lease_impl(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let names =
            Names::from([("#expires".to_owned(), "expires".to_owned()), ("#token".to_owned(), "token".to_owned())]);
        let values = Values::from([(":exp".to_owned(), n(lease_expiry(now, ttl))), (":t".to_owned(), n(lease.token))]);
        match self.db().update(self.table(), lease_key(), "SET #expires = :exp", names, values, "#token = :t").await? {
            Some(item) => lease_from(&item).map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn release_lease_impl(&self, lease: &Lease) -> Result<(), StoreError> {
        // Expired at once, token kept: the next holder's token is still larger.
        let names =
            Names::from([("#expires".to_owned(), "expires".to_owned()), ("#token".to_owned(), "token".to_owned())]);
        let values = Values::from([(":zero".to_owned(), n(0)), (":t".to_owned(), n(lease.token))]);
        self.db().update(self.table(), lease_key(), "SET #expires = :zero", names, values, "#token = :t").await?;
        Ok(())
    }
}

/// Epoch milliseconds of `now + ttl`.
fn lease_expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    now.timestamp_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}
