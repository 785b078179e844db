//! Overflow objects: the payload of an item too big for DynamoDB goes to the object store,
//! and comes back when the item is read.

use futures::{StreamExt, TryStreamExt};

use super::codec::*;
use super::{DynamoStore, FAN_OUT, ovf_key};
use crate::domain::archive::StorageClass;
use crate::domain::types::Id;
use crate::ports::StoreError;

impl DynamoStore {
    /// Move the payload of an item too big for DynamoDB to an overflow object; returns its key.
    pub(super) async fn spill(
        &self,
        item: &mut Item,
        payload: &[&str],
        owner: Id,
    ) -> Result<Option<String>, StoreError> {
        if item_size(item) <= ITEM_BUDGET {
            return Ok(None);
        }
        let Some(bytes) = take_payload(item, payload)? else {
            return Ok(None);
        };
        let k = format!("overflow/{owner}/{}", Id::new());
        self.inner.overflow.put(&k, bytes, StorageClass::Standard).await?;
        item.insert("ovf".into(), s(k.clone()));
        if item_size(item) > ITEM_BUDGET {
            return Err(StoreError::Internal("record too large even without its payload".into()));
        }
        Ok(Some(k))
    }

    /// Put an item's overflow payload back, if it has one.
    pub(super) async fn resolve(&self, mut item: Item) -> Result<Item, StoreError> {
        if let Some(k) = ovf_key(&item) {
            let bytes = self.inner.overflow.get(&k).await?;
            restore_payload(&mut item, &bytes)?;
            item.remove("ovf");
        }
        Ok(item)
    }

    /// [`Self::resolve`] for a page of items, up to [`FAN_OUT`] objects read at once.
    pub(super) async fn resolve_all(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        futures::stream::iter(items.into_iter().map(|it| self.resolve(it))).buffered(FAN_OUT).try_collect().await
    }

    /// Remove overflow objects of deleted items. Best effort: the items are already gone.
    pub(super) async fn drop_overflow(&self, keys: Vec<String>) {
        for k in keys {
            if let Err(e) = self.inner.overflow.delete(&k).await {
                tracing::warn!(object_key = %k, error = %e, "overflow object left behind");
            }
        }
    }
}
