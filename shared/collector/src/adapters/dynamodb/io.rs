//! DynamoDB calls with the mechanics every caller needs: pagination, retries of unprocessed
//! batch items and of transaction conflicts; SDK errors map to [`StoreError`] through
//! `adapters::aws_errors`, shared with S3 (codes only: no item data ever reaches a message).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest, ReturnValue,
    TransactWriteItem, Update, WriteRequest,
};

use super::codec::{Gsi, Item, s};
use crate::adapters::aws_errors;
use crate::ports::StoreError;

/// What a caller should wait after DynamoDB throttled us past the SDK's own retries.
pub const THROTTLED_RETRY_AFTER: Duration = aws_errors::DEFAULT_RETRY_AFTER;
/// Our own retries (unprocessed batch items, transaction conflicts), exponential from 25 ms.
const RETRIES: u32 = 8;
const BATCH_WRITE: usize = 25;
const BATCH_GET: usize = 100;
/// BatchGetItem calls of one read in flight at once (a scan page of 500 records is 5 calls).
const BATCH_GET_LANES: usize = 8;

fn throttled() -> StoreError {
    StoreError::Throttled { retry_after: THROTTLED_RETRY_AFTER }
}

pub async fn backoff(attempt: u32) {
    let ms = 25u64 << attempt.min(6);
    // A little jitter from the clock, so racing writers spread out.
    let jitter = u64::from(chrono::Utc::now().timestamp_subsec_micros() % 16);
    tokio::time::sleep(Duration::from_millis(ms + jitter)).await;
}

/// Map an SDK error (`adapters::aws_errors`, shared with S3).
pub fn sdk_error<E>(op: &'static str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    aws_errors::store_error("dynamodb", op, e)
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Internal(format!("dynamodb request: {e}")))
}

/// A sort-key condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    /// Inclusive on both ends; empty when lo > hi.
    Between(String, String),
    AtLeast(String),
    AtMost(String),
    Below(String),
    Above(String),
    Prefix(String),
}

impl SkRange {
    /// From optional inclusive bounds.
    pub fn bounds(lo: Option<String>, hi: Option<String>) -> SkRange {
        match (lo, hi) {
            (Some(lo), Some(hi)) => SkRange::Between(lo, hi),
            (Some(lo), None) => SkRange::AtLeast(lo),
            (None, Some(hi)) => SkRange::AtMost(hi),
            (None, None) => SkRange::All,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, SkRange::Between(lo, hi) if lo > hi)
    }
}

/// One Query: a partition of the table or of an index, a sort-key range, a direction.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub table: String,
    pub index: Option<&'static Gsi>,
    pub pk_attr: &'static str,
    pub pk: String,
    pub sk_attr: &'static str,
    pub range: SkRange,
    pub ascending: bool,
    /// Only on the table itself (GSIs are eventually consistent).
    pub consistent: bool,
    /// Keep only items whose `platform` attribute equals this (on an index: it must project it).
    pub platform: Option<String>,
    /// Read only these attributes (all when empty; on an index: all it projects, and these
    /// must be among them).
    pub projection: Vec<&'static str>,
}

impl QuerySpec {
    pub fn table(table: &str, pk: String) -> QuerySpec {
        QuerySpec {
            table: table.to_owned(),
            index: None,
            pk_attr: "pk",
            pk,
            sk_attr: "sk",
            range: SkRange::All,
            ascending: true,
            consistent: true,
            platform: None,
            projection: Vec::new(),
        }
    }

    pub fn index(table: &str, index: &'static Gsi, pk: String) -> QuerySpec {
        QuerySpec {
            table: table.to_owned(),
            index: Some(index),
            pk_attr: index.pk,
            pk,
            sk_attr: index.sk,
            range: SkRange::All,
            ascending: true,
            consistent: false,
            platform: None,
            projection: Vec::new(),
        }
    }

    pub fn range(mut self, range: SkRange) -> QuerySpec {
        self.range = range;
        self
    }

    pub fn descending(mut self) -> QuerySpec {
        self.ascending = false;
        self
    }

    pub fn only(mut self, attrs: &[&'static str]) -> QuerySpec {
        self.projection = attrs.to_vec();
        self
    }

    /// The first attribute this query filters on or reads that its index does not project: an
    /// index entry holds only what the index projects, so such a query would silently filter
    /// out everything (DynamoDB evaluates the filter on the entry) or read nothing.
    pub fn unprojected(&self) -> Option<&'static str> {
        let g = self.index?;
        let filtered = self.platform.as_ref().map(|_| "platform");
        self.projection.iter().copied().chain(filtered).find(|a| !g.projects(a))
    }
}

#[derive(Clone)]
pub struct Dynamo {
    pub client: Client,
    pub table: String,
    pub archive_table: String,
}

pub type Page = (Vec<Item>, Option<Item>);

impl Dynamo {
    /// One page of a query, from `start` (a LastEvaluatedKey), at most `limit` items read.
    pub async fn query_page(&self, q: &QuerySpec, start: Option<Item>, limit: Option<i32>) -> Result<Page, StoreError> {
        if q.range.is_empty() {
            return Ok((Vec::new(), None));
        }
        if let (Some(g), Some(attr)) = (q.index, q.unprojected()) {
            return Err(StoreError::Internal(format!("index {} does not project {attr}", g.name)));
        }
        let mut names = HashMap::from([("#pk".to_owned(), q.pk_attr.to_owned())]);
        let mut values = HashMap::from([(":pk".to_owned(), s(q.pk.clone()))]);
        let sk_cond = match &q.range {
            SkRange::All => None,
            SkRange::Between(lo, hi) => {
                values.insert(":lo".into(), s(lo.clone()));
                values.insert(":hi".into(), s(hi.clone()));
                Some("#sk BETWEEN :lo AND :hi")
            }
            SkRange::AtLeast(v) => {
                values.insert(":v".into(), s(v.clone()));
                Some("#sk >= :v")
            }
            SkRange::AtMost(v) => {
                values.insert(":v".into(), s(v.clone()));
                Some("#sk <= :v")
            }
            SkRange::Below(v) => {
                values.insert(":v".into(), s(v.clone()));
                Some("#sk < :v")
            }
            SkRange::Above(v) => {
                values.insert(":v".into(), s(v.clone()));
                Some("#sk > :v")
            }
            SkRange::Prefix(v) => {
                values.insert(":v".into(), s(v.clone()));
                Some("begins_with(#sk, :v)")
            }
        };
        let key_cond = match sk_cond {
            Some(c) => {
                names.insert("#sk".into(), q.sk_attr.to_owned());
                format!("#pk = :pk AND {c}")
            }
            None => "#pk = :pk".to_owned(),
        };
        let mut req = self
            .client
            .query()
            .table_name(&q.table)
            .set_index_name(q.index.map(|g| g.name.to_owned()))
            .key_condition_expression(key_cond)
            .scan_index_forward(q.ascending)
            .consistent_read(q.consistent)
            .set_exclusive_start_key(start)
            .set_limit(limit);
        if let Some(p) = &q.platform {
            names.insert("#platform".into(), "platform".into());
            values.insert(":platform".into(), s(p.clone()));
            req = req.filter_expression("#platform = :platform");
        }
        if !q.projection.is_empty() {
            let mut parts = Vec::with_capacity(q.projection.len());
            for (i, attr) in q.projection.iter().enumerate() {
                names.insert(format!("#p{i}"), (*attr).to_owned());
                parts.push(format!("#p{i}"));
            }
            req = req.projection_expression(parts.join(", "));
        }
        let out = req
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| sdk_error("query", &e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Every item of a query, following LastEvaluatedKey.
    pub async fn query_all(&self, q: &QuerySpec) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(q, start, None).await?;
            out.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Up to `limit` items of a query (following LastEvaluatedKey while short).
    pub async fn query_limit(&self, q: &QuerySpec, limit: usize) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        while out.len() < limit {
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            let (items, next) = self.query_page(q, start, Some(want)).await?;
            out.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    pub async fn get(&self, table: &str, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get_item", &e))?;
        Ok(out.item)
    }

    pub async fn put(&self, table: &str, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("put_item", &e))?;
        Ok(())
    }

    /// Put an item that must not exist yet; false when its key is taken.
    pub async fn put_new(&self, table: &str, item: Item, key_attr: &str) -> Result<bool, StoreError> {
        let sent = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", key_attr)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("put_item", &e)),
        }
    }

    /// A conditional UpdateItem that returns the item as written; None when the condition failed.
    /// Refused while a transaction holds the item (`TransactionConflict`): retried like those.
    pub async fn update(
        &self,
        table: &str,
        key: Item,
        expr: &str,
        names: Names,
        values: Values,
        cond: &str,
    ) -> Result<Option<Item>, StoreError> {
        let (names, values) = (nonempty(names), nonempty(values));
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .update_item()
                .table_name(table)
                .set_key(Some(key.clone()))
                .update_expression(expr)
                .condition_expression(cond)
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(values.clone())
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            let e = match sent {
                Ok(out) => return Ok(Some(out.attributes.unwrap_or_default())),
                Err(e) => e,
            };
            let Some(se) = e.as_service_error() else {
                return Err(sdk_error("update_item", &e));
            };
            if se.is_conditional_check_failed_exception() {
                return Ok(None);
            }
            if !se.is_transaction_conflict_exception() {
                return Err(sdk_error("update_item", &e));
            }
            if attempt >= RETRIES {
                return Err(throttled());
            }
            backoff(attempt).await;
            attempt += 1;
        }
    }

    /// Run a transaction. `Ok(Err(codes))` when a condition failed (one cancellation code per
    /// item, "None" for the others). Conflicts with other transactions are retried.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Result<(), Vec<String>>, StoreError> {
        let mut attempt = 0;
        loop {
            // The SDK gives each send a `ClientRequestToken` (kept across its own retries), so
            // its resend of a transaction whose answer was lost is not run twice by DynamoDB.
            let sent = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let e = match sent {
                Ok(_) => {
                    // Tests: the answer lost and the transaction run again, as it would be without
                    // the token (the emulator does not keep tokens), or sent again by our caller.
                    #[cfg(feature = "failpoints")]
                    if fail::eval("transact.answer_lost", |_| ()).is_some() {
                        continue;
                    }
                    return Ok(Ok(()));
                }
                Err(e) => e,
            };
            let code = e.as_service_error().and_then(|se| se.code()).unwrap_or("").to_owned();
            let retry = match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    tc,
                )) => {
                    let codes: Vec<String> =
                        tc.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect();
                    if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                        return Ok(Err(codes));
                    }
                    if codes.iter().any(|c| aws_errors::is_throttle_code(c)) {
                        return Err(throttled());
                    }
                    if !codes.iter().any(|c| c == "TransactionConflict") {
                        return Err(StoreError::Internal(format!("dynamodb transaction cancelled: {}", codes.join(","))));
                    }
                    true
                }
                _ => code == "TransactionConflictException" || code == "TransactionInProgressException",
            };
            if !retry {
                return Err(sdk_error("transact_write_items", &e));
            }
            if attempt >= RETRIES {
                return Err(throttled());
            }
            backoff(attempt).await;
            attempt += 1;
        }
    }

    /// Delete items by key (batches of 25, unprocessed ones retried with backoff).
    pub async fn delete_keys(&self, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(keys.len());
        for k in keys {
            let del = build(DeleteRequest::builder().set_key(Some(k)).build())?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        self.batch_write(table, requests).await
    }

    /// Put items unconditionally: batches of 25, up to `lanes` batches in flight, unprocessed
    /// items retried with backoff.
    pub async fn put_items(&self, table: &str, items: Vec<Item>, lanes: usize) -> Result<(), StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let mut batches: Vec<Vec<WriteRequest>> = Vec::new();
        for item in items {
            let put = build(PutRequest::builder().set_item(Some(item)).build())?;
            match batches.last_mut() {
                Some(b) if b.len() < BATCH_WRITE => b.push(WriteRequest::builder().put_request(put).build()),
                _ => batches.push(vec![WriteRequest::builder().put_request(put).build()]),
            }
        }
        futures::stream::iter(batches.into_iter().map(|b| self.batch_write(table, b)))
            .buffer_unordered(lanes.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// DeleteItem under a condition; false when the condition failed.
    pub async fn delete_if(
        &self,
        table: &str,
        key: Item,
        cond: &str,
        names: Names,
        values: Values,
    ) -> Result<bool, StoreError> {
        let sent = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(cond)
            .set_expression_attribute_names(nonempty(names))
            .set_expression_attribute_values(nonempty(values))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("delete_item", &e)),
        }
    }

    pub async fn batch_write(&self, table: &str, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut queue: VecDeque<WriteRequest> = requests.into();
        let mut attempt = 0;
        while !queue.is_empty() {
            let n = queue.len().min(BATCH_WRITE);
            let chunk: Vec<WriteRequest> = queue.drain(..n).collect();
            let out = self
                .client
                .batch_write_item()
                .request_items(table, chunk)
                .send()
                .await
                .map_err(|e| sdk_error("batch_write_item", &e))?;
            let left = out.unprocessed_items.and_then(|mut m| m.remove(table)).unwrap_or_default();
            if left.is_empty() {
                attempt = 0;
                continue;
            }
            if attempt >= RETRIES {
                return Err(throttled());
            }
            for r in left.into_iter().rev() {
                queue.push_front(r);
            }
            backoff(attempt).await;
            attempt += 1;
        }
        Ok(())
    }

    /// Consistent reads of items by key (batches of 100, up to [`BATCH_GET_LANES`] in flight,
    /// unprocessed keys retried with backoff); missing keys are left out, and the order is not
    /// the keys' order. The keys must be distinct (DynamoDB refuses a batch that repeats one).
    pub async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.batch_get_projected(table, keys, &[]).await
    }

    /// [`Self::batch_get`] of only `attrs` of each item (all of them when empty).
    pub async fn batch_get_projected(
        &self,
        table: &str,
        keys: Vec<Item>,
        attrs: &[&'static str],
    ) -> Result<Vec<Item>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let mut chunks: Vec<Vec<Item>> = Vec::with_capacity(keys.len().div_ceil(BATCH_GET));
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            chunks.push(keys.by_ref().take(BATCH_GET).collect());
        }
        let pages: Vec<Vec<Item>> =
            futures::stream::iter(chunks.into_iter().map(|c| self.batch_get_chunk(table, c, attrs)))
                .buffer_unordered(BATCH_GET_LANES)
                .try_collect()
                .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn batch_get_chunk(
        &self,
        table: &str,
        keys: Vec<Item>,
        attrs: &[&'static str],
    ) -> Result<Vec<Item>, StoreError> {
        let mut queue: VecDeque<Item> = keys.into();
        let mut out = Vec::new();
        let mut attempt = 0;
        while !queue.is_empty() {
            let n = queue.len().min(BATCH_GET);
            let chunk: Vec<Item> = queue.drain(..n).collect();
            let mut ka = KeysAndAttributes::builder().set_keys(Some(chunk)).consistent_read(true);
            if !attrs.is_empty() {
                let names: Names = attrs.iter().enumerate().map(|(i, a)| (format!("#p{i}"), (*a).to_owned())).collect();
                let expr = (0..attrs.len()).map(|i| format!("#p{i}")).collect::<Vec<_>>().join(", ");
                ka = ka.projection_expression(expr).set_expression_attribute_names(Some(names));
            }
            let ka = build(ka.build())?;
            let res = self
                .client
                .batch_get_item()
                .request_items(table, ka)
                .send()
                .await
                .map_err(|e| sdk_error("batch_get_item", &e))?;
            out.extend(res.responses.and_then(|mut m| m.remove(table)).unwrap_or_default());
            let left = res.unprocessed_keys.and_then(|mut m| m.remove(table)).map(|k| k.keys).unwrap_or_default();
            if left.is_empty() {
                attempt = 0;
                continue;
            }
            if attempt >= RETRIES {
                return Err(throttled());
            }
            queue.extend(left);
            backoff(attempt).await;
            attempt += 1;
        }
        Ok(out)
    }
}

// -- transaction items -------------------------------------------------------------------------------

pub type Values = HashMap<String, AttributeValue>;
pub type Names = HashMap<String, String>;

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub fn key_of(item: &Item, attrs: [&str; 2]) -> Item {
    attrs.iter().filter_map(|a| item.get(*a).map(|v| ((*a).to_owned(), v.clone()))).collect()
}

/// Optional condition: expression, names, values.
pub type Cond = Option<(&'static str, Names, Values)>;

fn nonempty<K, V>(m: HashMap<K, V>) -> Option<HashMap<K, V>> {
    if m.is_empty() { None } else { Some(m) }
}

pub fn tx_put(table: &str, item: Item, cond: Cond) -> Result<TransactWriteItem, StoreError> {
    let mut p = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expr, names, values)) = cond {
        p = p
            .condition_expression(expr)
            .set_expression_attribute_names(nonempty(names))
            .set_expression_attribute_values(nonempty(values));
    }
    Ok(TransactWriteItem::builder().put(build(p.build())?).build())
}

pub fn tx_delete(table: &str, key: Item, cond: Cond) -> Result<TransactWriteItem, StoreError> {
    let mut d = Delete::builder().table_name(table).set_key(Some(key));
    if let Some((expr, names, values)) = cond {
        d = d
            .condition_expression(expr)
            .set_expression_attribute_names(nonempty(names))
            .set_expression_attribute_values(nonempty(values));
    }
    Ok(TransactWriteItem::builder().delete(build(d.build())?).build())
}

/// A condition on an item the transaction does not write (it fails the whole transaction).
pub fn tx_check(
    table: &str,
    key: Item,
    expr: &str,
    names: Names,
    values: Values,
) -> Result<TransactWriteItem, StoreError> {
    let c = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(expr)
        .set_expression_attribute_names(nonempty(names))
        .set_expression_attribute_values(nonempty(values));
    Ok(TransactWriteItem::builder().condition_check(build(c.build())?).build())
}

pub fn tx_update(
    table: &str,
    key: Item,
    expr: String,
    names: Names,
    values: Values,
    cond: Option<&str>,
) -> Result<TransactWriteItem, StoreError> {
    let u = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expr)
        .set_condition_expression(cond.map(str::to_owned))
        .set_expression_attribute_names(nonempty(names))
        .set_expression_attribute_values(nonempty(values));
    Ok(TransactWriteItem::builder().update(build(u.build())?).build())
}
