//! The store conformance suite on the AWS adapters, against the emulator (moto, started by
//! `infra/emulator.sh start`). Each test gets its own tables and bucket from template.yaml.

mod dynamodb {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use aws_sdk_dynamodb::types::AttributeValue;
    use collector::adapters::dynamodb::DynamoStore;
    use collector::adapters::s3::S3Store;
    use std::time::Duration;

    use chrono::Utc;
    use collector::domain::archive::{ArchiveObject, ClassPolicy, StorageClass};
    use collector::domain::records::{FeedbackType, Interaction};
    use collector::domain::types::Id;
    use collector::domain::workflow::StoredWorkflow;
    use collector::ports::conformance::{
        archive_object, at, bare_interaction, commit, example, expected_counters, feedback, interaction, items_of,
        metric, noise, platform, take_lease, user, validation,
    };
    use collector::ports::{
        ArchiveItem, HotDeleted, HotStore, Inserted, ListQuery, ObjectStore, ObjectStream, ObjectWriter, ScanQuery,
        StoreError,
    };
    use collector::testing::{Emulator, Stack};
    use serde_json::json;

    /// Long enough that the conformance fixtures (January 2026) never expire during a test.
    const RETENTION_DAYS: u32 = 36_500;

    struct Env {
        store: DynamoStore,
        emu: Emulator,
        stack: Stack,
        overflow: Arc<S3Store>,
    }

    /// Overflow objects go to the stack's bucket, as deployed.
    async fn env() -> Option<Env> {
        let emu = Emulator::connect().await?;
        let stack = emu.create_stack().await;
        let overflow = Arc::new(S3Store::new(emu.s3(), stack.bucket.clone()));
        let store = DynamoStore::new(
            emu.dynamodb(),
            stack.table.clone(),
            stack.archive_table.clone(),
            overflow.clone(),
            RETENTION_DAYS,
        );
        Some(Env { store, emu, stack, overflow })
    }

    impl Env {
        /// Another store on this env's tables, with its overflow objects in `overflow`.
        fn store_over(&self, overflow: Arc<dyn ObjectStore>) -> DynamoStore {
            DynamoStore::new(
                self.emu.dynamodb(),
                self.stack.table.clone(),
                self.stack.archive_table.clone(),
                overflow,
                RETENTION_DAYS,
            )
        }
    }

    async fn store() -> Option<(DynamoStore, Env)> {
        let env = env().await?;
        Some((env.store.clone(), env))
    }

    collector::hot_store_conformance!(optional: store);

    fn with_workflow(mut rec: Interaction, wf: serde_json::Value, threshold: u64) -> Interaction {
        rec.workflow = Some(StoredWorkflow::pack(&wf, threshold));
        rec
    }

    async fn items_with_prefix(
        env: &Env,
        attr: &str,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        scan_all(env, |scan| {
            scan.filter_expression("begins_with(#a, :p)")
                .expression_attribute_names("#a", attr)
                .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
        })
        .await
    }

    /// Every item a Scan of the table returns, page after page; `shape` adds its filter or index.
    async fn scan_all(
        env: &Env,
        shape: impl Fn(
            aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = shape(env.emu.dynamodb().scan().table_name(&env.stack.table))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return out,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_too_big_for_an_item_overflows_and_is_deleted_with_it() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let big = json!({"name": "huge", "nodes": [], "blob": noise(1024 * 1024, 7)});
        let rec = with_workflow(interaction("alice", "n8n", at(0)), big.clone(), 10 * 1024);
        let wf = rec.workflow.as_ref().expect("workflow");
        assert!(wf.compressed && wf.bytes.len() > 400 * 1024, "still too big compressed");
        let small = interaction("alice", "n8n", at(1));
        assert_eq!(store.insert_interaction(&rec).await.expect("insert"), Inserted::New);
        assert_eq!(store.insert_interaction(&small).await.expect("insert"), Inserted::New);
        let objects = env.overflow.list("overflow/").await.expect("list");
        assert_eq!(objects.len(), 1, "one overflow object");
        assert!(objects[0].starts_with(&format!("overflow/{}/", rec.id)));

        // Replays answer from the item alone; a clash does not touch the stored payload.
        let again = store.insert_interaction(&rec).await.expect("insert");
        assert_eq!(again, Inserted::Existing { content_hash: rec.content_hash.clone(), receipt: rec.receipt() });
        assert_eq!(env.overflow.list("overflow/").await.expect("list"), objects);

        let fb = feedback(&rec, FeedbackType::ThumbsUp, at(5));
        store.add_feedback(&fb).await.expect("feedback");
        let linked = store.get_linked(rec.id).await.expect("get").expect("hot");
        assert_eq!(linked.interaction.workflow, rec.workflow);
        assert_eq!(linked.interaction.workflow.as_ref().expect("wf").unpack().expect("unpack"), big);
        assert_eq!(linked.feedback, vec![fb]);
        let listed = store
            .list_interactions(&ListQuery { user_id: Some(user("alice")), platform: None, before: None, limit: 10 })
            .await
            .expect("list");
        assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![small.id, rec.id]);
        assert_eq!(listed[1], linked.interaction);
        let scan = ScanQuery { platform: platform("n8n"), after: None, since: None, until: None, limit: 10 };
        let scanned = store.scan_platform(&scan).await.expect("scan");
        assert_eq!(scanned[0], linked);
        let by_user = store.scan_user(&user("alice"), None, 10).await.expect("scan user");
        assert_eq!(by_user[0], linked);

        let deleted = store.delete_interaction(rec.id).await.expect("delete");
        assert_eq!((deleted.interactions, deleted.feedback), (1, 1));
        assert!(env.overflow.list("overflow/").await.expect("list").is_empty(), "overflow object removed");
        let counters = store.counters().await.expect("counters");
        assert_eq!(counters, expected_counters(&[(&small, false)], &[]));
    }

    /// Every entry of an index, read with a Scan of the index (as DynamoDB stores it).
    async fn index_entries(env: &Env, index: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        scan_all(env, |scan| scan.index_name(index)).await
    }

    fn attr_names(item: &std::collections::HashMap<String, AttributeValue>) -> Vec<&str> {
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn sk2(item: &std::collections::HashMap<String, AttributeValue>) -> &str {
        match item.get("gsi2sk") {
            Some(AttributeValue::S(v)) => v,
            _ => "",
        }
    }

    /// The indexes hold keys and listing fields only (template.yaml's projections, which the
    /// emulator applies as DynamoDB does); every read through them still answers whole records,
    /// read from the table: hot records with every field, links, compressed and overflowed
    /// workflows, unlinked validations, archived entries; the delete-all reads ids only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn index_entries_hold_only_their_projection_and_reads_answer_whole_records() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let full = interaction("alice", "n8n", at(0));
        let zipped = collector::ports::conformance::compressed_interaction("alice", "make", at(1));
        let big = json!({"name": "huge", "nodes": [], "blob": noise(1024 * 1024, 11)});
        let overflowed = with_workflow(interaction("alice", "n8n", at(2)), big, 10 * 1024);
        let bare = bare_interaction("alice", "n8n", at(3));
        let archived = interaction("alice", "n8n", at(4));
        let other = interaction("bob", "n8n", at(5));
        for rec in [&full, &zipped, &overflowed, &bare, &archived, &other] {
            assert_eq!(store.insert_interaction(rec).await.expect("insert"), Inserted::New);
        }
        store.add_feedback(&feedback(&full, FeedbackType::ThumbsUp, at(10))).await.expect("feedback");
        store.add_validation(&validation("alice", "n8n", Some(full.id), 90, at(11))).await.expect("linked");
        let unlinked = validation("alice", "n8n", None, 40, at(12));
        let mut unlinked_big = validation("alice", "make", None, 70, at(13));
        unlinked_big.workflow = json!({"name": "huge", "nodes": [], "blob": noise(450 * 1024, 12)});
        store.add_validation(&unlinked).await.expect("unlinked");
        store.add_validation(&unlinked_big).await.expect("unlinked, overflowed");
        let lease = take_lease(store).await;
        let obj = archive_object("n8n", day5(), "run-1", 1, at(100));
        assert!(commit(store, &lease, &obj, &items_of(store, &[archived.id]).await).await.is_empty());
        assert_eq!(env.overflow.list("overflow/").await.expect("list").len(), 2, "two overflowed items");

        // The platform index: keys only, hot records only (a stub leaves it).
        let by_platform = index_entries(&env, "by_platform_v2").await;
        assert_eq!(by_platform.len(), 5);
        for e in &by_platform {
            assert_eq!(attr_names(e), ["gsi1pk", "gsi1sk", "pk", "sk"]);
        }
        // The user index: keys, id and platform, and an overflow key where there is one.
        let by_user = index_entries(&env, "by_user_v2").await;
        assert_eq!(by_user.len(), 8, "6 records (one a stub), 2 unlinked validations");
        for e in &by_user {
            let names = attr_names(e);
            let want: &[&str] = match (sk2(e).split_at(2).0, e.contains_key("ovf")) {
                ("I#" | "A#", false) => &["gsi2pk", "gsi2sk", "id", "pk", "platform", "sk"],
                ("I#", true) => &["gsi2pk", "gsi2sk", "id", "ovf", "pk", "platform", "sk"],
                ("V#", false) => &["gsi2pk", "gsi2sk", "pk", "sk"],
                ("V#", true) => &["gsi2pk", "gsi2sk", "ovf", "pk", "sk"],
                other => panic!("unexpected entry {other:?}: {names:?}"),
            };
            assert_eq!(names, want, "{}", sk2(e));
        }
        assert_eq!(by_user.iter().filter(|e| e.contains_key("ovf")).count(), 2);

        // Reads through the indexes answer what the table holds.
        let linked = |id| async move { store.get_linked(id).await.expect("get").expect("hot") };
        let hot = [&full, &zipped, &overflowed, &bare];
        let mut whole = Vec::new();
        for rec in hot {
            whole.push(linked(rec.id).await);
        }
        assert_eq!(whole[0].feedback.len() + whole[0].validations.len(), 2);
        let newest_first: Vec<Interaction> = whole.iter().rev().map(|l| l.interaction.clone()).collect();
        let mine = ListQuery { user_id: Some(user("alice")), platform: None, before: None, limit: 10 };
        assert_eq!(store.list_interactions(&mine).await.expect("list"), newest_first);
        let mine_n8n = ListQuery { platform: Some(platform("n8n")), ..mine.clone() };
        let n8n: Vec<Interaction> = newest_first.iter().filter(|r| r.platform.as_str() == "n8n").cloned().collect();
        assert_eq!(store.list_interactions(&mine_n8n).await.expect("list"), n8n);
        let all_n8n = ListQuery { user_id: None, ..mine_n8n };
        let listed = store.list_interactions(&all_n8n).await.expect("list");
        assert_eq!(listed.len(), 4, "alice's three and bob's one");
        assert_eq!(listed[1..], n8n[..]);
        assert_eq!(store.scan_user(&user("alice"), None, 10).await.expect("scan user"), whole);
        let scan = ScanQuery { platform: platform("n8n"), after: None, since: None, until: None, limit: 10 };
        let scanned = store.scan_platform(&scan).await.expect("scan");
        let alices: Vec<_> = whole.iter().filter(|l| l.interaction.platform.as_str() == "n8n").cloned().collect();
        assert_eq!(scanned[..3], alices[..]);
        assert_eq!(collector::ports::conformance::all_unlinked(store, "alice").await, vec![unlinked, unlinked_big]);
        let entries = store.archived_entries_of_user(&user("alice")).await.expect("archived");
        assert_eq!(entries.iter().map(|e| e.interaction_id).collect::<Vec<_>>(), vec![archived.id]);

        // The delete-all: every hot record and unlinked validation of alice, their overflow
        // objects with them; the archived stub stays (the app deletes archived records itself).
        let deleted = store.delete_user(&user("alice")).await.expect("delete user");
        assert_eq!((deleted.interactions, deleted.feedback, deleted.validation_logs), (4, 1, 3));
        assert!(env.overflow.list("overflow/").await.expect("list").is_empty(), "overflow objects removed");
        assert!(store.list_interactions(&mine).await.expect("list").is_empty());
        assert_eq!(store.archived_entries_of_user(&user("alice")).await.expect("archived").len(), 1);
        assert_eq!(index_entries(&env, "by_platform_v2").await.len(), 1, "bob's record");
    }

    /// Curated examples and training metrics over DynamoDB's 400 KB item limit use the same
    /// overflow objects: listed back whole, counted, and the example's object goes with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn curated_examples_and_metrics_too_big_for_an_item_overflow() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let mut big = example("n8n", at(0));
        big.description = Some(noise(450 * 1024, 3));
        let small = example("n8n", at(1));
        store.insert_example(&big).await.expect("insert big");
        store.insert_example(&small).await.expect("insert small");
        let objects = env.overflow.list("overflow/").await.expect("list");
        assert_eq!(objects.len(), 1, "one overflow object");
        assert!(objects[0].starts_with(&format!("overflow/{}/", big.example_id)));
        assert!(matches!(store.insert_example(&big).await, Err(StoreError::Conflict(_))));
        assert_eq!(env.overflow.list("overflow/").await.expect("list"), objects, "a clash leaves no object");

        store.increment_example_usage(&[big.example_id]).await.expect("usage");
        let listed = store.list_examples(Some(&platform("n8n"))).await.expect("list");
        let mut used = big.clone();
        used.usage_count = 1;
        assert_eq!(listed, vec![small.clone(), used]);
        assert_eq!(store.counters().await.expect("counters")[&platform("n8n")].curated_examples, 2);
        assert!(store.delete_example(big.example_id).await.expect("delete"));
        assert!(env.overflow.list("overflow/").await.expect("list").is_empty(), "overflow object removed");
        assert_eq!(store.list_examples(None).await.expect("list"), vec![small]);
        assert_eq!(store.counters().await.expect("counters")[&platform("n8n")].curated_examples, 1);

        let mut m = metric("n8n", at(2));
        m.notes = Some(noise(450 * 1024, 4));
        store.insert_metric(&m).await.expect("insert metric");
        assert_eq!(env.overflow.list("overflow/").await.expect("list").len(), 1);
        assert_eq!(store.list_metrics(None).await.expect("metrics"), vec![m]);
    }

    /// Every write that spills a payload claims its object in its own transaction: a maintenance
    /// that takes every unclaimed note as a dead writer's (zero grace) keeps all of them, and
    /// every record reads back whole. Without the claim it would erase them under their items.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overflow_objects_of_stored_items_survive_the_maintenance() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let big = |seed| json!({"name": "huge", "nodes": [], "blob": noise(1024 * 1024, seed)});
        let rec = with_workflow(interaction("alice", "n8n", at(0)), big(21), 10 * 1024);
        store.insert_interaction(&rec).await.expect("insert");
        let mut fb = feedback(&rec, FeedbackType::Edit, at(1));
        fb.corrected_workflow = Some(json!({"name": "fixed", "nodes": [], "blob": noise(450 * 1024, 22)}));
        store.add_feedback(&fb).await.expect("feedback");
        let mut linked = validation("alice", "n8n", Some(rec.id), 80, at(2));
        linked.workflow = json!({"blob": noise(450 * 1024, 23)});
        store.add_validation(&linked).await.expect("linked validation");
        let mut unlinked = validation("alice", "n8n", None, 80, at(3));
        unlinked.workflow = json!({"blob": noise(450 * 1024, 24)});
        store.add_validation(&unlinked).await.expect("unlinked validation");
        let mut ex = example("n8n", at(4));
        ex.description = Some(noise(450 * 1024, 25));
        store.insert_example(&ex).await.expect("example");
        let mut m = metric("n8n", at(5));
        m.notes = Some(noise(450 * 1024, 26));
        store.insert_metric(&m).await.expect("metric");
        let objects = env.overflow.list("overflow/").await.expect("list");
        assert_eq!(objects.len(), 6, "each write spilled");

        let impatient = store.clone().with_overflow_grace(Duration::ZERO);
        impatient.finish_payload_erasures().await.expect("maintenance");
        assert_eq!(env.overflow.list("overflow/").await.expect("list"), objects, "every object kept");
        assert!(items_with_prefix(&env, "pk", "OVFDEL").await.is_empty(), "the claimed notes are dropped");
        let got = store.get_linked(rec.id).await.expect("get").expect("hot");
        assert_eq!(got.interaction.workflow, rec.workflow);
        assert_eq!(got.feedback, vec![fb]);
        assert_eq!(got.validations, vec![linked]);
        let alone = store.unlinked_validations(&user("alice"), None, 10).await.expect("unlinked");
        assert_eq!(alone, vec![unlinked]);
        assert_eq!(store.list_examples(None).await.expect("examples"), vec![ex]);
        assert_eq!(store.list_metrics(None).await.expect("metrics"), vec![m]);
    }

    /// A user's delete removes their records several at a time (each its own partition and
    /// transaction, their counter updates on shared shards): every record and link goes, each
    /// counted once, and the counters equal a recount of what is left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_users_many_records_are_deleted_concurrently_and_counted_once() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let mut alice = Vec::new();
        for i in 0..48 {
            let rec = interaction("alice", if i % 2 == 0 { "n8n" } else { "make" }, at(i));
            store.insert_interaction(&rec).await.expect("insert");
            if i % 3 == 0 {
                store.add_feedback(&feedback(&rec, FeedbackType::ThumbsUp, at(i + 1))).await.expect("feedback");
            }
            alice.push(rec);
        }
        let bob = interaction("bob", "n8n", at(500));
        store.insert_interaction(&bob).await.expect("insert");
        let started = std::time::Instant::now();
        let deleted = store.delete_user(&user("alice")).await.expect("delete user");
        println!("deleted 48 records in {:?}", started.elapsed());
        assert_eq!((deleted.interactions, deleted.feedback), (48, 16));
        for rec in &alice {
            assert!(store.get_linked(rec.id).await.expect("get").is_none());
        }
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&[(&bob, false)], &[]));
        assert_eq!(store.delete_user(&user("alice")).await.expect("again"), HotDeleted::default());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_platforms_records_spread_over_shards_and_list_merges_them() {
        let Some(env) = env().await else { return };
        let recs: Vec<Interaction> = (0..40).map(|i| interaction("alice", "n8n", at(i))).collect();
        for rec in &recs {
            env.store.insert_interaction(rec).await.expect("insert");
        }
        let items = items_with_prefix(&env, "gsi1pk", "P#n8n#").await;
        let shards: HashSet<String> = items
            .iter()
            .filter_map(|i| match i.get("gsi1pk") {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(items.len(), 40);
        assert!(shards.len() >= 8, "40 records on {} platform-index partitions", shards.len());
        let counter_shards = items_with_prefix(&env, "pk", "C#n8n#").await.len();
        assert!(counter_shards >= 8, "counter writes on {counter_shards} shards");
        // Newest first across shards, two records per page.
        let mut got = Vec::new();
        let mut before = None;
        loop {
            let q = ListQuery { user_id: None, platform: Some(platform("n8n")), before, limit: 3 };
            let page = env.store.list_interactions(&q).await.expect("list");
            let Some(last) = page.last() else { break };
            before = Some(collector::ports::Cursor { created_at: last.created_at, id: last.id });
            got.extend(page.iter().map(|r| r.id));
        }
        let want: Vec<_> = recs.iter().rev().map(|r| r.id).collect();
        assert_eq!(got, want);
    }

    /// DynamoDB returns at most 1 MB per Query page: a record's 1.25 MB of feedback needs several
    /// pages of its partition; a user's 3 MB of records are read whole through the user index
    /// (whose entries are small: the records come from the table, by key).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_follow_last_evaluated_key_past_one_megabyte() {
        let Some(env) = env().await else { return };
        let recs: Vec<Interaction> = (0..12)
            .map(|i| {
                let wf = json!({"name": "padded", "nodes": [], "pad": noise(250 * 1024, i as u64 + 1)});
                with_workflow(interaction("alice", if i % 2 == 0 { "n8n" } else { "make" }, at(i)), wf, u64::MAX)
            })
            .collect();
        for rec in &recs {
            assert_eq!(env.store.insert_interaction(rec).await.expect("insert"), Inserted::New);
        }
        let mut fbs = Vec::new();
        for i in 0..5 {
            let mut fb = feedback(&recs[0], FeedbackType::ThumbsUp, at(20 + i));
            fb.comment = Some(noise(250 * 1024, 100 + i as u64));
            env.store.add_feedback(&fb).await.expect("feedback");
            fbs.push(fb);
        }
        assert!(env.overflow.list("").await.expect("list").is_empty(), "each record fits in an item");
        let page = env
            .emu
            .dynamodb()
            .query()
            .table_name(&env.stack.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("I#{}", recs[0].id)))
            .send()
            .await
            .expect("query");
        assert!(page.last_evaluated_key.is_some_and(|k| !k.is_empty()), "the first page stops at 1 MB");
        assert_eq!(env.store.get_linked(recs[0].id).await.expect("get").expect("hot").feedback, fbs);
        let all = env.store.scan_user(&user("alice"), None, 100).await.expect("scan user");
        assert_eq!(
            all.iter().map(|l| l.interaction.id).collect::<Vec<_>>(),
            recs.iter().map(|r| r.id).collect::<Vec<_>>()
        );
        assert_eq!(all[11].interaction, recs[11]);
        assert_eq!(all[0].feedback, fbs);
        let n8n = env
            .store
            .list_interactions(&ListQuery {
                user_id: Some(user("alice")),
                platform: Some(platform("n8n")),
                before: None,
                limit: 100,
            })
            .await
            .expect("list");
        assert_eq!(n8n.len(), 6);
        let deleted = env.store.delete_user(&user("alice")).await.expect("delete user");
        assert_eq!(deleted.interactions, 12);
        assert!(env.store.counters().await.expect("counters").is_empty());
    }

    /// Several Lambdas (a store each, with its own client) add platforms at once: the count item
    /// holds the limit, and it says how many `PLAT` items there are.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn platform_adds_from_several_functions_hold_the_limit() {
        let Some(env) = env().await else { return };
        let stores: Vec<Arc<dyn HotStore>> =
            (0..3).map(|_| Arc::new(env.store_over(env.overflow.clone())) as Arc<dyn HotStore>).collect();
        collector::ports::conformance::race_platform_adds(stores).await;
        let count = env
            .emu
            .dynamodb()
            .get_item()
            .table_name(&env.stack.table)
            .key("pk", AttributeValue::S("PLAT#N".into()))
            .key("sk", AttributeValue::S("N".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get count");
        let n = count.item().and_then(|i| i.get("n")).and_then(|v| v.as_n().ok()).cloned();
        assert_eq!(n.as_deref(), Some("5"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counters_add_up_after_concurrent_inserts_on_many_shards() {
        let Some(env) = env().await else { return };
        let store: Arc<dyn HotStore> = Arc::new(env.store.clone());
        let recs: Vec<Interaction> = (0..48)
            .map(|i| {
                interaction(if i % 2 == 0 { "alice" } else { "bob" }, if i % 3 == 0 { "make" } else { "n8n" }, at(i))
            })
            .collect();
        let tasks: Vec<_> = recs
            .iter()
            .cloned()
            .map(|rec| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.insert_interaction(&rec).await.expect("insert");
                    store.add_feedback(&feedback(&rec, FeedbackType::ThumbsUp, at(1000))).await.expect("feedback");
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        assert!(items_with_prefix(&env, "pk", "C#n8n#").await.len() >= 8);
        assert!(items_with_prefix(&env, "pk", "C#make#").await.len() >= 4);
        let mut now = Vec::new();
        for rec in &recs {
            now.push(store.get_linked(rec.id).await.expect("get").expect("hot").interaction);
        }
        let pairs: Vec<(&Interaction, bool)> = now.iter().map(|r| (r, false)).collect();
        let counters = store.counters().await.expect("counters");
        assert_eq!(counters, expected_counters(&pairs, &[]));
        assert_eq!(counters[&platform("n8n")].positive_feedback, 32);
        // A second process (empty platform cache) reads the same counters.
        let fresh = env.store_over(env.overflow.clone());
        assert_eq!(fresh.counters().await.expect("counters"), counters);
    }

    /// A stand-in DynamoDB that answers by operation: moto cannot throttle, so this is the one
    /// place a fake server is used. It speaks just enough HTTP/1.1 for the SDK.
    async fn throttling_endpoint() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then as much body as Content-Length says.
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(head_end) = text.find("\r\n\r\n") else { continue };
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let (status, body) = if text.contains("DynamoDB_20120810.PutItem") {
                        ("200 OK", "{}".to_owned())
                    } else if text.contains("DynamoDB_20120810.TransactWriteItems") {
                        ("400 Bad Request", r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity"},{"Code":"None"}]}"#.to_owned())
                    } else {
                        ("400 Bad Request", r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#.to_owned())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn throttling_past_the_sdk_retries_is_throttled_with_retry_after() {
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

        let endpoint = throttling_endpoint().await;
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build();
        let dir = tempfile::tempdir().expect("temp dir");
        let overflow = Arc::new(collector::adapters::fs::FolderStore::new(dir.path().to_path_buf()));
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "hot".into(),
            "archive".into(),
            overflow,
            RETENTION_DAYS,
        );
        // A Query answered ProvisionedThroughputExceeded on every attempt.
        assert!(matches!(store.counters().await, Err(StoreError::Throttled { retry_after }) if !retry_after.is_zero()));
        // A transaction cancelled with a throttling reason.
        let rec = interaction("alice", "n8n", at(0));
        assert!(matches!(store.insert_interaction(&rec).await, Err(StoreError::Throttled { .. })));
    }

    fn day5() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date")
    }

    fn pending_row(obj: &ArchiveObject) -> ArchiveObject {
        ArchiveObject::pending(obj.platform.clone(), obj.date, obj.slot.clone(), &obj.run_id, obj.created_at)
    }

    /// Items of ids that were never stored (or are gone): what a commit tombstones.
    fn gone_items(n: usize) -> Vec<ArchiveItem> {
        (0..n).map(|_| ArchiveItem { id: Id::new(), links: 0 }).collect()
    }

    /// commit_archive is transactions of many records on DynamoDB, then the row's flip: a rerun of
    /// a finished commit (the caller died before it saw the answer) moves nothing and counts the
    /// object once; another object under the same slot is a conflict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rerun_commit_archive_counts_the_object_once() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let recs: Vec<Interaction> = (0..3).map(|i| interaction("alice", "n8n", at(i))).collect();
        for rec in &recs {
            store.insert_interaction(rec).await.expect("insert");
        }
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let items = items_of(store, &ids).await;
        let lease = take_lease(store).await;
        let obj = archive_object("n8n", day5(), "run-1", 3, at(100));
        assert!(commit(store, &lease, &obj, &items).await.is_empty());
        assert!(store.commit_archive(&lease, &obj, &items).await.expect("rerun").is_empty());
        let pairs: Vec<(&Interaction, bool)> = recs.iter().map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
        assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj.clone()]);
        for rec in &recs {
            let e = store.archived_entry(rec.id).await.expect("entry").expect("archived");
            assert_eq!(e.object_key, obj.slot);
        }
        // Another object under the same slot is a conflict, not a resume.
        let other = ArchiveObject { record_count: 7, ..obj.clone() };
        assert!(matches!(store.commit_archive(&lease, &other, &[]).await, Err(StoreError::Conflict(_))));
        let other_run = ArchiveObject { run_id: "run-2".into(), ..pending_row(&obj) };
        assert!(matches!(store.begin_archive(&lease, &other_run).await, Err(StoreError::Conflict(_))));
        // A commit without its pending row is refused.
        let unknown = archive_object("n8n", day5(), "run-unknown", 0, at(100));
        assert!(matches!(store.commit_archive(&lease, &unknown, &[]).await, Err(StoreError::NotFound)));
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
    }

    /// A commit of many records goes in transactions of many records each (DynamoDB holds 100
    /// items in one): every record stubbed, no link left, counters equal a recount, the object
    /// counted once, and a rerun moves nothing. Prints the records per second the commit
    /// reached (`--nocapture`; on moto it measures mostly moto, which copies the whole table
    /// for every item of a transaction). Deletes and the compaction after it work as before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_of_many_records_batches_them_and_counts_once() {
        use futures::{StreamExt, TryStreamExt};

        const N: usize = 250;
        let Some(env) = env().await else { return };
        let store = &env.store;
        let recs: Vec<Interaction> =
            (0..N).map(|i| bare_interaction(if i % 2 == 0 { "alice" } else { "bob" }, "n8n", at(i as i64))).collect();
        futures::stream::iter(recs.iter().map(|rec| store.insert_interaction(rec)))
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await
            .expect("insert");
        for rec in recs.iter().step_by(10) {
            store.add_feedback(&feedback(rec, FeedbackType::ThumbsUp, at(1000))).await.expect("feedback");
        }
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let items = items_of(store, &ids).await;
        let now: Vec<Interaction> = futures::stream::iter(ids.iter().map(|id| store.get_linked(*id)))
            .buffered(8)
            .map_ok(|l| l.expect("hot").interaction)
            .try_collect()
            .await
            .expect("get");
        let lease = take_lease(store).await;
        let obj = archive_object("n8n", day5(), "run-many", N as i64, at(5000));
        store.begin_archive(&lease, &pending_row(&obj)).await.expect("begin");

        let started = std::time::Instant::now();
        let gone = store.commit_archive(&lease, &obj, &items).await.expect("commit");
        let secs = started.elapsed().as_secs_f64();
        eprintln!("dynamodb commit_archive: {N} records in {secs:.2} s = {:.0} records/s", N as f64 / secs);
        assert!(gone.is_empty(), "nothing changed meanwhile");

        let pairs: Vec<(&Interaction, bool)> = now.iter().map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
        let entries: Vec<_> = futures::stream::iter(ids.iter().map(|id| store.archived_entry(*id)))
            .buffered(8)
            .try_collect()
            .await
            .expect("entries");
        for e in &entries {
            assert_eq!(e.as_ref().map(|e| e.object_key.as_str()), Some(obj.slot.as_str()), "every record stubbed");
        }
        let partitions = items_with_prefix(&env, "pk", "I#").await;
        assert_eq!(partitions.len(), N, "only the stubs are left, no link: {}", partitions.len());
        assert!(partitions.iter().all(|i| i.get("t") == Some(&AttributeValue::S("S".into()))));
        assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj.clone()]);

        assert!(store.commit_archive(&lease, &obj, &items).await.expect("rerun").is_empty());
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]), "counted once");

        // Deletes, then the compaction that erases their lines.
        let deleted = [ids[0], ids[7], ids[100]];
        for id in deleted {
            assert!(store.delete_archived(id).await.expect("delete").is_some());
        }
        assert_eq!(store.tombstones(&obj.slot).await.expect("tombstones"), deleted.iter().copied().collect());
        let compacted = ArchiveObject {
            object_key: format!("{}.compacted", obj.object_key),
            record_count: N as i64 - 3,
            compressed_bytes: obj.compressed_bytes - 2700,
            ..obj.clone()
        };
        store.apply_compaction(&lease, &obj, Some(&compacted), &deleted).await.expect("compaction");
        assert!(store.tombstoned_slots().await.expect("slots").is_empty());
        let kept: Vec<(&Interaction, bool)> =
            now.iter().filter(|r| !deleted.contains(&r.id)).map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&kept, &[&compacted]));
        assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![compacted]);
    }

    /// A record with more links than one transaction holds is archived with the records around
    /// it: it goes in a transaction of its own with its first links, the rest are deleted right
    /// after; the records before and after it go in transactions of their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_with_more_links_than_a_transaction_holds_is_archived() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let recs: Vec<Interaction> = (0..3).map(|i| bare_interaction("alice", "n8n", at(i))).collect();
        for rec in &recs {
            store.insert_interaction(rec).await.expect("insert");
        }
        store.add_feedback(&feedback(&recs[0], FeedbackType::ThumbsUp, at(10))).await.expect("feedback");
        for i in 0..120 {
            store.add_feedback(&feedback(&recs[1], FeedbackType::ThumbsDown, at(20 + i))).await.expect("feedback");
        }
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let items = items_of(store, &ids).await;
        assert_eq!(items.iter().map(|i| i.links).collect::<Vec<_>>(), vec![1, 120, 0]);
        let mut now = Vec::new();
        for id in &ids {
            now.push(store.get_linked(*id).await.expect("get").expect("hot").interaction);
        }
        let lease = take_lease(store).await;
        let obj = archive_object("n8n", day5(), "run-links", 3, at(500));
        assert!(commit(store, &lease, &obj, &items).await.is_empty());
        for id in &ids {
            let e = store.archived_entry(*id).await.expect("entry").expect("archived");
            assert_eq!(e.object_key, obj.slot);
        }
        let partitions = items_with_prefix(&env, "pk", "I#").await;
        assert_eq!(partitions.len(), 3, "no link is left");
        let pairs: Vec<(&Interaction, bool)> = now.iter().map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
    }

    /// A delete of a record with more links than one transaction holds: the links beyond it go
    /// first, the head last (a delete cut in between leaves the head, so a retry finishes it),
    /// and the answer counts every link.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_with_more_links_than_a_transaction_holds_is_deleted_whole() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let rec = bare_interaction("alice", "n8n", at(0));
        store.insert_interaction(&rec).await.expect("insert");
        for i in 0..120 {
            store.add_feedback(&feedback(&rec, FeedbackType::ThumbsDown, at(20 + i))).await.expect("feedback");
        }
        let deleted = store.delete_interaction(rec.id).await.expect("delete");
        assert_eq!(deleted, HotDeleted { interactions: 1, feedback: 120, validation_logs: 0 });
        assert!(items_with_prefix(&env, "pk", "I#").await.is_empty(), "no link is left");
        assert!(store.counters().await.expect("counters").values().all(|c| c.total == 0 && c.negative_feedback == 0));
        assert_eq!(store.insert_interaction(&rec).await.expect("insert"), Inserted::Erased);
    }

    /// An overflow store with faults to switch on: reads fail while `broken` is set, deletes
    /// while `failing_deletes` is (S3 throttling them). A commit that meets a record whose
    /// payload is in overflow while reads are broken sends the records read before it and stops
    /// there, before that record's transaction: a run cut between records, without process-wide
    /// failpoints.
    struct FaultyOverflow {
        inner: Arc<S3Store>,
        broken: AtomicBool,
        failing_deletes: AtomicBool,
    }

    impl FaultyOverflow {
        fn over(inner: Arc<S3Store>) -> Arc<FaultyOverflow> {
            Arc::new(FaultyOverflow { inner, broken: AtomicBool::new(false), failing_deletes: AtomicBool::new(false) })
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for FaultyOverflow {
        async fn put(&self, key: &str, bytes: Vec<u8>, class: StorageClass) -> Result<(), StoreError> {
            self.inner.put(key, bytes, class).await
        }
        async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("cut".into()));
            }
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            if self.failing_deletes.load(Ordering::SeqCst) {
                return Err(StoreError::Throttled { retry_after: Duration::from_secs(1) });
            }
            self.inner.delete(key).await
        }
        async fn writer(&self, key: &str, class: ClassPolicy) -> Result<Box<dyn ObjectWriter>, StoreError> {
            self.inner.writer(key, class).await
        }
        async fn reader(&self, key: &str) -> Result<ObjectStream, StoreError> {
            self.inner.reader(key).await
        }
        async fn presigned_get(&self, key: &str, expires: Duration) -> Result<Option<String>, StoreError> {
            self.inner.presigned_get(key, expires).await
        }
        async fn remove_abandoned_writes(&self, prefix: &str, older_than: Duration) -> Result<u64, StoreError> {
            self.inner.remove_abandoned_writes(prefix, older_than).await
        }
    }

    /// A deleted record's overflow object that S3 would not delete (a throttle) is not left for
    /// good: the delete notes it and the archive run's maintenance erases it. A note whose delete
    /// never went through (no erasure marker) erases nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overflow_objects_a_delete_could_not_remove_are_erased_later() {
        let Some(env) = env().await else { return };
        let overflow = FaultyOverflow::over(env.overflow.clone());
        let store = env.store_over(overflow.clone());
        let big = |seed| json!({"name": "huge", "nodes": [], "blob": noise(1024 * 1024, seed)});
        let gone = with_workflow(interaction("alice", "n8n", at(0)), big(13), 10 * 1024);
        let kept = with_workflow(interaction("bob", "n8n", at(1)), big(14), 10 * 1024);
        for rec in [&gone, &kept] {
            assert_eq!(store.insert_interaction(rec).await.expect("insert"), Inserted::New);
        }
        let objects_of = |id: Id| {
            let overflow = env.overflow.clone();
            async move { overflow.list(&format!("overflow/{id}/")).await.expect("list") }
        };
        assert_eq!(objects_of(gone.id).await.len(), 1);

        overflow.failing_deletes.store(true, Ordering::SeqCst);
        let deleted = store.delete_interaction(gone.id).await.expect("the delete answers");
        assert_eq!(deleted.interactions, 1);
        assert_eq!(objects_of(gone.id).await.len(), 1, "left behind while S3 refuses deletes");
        overflow.failing_deletes.store(false, Ordering::SeqCst);
        // A note of a delete that did not go through: the record's payload must stay.
        env.emu
            .dynamodb()
            .put_item()
            .table_name(&env.stack.table)
            .item("pk", AttributeValue::S("OVFDEL".into()))
            .item("sk", AttributeValue::S(format!("P#{}", kept.id)))
            .send()
            .await
            .expect("put a note");

        assert!(store.finish_payload_erasures().await.expect("finish") >= 1);
        assert!(objects_of(gone.id).await.is_empty(), "erased by the maintenance");
        assert_eq!(objects_of(kept.id).await.len(), 1, "a live record's payload stays");
        let notes = items_with_prefix(&env, "pk", "OVFDEL").await;
        assert_eq!(notes.len(), 1, "only the note of the delete that did not happen is left");
        let kept_now = store.get_linked(kept.id).await.expect("get").expect("hot");
        assert_eq!(kept_now.interaction.workflow, kept.workflow);
    }

    /// A commit cut between records leaves the row pending and the object uncounted, with some
    /// records stubbed and some hot; the rerun stubs the rest and counts the object once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_cut_between_records_resumes_on_rerun() {
        let Some(env) = env().await else { return };
        let overflow = FaultyOverflow::over(env.overflow.clone());
        let store = env.store_over(overflow.clone());
        let big = json!({"name": "huge", "nodes": [], "blob": noise(1024 * 1024, 11)});
        let recs = vec![
            interaction("alice", "n8n", at(0)),
            with_workflow(interaction("alice", "n8n", at(1)), big, 10 * 1024),
            interaction("alice", "n8n", at(2)),
        ];
        for rec in &recs {
            store.insert_interaction(rec).await.expect("insert");
        }
        assert_eq!(env.overflow.list("overflow/").await.expect("list").len(), 1, "the second one overflows");
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let items = items_of(&store, &ids).await;
        let lease = take_lease(&store).await;
        let obj = archive_object("n8n", day5(), "run-cut", 3, at(100));
        store.begin_archive(&lease, &pending_row(&obj)).await.expect("begin");

        overflow.broken.store(true, Ordering::SeqCst);
        assert!(matches!(store.commit_archive(&lease, &obj, &items).await, Err(StoreError::Unavailable(_))));
        overflow.broken.store(false, Ordering::SeqCst);
        let row = store.archive_object(&obj.platform, obj.date, &obj.slot).await.expect("row").expect("row");
        assert_eq!(row, pending_row(&obj), "still pending");
        assert!(store.archived_entry(recs[0].id).await.expect("entry").is_some(), "the first one went");
        assert!(store.get_linked(recs[1].id).await.expect("get").is_some(), "the cut one is still hot");
        // The third one ran alongside: done or not, it is in exactly one place.
        let third = store.archived_entry(recs[2].id).await.expect("entry").is_some();
        assert_eq!(store.get_linked(recs[2].id).await.expect("get").is_some(), !third);
        let partial = [(&recs[0], true), (&recs[1], false), (&recs[2], third)];
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&partial, &[]), "no object yet");

        assert!(store.commit_archive(&lease, &obj, &items).await.expect("rerun").is_empty());
        assert!(store.commit_archive(&lease, &obj, &items).await.expect("rerun").is_empty());
        let pairs: Vec<(&Interaction, bool)> = recs.iter().map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
        assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj]);
        assert!(env.overflow.list("overflow/").await.expect("list").is_empty(), "its overflow object went");
    }

    /// An overflow store that, on the first read of an interaction's payload, lets another
    /// writer change that interaction (`feedback`: it gains one; `delete`: it goes) right after
    /// the commit read its partition and before the commit's transaction.
    struct RacingReads {
        inner: Arc<S3Store>,
        other: DynamoStore,
        feedback: Interaction,
        delete: Id,
        done: std::sync::Mutex<HashSet<Id>>,
    }

    #[async_trait::async_trait]
    impl ObjectStore for RacingReads {
        async fn put(&self, key: &str, bytes: Vec<u8>, class: StorageClass) -> Result<(), StoreError> {
            self.inner.put(key, bytes, class).await
        }
        async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
            let bytes = self.inner.get(key).await?;
            let owner = key.split('/').nth(1).and_then(|o| Id::parse(o).ok());
            let first = owner.is_some_and(|id| self.done.lock().expect("lock").insert(id));
            if first && owner == Some(self.feedback.id) {
                self.other.add_feedback(&feedback(&self.feedback, FeedbackType::ThumbsDown, at(50))).await?;
            } else if first && owner == Some(self.delete) {
                self.other.delete_interaction(self.delete).await?;
            }
            Ok(bytes)
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
        async fn writer(&self, key: &str, class: ClassPolicy) -> Result<Box<dyn ObjectWriter>, StoreError> {
            self.inner.writer(key, class).await
        }
        async fn reader(&self, key: &str) -> Result<ObjectStream, StoreError> {
            self.inner.reader(key).await
        }
        async fn presigned_get(&self, key: &str, expires: Duration) -> Result<Option<String>, StoreError> {
            self.inner.presigned_get(key, expires).await
        }
        async fn remove_abandoned_writes(&self, prefix: &str, older_than: Duration) -> Result<u64, StoreError> {
            self.inner.remove_abandoned_writes(prefix, older_than).await
        }
    }

    /// Records that change between the commit's read and its transaction fail their stub
    /// condition: the transaction is cancelled whole, they are read again (now changed or gone:
    /// tombstoned) and the rest of the batch goes through; counted once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_changed_after_the_commit_read_them_are_read_again() {
        let Some(env) = env().await else { return };
        let big = |seed| json!({"name": "huge", "nodes": [], "blob": noise(1024 * 1024, seed)});
        let recs = vec![
            interaction("alice", "n8n", at(0)),
            with_workflow(interaction("alice", "n8n", at(1)), big(21), 10 * 1024),
            interaction("bob", "n8n", at(2)),
            with_workflow(interaction("bob", "n8n", at(3)), big(22), 10 * 1024),
        ];
        for rec in &recs {
            env.store.insert_interaction(rec).await.expect("insert");
        }
        let racing = Arc::new(RacingReads {
            inner: env.overflow.clone(),
            other: env.store.clone(),
            feedback: recs[1].clone(),
            delete: recs[3].id,
            done: std::sync::Mutex::new(HashSet::new()),
        });
        let store = env.store_over(racing);
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let items = items_of(&env.store, &ids).await;
        let lease = take_lease(&store).await;
        let obj = archive_object("n8n", day5(), "run-race", 4, at(100));
        let mut gone = commit(&store, &lease, &obj, &items).await;
        gone.sort();
        let mut want = vec![recs[1].id, recs[3].id];
        want.sort();
        assert_eq!(gone, want, "the changed and the deleted one are tombstoned");
        assert_eq!(store.tombstones(&obj.slot).await.expect("tombstones"), want.iter().copied().collect());
        for i in [0, 2] {
            let e = store.archived_entry(recs[i].id).await.expect("entry").expect("archived");
            assert_eq!(e.object_key, obj.slot);
        }
        let changed = store.get_linked(recs[1].id).await.expect("get").expect("still hot");
        assert_eq!(changed.feedback.len(), 1);
        assert_eq!(store.get_linked(recs[3].id).await.expect("get"), None);
        assert_eq!(store.archived_entry(recs[3].id).await.expect("entry"), None);
        let pairs = [(&recs[0], true), (&recs[2], true), (&changed.interaction, false)];
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
    }

    /// The same through the failpoints (a cut between records, then one before the flip).
    /// Failpoints are process-wide and would trip the other tests' commits: run it alone,
    /// `cargo test -p collector --test store_aws -- --ignored a_commit_cut_at_the_failpoints`.
    #[cfg(feature = "failpoints")]
    #[ignore = "process-wide failpoints: run alone"]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_cut_at_the_failpoints_resumes_on_rerun() {
        use collector::domain::archive::ObjectState;

        let Some(env) = env().await else { return };
        let store = &env.store;
        let recs: Vec<Interaction> = (0..3).map(|i| interaction("alice", "n8n", at(i))).collect();
        for rec in &recs {
            store.insert_interaction(rec).await.expect("insert");
        }
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let items = items_of(store, &ids).await;
        let lease = take_lease(store).await;
        let obj = archive_object("n8n", day5(), "run-cut", 3, at(100));
        store.begin_archive(&lease, &pending_row(&obj)).await.expect("begin");

        let scenario = fail::FailScenario::setup();
        // One record a transaction: the first goes through, the transactions of the others fail.
        fail::cfg("commit.batch_records", "return(1)").expect("failpoint");
        fail::cfg("commit.between_records", "1*off->return").expect("failpoint");
        assert!(matches!(store.commit_archive(&lease, &obj, &items).await, Err(StoreError::Unavailable(_))));
        fail::remove("commit.between_records");
        fail::remove("commit.batch_records");
        let row = store.archive_object(&obj.platform, obj.date, &obj.slot).await.expect("row").expect("row");
        assert_eq!(row.state, ObjectState::Pending);
        assert!(store.archived_entry(recs[0].id).await.expect("entry").is_some());
        assert!(store.get_linked(recs[1].id).await.expect("get").is_some(), "still hot");
        let partial = [(&recs[0], true), (&recs[1], false), (&recs[2], false)];
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&partial, &[]));

        // Every record moves, then the flip fails: still pending, the object not counted.
        fail::cfg("commit.before_flip", "1*return").expect("failpoint");
        assert!(matches!(store.commit_archive(&lease, &obj, &items).await, Err(StoreError::Unavailable(_))));
        fail::remove("commit.before_flip");
        drop(scenario);
        let pairs: Vec<(&Interaction, bool)> = recs.iter().map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[]));

        assert!(store.commit_archive(&lease, &obj, &items).await.expect("rerun").is_empty());
        assert!(store.commit_archive(&lease, &obj, &items).await.expect("rerun").is_empty());
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
        assert_eq!(store.list_archive_objects(None).await.expect("objects"), vec![obj]);
    }

    /// A run whose lease expired and was taken over is fenced: every write it attempts is
    /// refused whole, and the new holder carries on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fenced_writer_writes_nothing() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let recs: Vec<Interaction> = (0..2).map(|i| interaction("alice", "n8n", at(i))).collect();
        for rec in &recs {
            store.insert_interaction(rec).await.expect("insert");
        }
        let ids: Vec<Id> = recs.iter().map(|r| r.id).collect();
        let mut items = items_of(store, &ids).await;
        items.extend(gone_items(1));
        let before = store.counters().await.expect("counters");

        let ttl = Duration::from_secs(60);
        let stale = store.acquire_lease("run-a", Utc::now(), Duration::from_millis(5)).await.expect("acquire");
        let stale = stale.expect("free");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let lease = store.acquire_lease("run-b", Utc::now(), ttl).await.expect("acquire").expect("expired");
        assert_eq!(lease.token, stale.token + 1);
        assert_eq!(lease.holder, "run-b");
        assert_eq!(store.renew_lease(&stale, Utc::now(), ttl).await.expect("renew"), None);

        let obj = archive_object("n8n", day5(), "run-a", 2, at(100));
        assert!(matches!(store.begin_archive(&stale, &pending_row(&obj)).await, Err(StoreError::Fenced)));
        assert_eq!(store.archive_object(&obj.platform, obj.date, &obj.slot).await.expect("row"), None);
        store.begin_archive(&lease, &pending_row(&obj)).await.expect("begin");
        assert!(matches!(store.commit_archive(&stale, &obj, &items).await, Err(StoreError::Fenced)));
        assert!(matches!(store.abort_archive(&stale, &obj).await, Err(StoreError::Fenced)));
        assert!(matches!(store.apply_compaction(&stale, &obj, None, &[]).await, Err(StoreError::Fenced)));
        assert!(matches!(store.clear_tombstones(&stale, &obj.slot, &[items[2].id]).await, Err(StoreError::Fenced)));
        for rec in &recs {
            assert!(store.get_linked(rec.id).await.expect("get").is_some(), "still hot");
        }
        assert!(store.tombstoned_slots().await.expect("slots").is_empty());
        assert_eq!(store.counters().await.expect("counters"), before);
        let row = store.archive_object(&obj.platform, obj.date, &obj.slot).await.expect("row").expect("row");
        assert_eq!(row, pending_row(&obj));

        // The stale holder's release leaves the new lease alone; its commit goes through.
        store.release_lease(&stale).await.expect("release");
        assert_eq!(store.commit_archive(&lease, &obj, &items).await.expect("commit"), vec![items[2].id]);
        let pairs: Vec<(&Interaction, bool)> = recs.iter().map(|r| (r, true)).collect();
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&pairs, &[&obj]));
        store.release_lease(&lease).await.expect("release");
        let next = store.acquire_lease("run-c", Utc::now(), ttl).await.expect("acquire");
        assert_eq!(next.map(|l| l.token), Some(lease.token + 1), "free once released");
    }

    /// The user index is eventually consistent on DynamoDB (not on moto, which updates it in
    /// the same write): a stub may still sit under `I#`, a hot record under `A#`. Stale index
    /// entries are faked with raw items; the answer follows each id's head.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn archived_entries_of_user_trust_the_head_not_the_index() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let recs: Vec<Interaction> = (0..3).map(|i| interaction("alice", "n8n", at(i))).collect();
        for rec in &recs {
            store.insert_interaction(rec).await.expect("insert");
        }
        let items = items_of(store, &[recs[0].id, recs[1].id]).await;
        let lease = take_lease(store).await;
        let obj = archive_object("n8n", day5(), "run-1", 2, at(100));
        assert!(commit(store, &lease, &obj, &items).await.is_empty());
        let listed = store.archived_entries_of_user(&user("alice")).await.expect("entries");
        assert_eq!(listed.iter().map(|e| e.interaction_id).collect::<Vec<_>>(), vec![recs[0].id, recs[1].id]);

        let db = env.emu.dynamodb();
        let s = |v: &str| AttributeValue::S(v.to_owned());
        // recs[1]'s stub is not in the index yet; an old `I#` entry still names it.
        db.update_item()
            .table_name(&env.stack.table)
            .key("pk", s(&format!("I#{}", recs[1].id)))
            .key("sk", s("A"))
            .update_expression("REMOVE gsi2pk, gsi2sk")
            .send()
            .await
            .expect("update");
        // recs[2] is hot, but a stale `A#` entry names it.
        let stale = [("STALE#1", "I#2026-01-05T00:00:00.000000000Z#x", recs[1].id), ("STALE#2", "A#0", recs[2].id)];
        for (pk, sk, id) in stale {
            db.put_item()
                .table_name(&env.stack.table)
                .item("pk", s(pk))
                .item("sk", s("A"))
                .item("gsi2pk", s("U#alice"))
                .item("gsi2sk", s(sk))
                .item("id", s(&id.to_string()))
                .send()
                .await
                .expect("put");
        }
        let again = store.archived_entries_of_user(&user("alice")).await.expect("entries");
        assert_eq!(again, listed);
        store.delete_archived(recs[0].id).await.expect("delete").expect("archived");
        let after = store.archived_entries_of_user(&user("alice")).await.expect("entries");
        assert_eq!(after.iter().map(|e| e.interaction_id).collect::<Vec<_>>(), vec![recs[1].id]);
    }

    /// TTL must never delete a record that has no archive line: no hot item carries `expires_at`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_items_carry_no_expiry() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let rec = interaction("alice", "n8n", at(0));
        store.insert_interaction(&rec).await.expect("insert");
        store.add_feedback(&feedback(&rec, FeedbackType::ThumbsUp, at(1))).await.expect("feedback");
        store.add_validation(&validation("alice", "n8n", Some(rec.id), 90, at(2))).await.expect("validation");
        store.add_validation(&validation("alice", "n8n", None, 40, at(3))).await.expect("validation");
        let mut items = items_with_prefix(&env, "pk", "I#").await;
        items.extend(items_with_prefix(&env, "pk", "V#").await);
        let kinds: Vec<&str> = items
            .iter()
            .filter_map(|i| match i.get("t") {
                Some(AttributeValue::S(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds.len(), 4, "interaction, feedback, two validations: {kinds:?}");
        for item in &items {
            assert!(!item.contains_key("expires_at"), "an item with an expiry: {:?}", item.get("sk"));
        }
    }

    /// More tombstones than one transaction holds: a compaction clears them all, and so does
    /// clear_tombstones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tombstones_past_one_transaction_are_cleared() {
        let Some(env) = env().await else { return };
        let store = &env.store;
        let lease = take_lease(store).await;
        let gone = gone_items(130);
        let gone_ids: Vec<Id> = gone.iter().map(|i| i.id).collect();
        let obj = archive_object("n8n", day5(), "run-1", 130, at(100));
        assert_eq!(commit(store, &lease, &obj, &gone).await.len(), 130);
        assert_eq!(store.tombstones(&obj.slot).await.expect("tombstones"), gone_ids.iter().copied().collect());
        let other = archive_object("n8n", day5(), "run-2", 130, at(100));
        assert_eq!(commit(store, &lease, &other, &gone).await.len(), 130);
        assert_eq!(
            store.tombstoned_slots().await.expect("slots"),
            [obj.slot.clone(), other.slot.clone()].into_iter().collect()
        );

        store.apply_compaction(&lease, &obj, None, &gone_ids).await.expect("compaction");
        assert!(store.tombstones(&obj.slot).await.expect("tombstones").is_empty());
        assert_eq!(store.archive_object(&obj.platform, obj.date, &obj.slot).await.expect("row"), None);
        assert_eq!(store.counters().await.expect("counters"), expected_counters(&[], &[&other]));

        store.clear_tombstones(&lease, &other.slot, &gone_ids).await.expect("clear");
        assert!(store.tombstoned_slots().await.expect("slots").is_empty());
    }
}

/// The S3 archive store on the emulator: the object-store conformance suite, then what only S3
/// promises (multipart uploads, storage classes, presigned URLs).
mod s3 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use aws_sdk_s3::config::interceptors::BeforeSerializationInterceptorContextRef;
    use aws_sdk_s3::config::{ConfigBag, Intercept};
    use aws_sdk_s3::error::BoxError;
    use bytes::Bytes;
    use collector::adapters::s3::{PART_SIZE, S3Store};
    use collector::domain::archive::{ClassPolicy, StorageClass};
    use collector::ports::conformance::{object_bytes, read_streamed, write_in_chunks, write_in_chunks_as};
    use collector::ports::{FinishedObject, ObjectStore, StoreError};
    use collector::testing::Emulator;
    use futures::StreamExt;

    collector::object_store_conformance!(optional: || async {
        let emu = Emulator::connect().await?;
        let bucket = emu.create_stack().await.bucket;
        Some((S3Store::new(emu.s3(), bucket), ()))
    });

    const KEY: &str = "archive/platform=n8n/date=2026-01-05/run-1-0.jsonl.gz";

    async fn open_uploads(emu: &Emulator, bucket: &str) -> usize {
        let out = emu.s3().list_multipart_uploads().bucket(bucket).send().await.expect("list uploads");
        out.uploads().len()
    }

    async fn head_class(emu: &Emulator, bucket: &str, key: &str) -> Option<String> {
        let head = emu.s3().head_object().bucket(bucket).key(key).send().await.expect("head");
        head.storage_class().map(|c| c.as_str().to_owned())
    }

    /// The emulator, a fresh bucket, and a store on it through `client`; `None` when no emulator runs.
    async fn s3_on_emulator(
        client: impl FnOnce(&Emulator) -> aws_sdk_s3::Client,
    ) -> Option<(Emulator, String, S3Store)> {
        let emu = Emulator::connect().await?;
        let bucket = emu.create_stack().await.bucket;
        let store = S3Store::new(client(&emu), bucket.clone());
        Some((emu, bucket, store))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multipart_upload_round_trip_is_standard_ia() {
        let Some((emu, bucket, store)) = s3_on_emulator(Emulator::s3).await else {
            return;
        };
        // Two full parts and a short last one, written in small chunks.
        let bytes = object_bytes(2 * PART_SIZE + 1024 * 1024 + 5, 7);
        let done = write_in_chunks(&store, KEY, &bytes, 64 * 1024 + 3).await;
        assert_eq!(done, FinishedObject { bytes: bytes.len() as i64, storage_class: StorageClass::StandardIa });
        let (read, chunks) = read_streamed(&store, KEY).await;
        assert!(read == bytes, "the multipart object reads back whole");
        assert!(chunks > 1, "the body arrives in chunks");
        assert_eq!(head_class(&emu, &bucket, KEY).await.as_deref(), Some("STANDARD_IA"));
        assert_eq!(open_uploads(&emu, &bucket).await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_put_classes_follow_the_final_size() {
        let Some((emu, bucket, store)) = s3_on_emulator(Emulator::s3).await else {
            return;
        };
        let small = "archive/platform=n8n/date=2026-01-05/small-0.jsonl.gz";
        let big = "archive/platform=n8n/date=2026-01-05/big-0.jsonl.gz";
        write_in_chunks(&store, small, &object_bytes(1000, 1), 100).await;
        // Exactly one part: still one PutObject, classed by its size.
        write_in_chunks(&store, big, &object_bytes(PART_SIZE, 2), 1024 * 1024).await;
        // S3 leaves the header out for STANDARD.
        assert!(matches!(head_class(&emu, &bucket, small).await.as_deref(), None | Some("STANDARD")));
        assert_eq!(head_class(&emu, &bucket, big).await.as_deref(), Some("STANDARD_IA"));
        assert_eq!(open_uploads(&emu, &bucket).await, 0, "no multipart upload for a single part");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fixed_class_holds_for_multipart_uploads_too() {
        let Some((emu, bucket, store)) = s3_on_emulator(Emulator::s3).await else {
            return;
        };
        let key = "exports/0190-spill/training_data_n8n.jsonl";
        let bytes = object_bytes(PART_SIZE + 4096, 9);
        let done =
            write_in_chunks_as(&store, key, &bytes, 1024 * 1024, ClassPolicy::Fixed(StorageClass::Standard)).await;
        assert_eq!(done, FinishedObject { bytes: bytes.len() as i64, storage_class: StorageClass::Standard });
        assert!(matches!(head_class(&emu, &bucket, key).await.as_deref(), None | Some("STANDARD")));
        assert!(store.get(key).await.expect("get") == bytes);
    }

    /// Fails the n-th UploadPart before it is sent. moto cannot be told to fail one call, so the
    /// fault is injected in the client; everything else is the emulator's real behaviour.
    #[derive(Debug)]
    struct FailUploadPart {
        nth: usize,
        seen: AtomicUsize,
    }

    impl Intercept for FailUploadPart {
        fn name(&self) -> &'static str {
            "FailUploadPart"
        }

        fn read_before_execution(
            &self,
            context: &BeforeSerializationInterceptorContextRef<'_>,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            if context.input().downcast_ref::<aws_sdk_s3::operation::upload_part::UploadPartInput>().is_some()
                && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth
            {
                return Err("injected UploadPart failure".into());
            }
            Ok(())
        }
    }

    fn failing_client(emu: &Emulator, nth: usize) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&emu.sdk)
            .force_path_style(true)
            .interceptor(FailUploadPart { nth, seen: AtomicUsize::new(0) })
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_part_aborts_the_upload() {
        let Some((emu, bucket, store)) = s3_on_emulator(|emu| failing_client(emu, 2)).await else {
            return;
        };
        let mut w = store.writer(KEY, ClassPolicy::BySize).await.expect("writer");
        let chunk = Bytes::from(object_bytes(1024 * 1024, 3));
        let mut failed = None;
        for _ in 0..(3 * PART_SIZE / chunk.len()) {
            if let Err(e) = w.write(chunk.clone()).await {
                failed = Some(e);
                break;
            }
        }
        assert!(failed.is_some(), "the second part failed");
        assert!(w.write(chunk.clone()).await.is_err(), "a failed writer stays failed");
        assert!(w.finish().await.is_err(), "and cannot finish");
        assert_eq!(open_uploads(&emu, &bucket).await, 0, "the upload was aborted, no part stays billed");
        assert!(matches!(store.get(KEY).await, Err(StoreError::NotFound)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_last_part_aborts_the_upload() {
        let Some((emu, bucket, store)) = s3_on_emulator(|emu| failing_client(emu, 2)).await else {
            return;
        };
        let mut w = store.writer(KEY, ClassPolicy::BySize).await.expect("writer");
        w.write(Bytes::from(object_bytes(PART_SIZE + 1000, 4))).await.expect("first part goes");
        assert!(w.finish().await.is_err(), "the last part fails at finish");
        assert_eq!(open_uploads(&emu, &bucket).await, 0);
        assert!(store.list("").await.expect("list").is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abort_and_drop_after_parts_leave_no_upload() {
        let Some((emu, bucket, store)) = s3_on_emulator(Emulator::s3).await else {
            return;
        };
        let mut w = store.writer(KEY, ClassPolicy::BySize).await.expect("writer");
        w.write(Bytes::from(object_bytes(PART_SIZE + 1, 5))).await.expect("write");
        assert_eq!(open_uploads(&emu, &bucket).await, 1, "a part is up");
        w.abort().await.expect("abort");
        assert_eq!(open_uploads(&emu, &bucket).await, 0);

        let mut w = store.writer(KEY, ClassPolicy::BySize).await.expect("writer");
        w.write(Bytes::from(object_bytes(PART_SIZE + 1, 6))).await.expect("write");
        drop(w);
        // The abort runs in the background.
        let mut left = 1;
        for _ in 0..50 {
            left = open_uploads(&emu, &bucket).await;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(left, 0, "a dropped writer's upload is aborted");
        assert!(store.list("").await.expect("list").is_empty());
    }

    /// GET over a plain TCP connection: (status, body). The emulator answers with Content-Length.
    async fn http_get(url: &str) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").expect("plain http URL");
        let (host, path) = rest.split_once('/').expect("a path");
        let mut tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
        let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.expect("send");
        let mut resp = Vec::new();
        tcp.read_to_end(&mut resp).await.expect("read");
        let end = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
        let head = String::from_utf8_lossy(&resp[..end]).to_string();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "expected a Content-Length body");
        (status, resp[end + 4..].to_vec())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn presigned_url_serves_the_object_over_plain_http() {
        let Some(emu) = Emulator::connect().await else {
            return;
        };
        let bucket = emu.create_stack().await.bucket;
        let store = S3Store::new(emu.s3(), bucket);
        let key = "exports/training_data_n8n_20260105.jsonl";
        let bytes = object_bytes(300 * 1024, 8);
        write_in_chunks(&store, key, &bytes, 50_000).await;
        let url = store.presigned_get(key, Duration::from_secs(600)).await.expect("presign").expect("a URL");
        let (status, body) = http_get(&url).await;
        assert_eq!(status, 200);
        assert!(body == bytes, "the URL serves the object's bytes");
        assert!(store.presigned_get(key, Duration::from_secs(8 * 24 * 3600)).await.is_err(), "S3 caps URLs at 7 days");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_follows_continuation_tokens() {
        let Some(emu) = Emulator::connect().await else {
            return;
        };
        let bucket = emu.create_stack().await.bucket;
        let store = Arc::new(S3Store::new(emu.s3(), bucket));
        // Over one ListObjectsV2 page (1000 keys).
        let keys: Vec<String> =
            (0..1003).map(|i| format!("archive/platform=n8n/date=2026-01-05/run-{:04}-0.jsonl.gz", 1003 - i)).collect();
        futures::stream::iter(keys.clone())
            .map(|k| {
                let store = store.clone();
                async move { store.put(&k, b"x".to_vec(), StorageClass::Standard).await }
            })
            .buffer_unordered(16)
            .for_each(|r| async move { r.expect("put") })
            .await;
        let mut want = keys;
        want.sort();
        assert_eq!(store.list("archive/").await.expect("list"), want);
    }
}
