//! Archive objects (and spilled exports) in an S3 bucket, under the same keys as the folder store.
//!
//! Streamed writes buffer up to one part ([`PART_SIZE`]). An object that ends before the
//! buffer overflows goes out as one `PutObject` with the storage class the writer's
//! [`ClassPolicy`] picks for its final size; a bigger one becomes a multipart upload, created
//! with the class the policy picks for one part (by size that is STANDARD_IA: a part is far
//! over the 128 KiB threshold, and the object only grows), one `UploadPart` per full buffer and
//! `CompleteMultipartUpload` with the parts in order. Any failure, an `abort`, or a writer
//! dropped half-way aborts the upload, so no part stays billed. Memory per writer: one part plus
//! the chunk being appended.
//!
//! Errors carry the operation, the S3 error code and the HTTP status, never keys' contents or
//! S3's message text.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::aws_errors;
use crate::domain::archive::{ClassPolicy, StorageClass};
use crate::ports::keys::check_key;
use crate::ports::{FinishedObject, ObjectStore, ObjectStream, ObjectWriter, StoreError};

/// Multipart part size: S3 wants at least 5 MiB for every part but the last.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: String) -> S3Store {
        S3Store { client, bucket }
    }

    async fn get_object(&self, key: &str) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        check_key(key)?;
        self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| sdk_error("get", e))
    }
}

fn s3_class(class: StorageClass) -> aws_sdk_s3::types::StorageClass {
    aws_sdk_s3::types::StorageClass::from(class.as_str())
}

/// One SDK failure as a [`StoreError`] (`adapters::aws_errors`, shared with DynamoDB).
fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &'static str,
    e: SdkError<E, HttpResponse>,
) -> StoreError {
    aws_errors::store_error("s3", op, &e)
}

fn missing(op: &'static str, what: &'static str) -> StoreError {
    StoreError::Internal(format!("s3 {op}: response without {what}"))
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: Vec<u8>, storage_class: StorageClass) -> Result<(), StoreError> {
        check_key(key)?;
        put_object(&self.client, &self.bucket, key, storage_class, ByteStream::from(bytes)).await
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let body = self
            .get_object(key)
            .await?
            .body
            .collect()
            .await
            .map_err(|_| StoreError::Unavailable("s3 get: body read failed".into()))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self.client.list_objects_v2().bucket(&self.bucket).set_continuation_token(token.take());
            if !prefix.is_empty() {
                req = req.prefix(prefix);
            }
            let page = req.send().await.map_err(|e| sdk_error("list", e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(next)) => token = Some(next.to_owned()),
                (Some(true), None) => return Err(missing("list", "a continuation token")),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => match sdk_error("delete", e) {
                StoreError::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn writer(&self, key: &str, class: ClassPolicy) -> Result<Box<dyn ObjectWriter>, StoreError> {
        check_key(key)?;
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            buf: BytesMut::new(),
            upload: None,
            written: 0,
            class,
            state: WriterState::Open,
        }))
    }

    async fn reader(&self, key: &str) -> Result<ObjectStream, StoreError> {
        let out = self.get_object(key).await?;
        let chunks = futures::stream::try_unfold(out.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(_) => Err(StoreError::Unavailable("s3 get: body read failed".into())),
            }
        });
        Ok(chunks.boxed())
    }

    async fn presigned_get(&self, key: &str, expires: Duration) -> Result<Option<String>, StoreError> {
        check_key(key)?;
        let config = PresigningConfig::expires_in(expires)
            .map_err(|e| StoreError::Internal(format!("s3 presign: {}", DisplayErrorContext(&e))))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| sdk_error("presign", e))?;
        Ok(Some(req.uri().to_owned()))
    }

    async fn remove_abandoned_writes(&self, prefix: &str, _older_than: Duration) -> Result<u64, StoreError> {
        // The bucket's AbortIncompleteMultipartUpload rule does it (template.yaml); a simple
        // put is atomic and leaves nothing.
        check_key(prefix.trim_end_matches('/'))?;
        Ok(0)
    }
}

/// A multipart upload in progress.
struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
    /// Fixed when the upload is created.
    class: StorageClass,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterState {
    Open,
    /// A write failed; the upload (if any) was already aborted.
    Failed,
    /// Finished or aborted: nothing for `Drop` to clean up.
    Closed,
}

struct S3Writer {
    client: Client,
    bucket: String,
    key: String,
    /// At most one part (plus the chunk being appended).
    buf: BytesMut,
    upload: Option<Multipart>,
    written: i64,
    class: ClassPolicy,
    state: WriterState,
}

impl S3Writer {
    fn check_open(&self) -> Result<(), StoreError> {
        match self.state {
            WriterState::Open => Ok(()),
            _ => Err(StoreError::Internal("s3 write: the writer failed earlier".into())),
        }
    }

    /// Upload one part, creating the multipart upload on the first.
    async fn upload_part(&mut self, body: Bytes) -> Result<(), StoreError> {
        if self.upload.is_none() {
            let class = self.class.pick(self.written);
            let created = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .storage_class(s3_class(class))
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .map_err(|e| sdk_error("create multipart upload", e))?;
            let upload_id = created.upload_id().ok_or_else(|| missing("create multipart upload", "an upload id"))?;
            self.upload = Some(Multipart { upload_id: upload_id.to_owned(), parts: Vec::new(), class });
        }
        let Some(up) = self.upload.as_mut() else {
            return Err(StoreError::Internal("s3 upload part: no upload".into()));
        };
        let number = i32::try_from(up.parts.len() + 1)
            .map_err(|_| StoreError::Internal("s3 upload part: too many parts".into()))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&up.upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error("upload part", e))?;
        let etag = out.e_tag().ok_or_else(|| missing("upload part", "an ETag"))?;
        up.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(etag)
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        let Some(up) = self.upload.as_mut() else {
            return Err(StoreError::Internal("s3 complete: no upload".into()));
        };
        up.parts.sort_by_key(|p| p.part_number());
        let parts = CompletedMultipartUpload::builder().set_parts(Some(up.parts.clone())).build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&up.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| sdk_error("complete multipart upload", e))?;
        Ok(())
    }

    async fn put_whole(&mut self, class: StorageClass) -> Result<(), StoreError> {
        let body = self.buf.split().freeze();
        put_object(&self.client, &self.bucket, &self.key, class, ByteStream::from(body)).await
    }

    /// Abort the multipart upload, if one was started. Idempotent.
    async fn abort_upload(&mut self) -> Result<(), StoreError> {
        let Some(up) = self.upload.take() else {
            return Ok(());
        };
        match abort_upload(&self.client, &self.bucket, &self.key, &up.upload_id).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// After a failure: abort, keep the first error.
    async fn fail(&mut self, e: StoreError) -> StoreError {
        self.state = WriterState::Failed;
        self.buf = BytesMut::new();
        if let Err(abort) = self.abort_upload().await {
            tracing::warn!(error = %abort, "s3: aborting a failed multipart upload failed; the bucket's lifecycle rule must clean it");
        }
        e
    }
}

async fn put_object(
    client: &Client,
    bucket: &str,
    key: &str,
    class: StorageClass,
    body: ByteStream,
) -> Result<(), StoreError> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .storage_class(s3_class(class))
        .body(body)
        .send()
        .await
        .map_err(|e| sdk_error("put", e))?;
    Ok(())
}

async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) -> Result<(), StoreError> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| sdk_error("abort multipart upload", e))?;
    Ok(())
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.check_open()?;
        self.written += chunk.len() as i64;
        self.buf.extend_from_slice(&chunk);
        // Strictly over one part: an object of exactly PART_SIZE still goes out as one PutObject.
        while self.buf.len() > PART_SIZE {
            let part = self.buf.split_to(PART_SIZE).freeze();
            if let Err(e) = self.upload_part(part).await {
                return Err(self.fail(e).await);
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<FinishedObject, StoreError> {
        self.check_open()?;
        let result = if let Some(class) = self.upload.as_ref().map(|up| up.class) {
            let last = self.buf.split().freeze();
            let sent = if last.is_empty() { Ok(()) } else { self.upload_part(last).await };
            match sent {
                Ok(()) => self.complete().await.map(|()| class),
                Err(e) => Err(e),
            }
        } else {
            let class = self.class.pick(self.written);
            self.put_whole(class).await.map(|()| class)
        };
        match result {
            Ok(storage_class) => {
                self.state = WriterState::Closed;
                self.upload = None;
                Ok(FinishedObject { bytes: self.written, storage_class })
            }
            Err(e) => {
                let e = self.fail(e).await;
                self.state = WriterState::Closed;
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.buf = BytesMut::new();
        let r = self.abort_upload().await;
        self.state = WriterState::Closed;
        r
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Dropped half-way (an error elsewhere, a cancelled request): abort in the background.
        let Some(up) = self.upload.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "s3: a multipart upload was abandoned outside a runtime; the bucket's lifecycle rule must clean it"
            );
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), std::mem::take(&mut self.key));
        rt.spawn(async move {
            if let Err(e) = abort_upload(&client, &bucket, &key, &up.upload_id).await {
                tracing::warn!(error = %e, "s3: aborting an abandoned multipart upload failed");
            }
        });
    }
}
