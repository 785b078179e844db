//! Building the AWS backend from config: one SDK config, a DynamoDB client and an S3 client,
//! built once per process (a Lambda container reuses them across invocations).

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use super::{App, AppError};
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::s3::S3Store;
use crate::config::Config;
use crate::ports::ObjectStore;

/// Used when neither the environment nor the AWS profile names a region.
const FALLBACK_REGION: &str = "us-east-1";

impl App {
    /// The AWS backend: hot records in `TABLE_NAME`, the archive catalog in
    /// `ARCHIVE_TABLE_NAME`, objects in `S3_BUCKET_NAME`.
    ///
    /// Credentials: the standard AWS chain (environment, profile, the Lambda role). S3 alone can
    /// take explicit `S3_ACCESS_KEY`/`S3_SECRET_KEY` and an `S3_ENDPOINT` (R2, MinIO), as the
    /// seed did; an endpoint switches S3 to path-style addressing, which those stores need.
    pub async fn open_aws(config: Config) -> Result<App, AppError> {
        Ok(App::open_aws_with_table(config).await?.0)
    }

    /// [`App::open_aws`], also handing back the DynamoDB store itself, for the AWS-only work
    /// of the archiver (the stream's expiry recovery).
    pub async fn open_aws_with_table(config: Config) -> Result<(App, Arc<DynamoStore>), AppError> {
        let aws = config.aws().map_err(|e| AppError::internal_from("AWS configuration", e))?;
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let region = base.region().cloned().unwrap_or_else(|| Region::new(FALLBACK_REGION));

        let mut ddb = aws_sdk_dynamodb::config::Builder::from(&base).region(region.clone());
        if let Some(url) = &aws.dynamodb_endpoint {
            ddb = ddb.endpoint_url(url);
        }
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(ddb.build());

        let objects: Arc<dyn ObjectStore> = Arc::new(S3Store::new(s3_client(&base, &config, region), aws.bucket));
        let hot = Arc::new(DynamoStore::new(
            dynamodb,
            aws.table_name,
            aws.archive_table_name,
            objects.clone(),
            config.data_retention_days,
        ));
        Ok((App::new(config, hot.clone(), objects), hot))
    }
}

fn s3_client(base: &SdkConfig, config: &Config, region: Region) -> aws_sdk_s3::Client {
    let region = config.s3_region.clone().map(Region::new).unwrap_or(region);
    let mut s3 = aws_sdk_s3::config::Builder::from(base).region(region);
    if let Some(url) = &config.s3_endpoint {
        s3 = s3.endpoint_url(url).force_path_style(true);
    }
    if let (Some(key), Some(secret)) = (&config.s3_access_key, &config.s3_secret_key) {
        s3 = s3.credentials_provider(aws_sdk_s3::config::Credentials::new(
            key.clone(),
            secret.expose().to_owned(),
            None,
            None,
            "S3_ACCESS_KEY",
        ));
    }
    aws_sdk_s3::Client::from_conf(s3.build())
}
