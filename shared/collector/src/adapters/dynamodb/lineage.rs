//! Export lineage on DynamoDB: export manifests and the held-records items (`XU#{user}`)
//! that say which exports hold a user's records.

use std::collections::{BTreeSet, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::*;
use super::io::{self, Names, QuerySpec, Values, key};
use super::{DynamoStore, FAN_OUT};
use crate::domain::lineage::{ExportManifest, HeldBy, HeldRecords};
use crate::domain::types::Id;
use crate::ports::StoreError;

impl DynamoStore {
    /// The held-records items of a user (keys only), or those of the user that hold a record.
    async fn held_of(&self, by: HeldBy<'_>) -> Result<Vec<Item>, StoreError> {
        match by {
            HeldBy::User(user) => {
                self.db().query_all(&QuerySpec::table(self.table(), held_pk(user)).only(&["pk", "sk"])).await
            }
            HeldBy::Record { id, user } => {
                let items = self.db().query_all(&QuerySpec::table(self.table(), held_pk(user))).await?;
                Ok(items.into_iter().filter(|i| holds(i, id)).collect())
            }
        }
    }

    /// The held-records items first (each user's ids in chunks, batches written [`FAN_OUT`]
    /// at a time), then the manifest, so a visible manifest has all its records. A process
    /// that dies in between leaves held items whose export has no manifest:
    /// [`HotStore::exports_holding`](crate::ports::HotStore::exports_holding) leaves those out.
    pub(super) async fn record_export_impl(
        &self,
        manifest: &ExportManifest,
        held: &HeldRecords,
    ) -> Result<(), StoreError> {
        let items: Vec<Item> =
            held.by_user().flat_map(|(user, ids)| held_items(manifest.export_id, user, &ids)).collect();
        self.db().put_items(self.table(), items, FAN_OUT).await?;
        if self.db().put_new(self.table(), manifest_item(manifest)?, "pk").await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("id already exists"))
        }
    }

    /// One consistent Query of the user's held partition (`XU#{user}`): its sort keys for a
    /// user, the items holding the id for a record; then the manifests of those exports
    /// (BatchGetItem), to leave out held items left by a recording that died before its manifest.
    pub(super) async fn exports_holding_impl(&self, by: HeldBy<'_>) -> Result<BTreeSet<Id>, StoreError> {
        let mut found = BTreeSet::new();
        for item in self.held_of(by).await? {
            found.insert(held_export(&item)?);
        }
        if found.is_empty() {
            return Ok(found);
        }
        let keys = found.iter().map(|id| key(EXPORTS_PK, id.to_string())).collect();
        let recorded = self.db().batch_get(self.table(), keys).await?;
        recorded.iter().map(|m| parse_id(get_s(m, "sk")?)).collect()
    }

    /// A user: every item of the partition goes (BatchWriteItem). A record: its id leaves each
    /// item's set (`DELETE ids :id`, atomic, so concurrent erasures of one user's records do
    /// not undo each other); an item left without ids goes (on that condition).
    pub(super) async fn forget_held_impl(&self, by: HeldBy<'_>) -> Result<(), StoreError> {
        let items = self.held_of(by).await?;
        let HeldBy::Record { id, .. } = by else {
            let keys = items.iter().map(|i| io::key_of(i, ["pk", "sk"])).collect();
            return self.db().delete_keys(self.table(), keys).await;
        };
        let ids = Names::from([("#ids".to_owned(), "ids".to_owned())]);
        for item in items {
            let k = io::key_of(&item, ["pk", "sk"]);
            let one = Values::from([(":id".to_owned(), AttributeValue::Ss(vec![id.to_string()]))]);
            let left = self
                .db()
                .update(self.table(), k.clone(), "DELETE #ids :id", ids.clone(), one, "attribute_exists(pk)")
                .await?;
            if left.is_some_and(|l| !l.contains_key("ids")) {
                self.db().delete_if(self.table(), k, "attribute_not_exists(#ids)", ids.clone(), Values::new()).await?;
            }
        }
        Ok(())
    }

    /// The manifest first (a held item without its manifest is already left out by
    /// `exports_holding`), then the held items.
    pub(super) async fn drop_export_impl(
        &self,
        manifest: &ExportManifest,
        held: &HeldRecords,
    ) -> Result<(), StoreError> {
        self.db().delete_keys(self.table(), vec![key(EXPORTS_PK, manifest.export_id.to_string())]).await?;
        let keys: Vec<Item> = held
            .by_user()
            .flat_map(|(user, ids)| held_items(manifest.export_id, user, &ids))
            .map(|i| io::key_of(&i, ["pk", "sk"]))
            .collect();
        self.db().delete_keys(self.table(), keys).await
    }

    /// Consistent BatchGetItem of the heads (`I#{id}` / `A`): a hot record or an archived stub
    /// is there; a deleted record is not.
    pub(super) async fn live_records_impl(&self, ids: &[Id]) -> Result<HashSet<Id>, StoreError> {
        let keys = ids.iter().map(|id| key(interaction_pk(*id), INTERACTION_SK)).collect();
        let heads = self.db().batch_get_projected(self.table(), keys, &["id"]).await?;
        heads.iter().map(|h| parse_id(get_s(h, "id")?)).collect()
    }
}
