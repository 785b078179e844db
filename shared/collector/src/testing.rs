//! The local AWS emulator for tests: moto's server, started by `infra/emulator.sh start`.
//!
//! Each test gets its own tables and bucket with unique names, created from the definitions in
//! `template.yaml` (the deployed stack's own), so tests run in parallel and never share state.
//!
//! When the emulator does not answer: under CI (`CI` set) the test fails loudly; on a
//! developer's machine it is skipped with a message saying how to start it.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use serde_yaml::Value as Yaml;

/// The deployed stack's template: the single source of the table definitions.
const TEMPLATE: &str = include_str!("../../../template.yaml");

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5055";

#[derive(Clone)]
pub struct Emulator {
    pub endpoint: String,
    /// Static test credentials and us-east-1, endpoint set.
    pub sdk: SdkConfig,
}

/// One test's tables and bucket.
#[derive(Clone, Debug)]
pub struct Stack {
    pub table: String,
    pub archive_table: String,
    pub bucket: String,
}

impl Emulator {
    /// The emulator at `EMULATOR_ENDPOINT` (default 127.0.0.1:5055). None when it does not answer
    /// and this is not CI (the caller returns early, having printed why); panics under CI.
    pub async fn connect() -> Option<Emulator> {
        let endpoint = std::env::var("EMULATOR_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
        let addr = endpoint.trim_start_matches("http://").to_owned();
        let reachable = tokio::time::timeout(std::time::Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        if !reachable {
            if std::env::var_os("CI").is_some() {
                panic!("the AWS emulator does not answer at {endpoint}; CI must run `infra/emulator.sh start` first");
            }
            eprintln!(
                "SKIPPED: the AWS emulator does not answer at {endpoint}; run `infra/emulator.sh start` to run this test"
            );
            return None;
        }
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "emulator"))
            .endpoint_url(&endpoint)
            .load()
            .await;
        Some(Emulator { endpoint, sdk })
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(true).build())
    }

    /// Fresh tables and bucket with unique names.
    pub async fn create_stack(&self) -> Stack {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let stack = Stack {
            table: format!("hot-{tag}"),
            archive_table: format!("archive-{tag}"),
            bucket: format!("bucket-{tag}"),
        };
        let template: Yaml = serde_yaml::from_str(TEMPLATE).expect("template.yaml parses");
        let ddb = self.dynamodb();
        for (logical, name) in [("HotTable", &stack.table), ("ArchiveTable", &stack.archive_table)] {
            let props = &template["Resources"][logical]["Properties"];
            create_table(&ddb, props, name).await;
        }
        self.s3().create_bucket().bucket(&stack.bucket).send().await.expect("create bucket");
        stack
    }
}

fn text(v: &Yaml) -> String {
    v.as_str().unwrap_or_else(|| panic!("template: expected a string, got {v:?}")).to_owned()
}

fn key_schema(v: &Yaml) -> Vec<KeySchemaElement> {
    v.as_sequence()
        .expect("KeySchema is a list")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"]))
                .key_type(KeyType::from(text(&k["KeyType"]).as_str()))
                .build()
                .expect("key schema element")
        })
        .collect()
}

/// An index's `Projection`: `ALL`, `KEYS_ONLY`, or `INCLUDE` with its `NonKeyAttributes`, as
/// the template says (moto keeps only those attributes in the index's entries, as DynamoDB does).
fn projection(p: &Yaml) -> Projection {
    let non_key: Option<Vec<String>> = p["NonKeyAttributes"].as_sequence().map(|s| s.iter().map(text).collect());
    Projection::builder()
        .projection_type(ProjectionType::from(text(&p["ProjectionType"]).as_str()))
        .set_non_key_attributes(non_key)
        .build()
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, props: &Yaml, name: &str) {
    let mut req = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(text(&props["BillingMode"]).as_str()))
        .set_key_schema(Some(key_schema(&props["KeySchema"])));
    for a in props["AttributeDefinitions"].as_sequence().expect("AttributeDefinitions") {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"]).as_str()))
                .build()
                .expect("attribute definition"),
        );
    }
    if let Some(gsis) = props["GlobalSecondaryIndexes"].as_sequence() {
        for g in gsis {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(text(&g["IndexName"]))
                    .set_key_schema(Some(key_schema(&g["KeySchema"])))
                    .projection(projection(&g["Projection"]))
                    .build()
                    .expect("global secondary index"),
            );
        }
    }
    if let Some(view) = props["StreamSpecification"]["StreamViewType"].as_str() {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()
                .expect("stream specification"),
        );
    }
    req.send().await.unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
    if let Some(attr) = props["TimeToLiveSpecification"]["AttributeName"].as_str() {
        ddb.update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(attr).enabled(true).build().expect("ttl"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("ttl on {name}: {e:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_template_tables_and_bucket_on_the_emulator() {
        let Some(emu) = Emulator::connect().await else { return };
        let stack = emu.create_stack().await;
        let d = emu.dynamodb().describe_table().table_name(&stack.table).send().await.expect("describe");
        let t = d.table().expect("table");
        let indexes: Vec<(&str, Option<&str>, Vec<&str>)> = t
            .global_secondary_indexes()
            .iter()
            .map(|g| {
                let p = g.projection();
                (
                    g.index_name().unwrap_or_default(),
                    p.and_then(|p| p.projection_type()).map(|t| t.as_str()),
                    p.map(|p| p.non_key_attributes().iter().map(String::as_str).collect()).unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            indexes,
            [
                ("by_platform_v2", Some("KEYS_ONLY"), vec![]),
                ("by_user_v2", Some("INCLUDE"), vec!["id", "platform", "ovf"])
            ]
        );
        assert!(t.stream_specification().is_some_and(|s| s.stream_enabled()));
        emu.s3().head_bucket().bucket(&stack.bucket).send().await.expect("bucket exists");
    }
}
