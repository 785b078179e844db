"""Writes the SQL steps of one archive-commit layout: `python3 layouts.py FLAGS > steps.sql`.

FLAGS is a '+' list. Layouts (pick one; default: the schema the code has):
  merged          interactions and archived entries in one table; archiving a record is an
                  UPDATE of its row (object key set, payload columns emptied)
  merged-bodies   as merged, with the payload columns in one table per day, dropped whole
Changes to the code's layout:
  no-by-time      without the interactions_by_time index
  no-fk           foreign keys off (as if feedback and validations had no REFERENCES)
  archived-without-rowid, interactions-without-rowid
  slim            payload-free hot rows (workflow, message, response, metadata emptied; VACUUM)
Connection settings: mmap (4 GB mmap_size), cache16 (16 MiB page cache), secure (secure_delete
on, as the collector's writer has it).
Chunks: by-platform (one transaction per platform and day, not per day).
File settings: page8k, page16k, page32k, page64k (the store rebuilt with that page size; VACUUM).

The records are split by their created_at day into chunks (the bench's stores span 8 days),
each archived in one transaction; with `by-platform`, by platform and day, as the archive run
commits one object per platform and day.
"""
import sys

flags = set(sys.argv[1].split("+")) if len(sys.argv) > 1 else {"base"}
steps = []


def step(name, sql):
    steps.append(f"--STEP {name}\n{sql}")


page_size = next((int(f[4:-1]) * 1024 for f in flags if f.startswith("page") and f.endswith("k")), None)
# The collector checkpoints every 16 MiB of WAL, whatever the page size (the stores are 4 KiB unless rebuilt).
pragmas = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=%s; PRAGMA temp_store=FILE; PRAGMA wal_autocheckpoint=%d;" % (
    "OFF" if "no-fk" in flags else "ON", 16 * 1024 * 1024 // (page_size or 4096))
if "cache16" in flags:
    pragmas += " PRAGMA cache_size=-16384;"
if "mmap" in flags:
    pragmas += " PRAGMA mmap_size=4000000000;"
if "secure" in flags:
    pragmas += " PRAGMA secure_delete=ON;"

PAYLOAD = "user_message, ai_response, workflow, metadata"
ICOLS = ("id, user_id, platform, kind, user_message, ai_response, intent, workflow, workflow_compressed, "
         "workflow_original_bytes, success, error_message, processing_time_ms, model_version, metadata, "
         "training_consent, created_at, content_hash, feedback_count, last_feedback_type, positive_feedback, "
         "negative_feedback, latest_negative, good_validation")
ITYPES = ("id TEXT PRIMARY KEY, user_id TEXT NOT NULL, platform TEXT NOT NULL, kind TEXT NOT NULL, user_message TEXT, "
          "ai_response TEXT, intent TEXT, workflow BLOB, workflow_compressed INTEGER NOT NULL, "
          "workflow_original_bytes INTEGER NOT NULL, success INTEGER NOT NULL, error_message TEXT, "
          "processing_time_ms INTEGER, model_version TEXT, metadata TEXT, training_consent INTEGER NOT NULL, "
          "created_at TEXT NOT NULL, content_hash TEXT NOT NULL, feedback_count INTEGER NOT NULL, "
          "last_feedback_type TEXT, positive_feedback INTEGER NOT NULL, negative_feedback INTEGER NOT NULL, "
          "latest_negative INTEGER NOT NULL, good_validation INTEGER NOT NULL")
FACTS = "'{\"success\":true,\"feedback\":0,\"positive\":0,\"negative\":0,\"consent\":true,\"bytes\":3000}'"
LINKS = ("(SELECT count(*) FROM feedback f WHERE f.interaction_id = i.id) + "
         "(SELECT count(*) FROM validations v WHERE v.interaction_id = i.id)")

# by-platform: one chunk per platform and day (as the archive run commits one object per platform
# and day); otherwise one per day (up to 4 platforms).
by_platform = "by-platform" in flags
platform_rank = "p.r" if by_platform else "0"
step("_setup", "PRAGMA journal_mode=WAL; DROP INDEX IF EXISTS archived_by_object; "
     "CREATE TABLE chunk (c INTEGER, id TEXT); "
     "CREATE TABLE plat AS SELECT platform, row_number() OVER (ORDER BY platform) - 1 AS r "
     "FROM (SELECT DISTINCT platform FROM interactions); "
     "INSERT INTO chunk SELECT (julianday(substr(created_at, 1, 10)) - "
     "julianday((SELECT min(substr(created_at, 1, 10)) FROM interactions))) * 4 + " + platform_rank +
     ", i.id FROM interactions i JOIN plat p ON p.platform = i.platform ORDER BY i.created_at; DROP TABLE plat;")
chunks = [day * 4 + p for day in range(8) for p in range(4 if by_platform else 1)]
merged = "merged" in flags or "merged-bodies" in flags

if merged:
    # One table for hot and archived records; the hot listings' indexes are partial.
    setup = ["PRAGMA foreign_keys=OFF;"]
    if page_size:
        setup.append(f"PRAGMA journal_mode=DELETE; PRAGMA page_size={page_size}; VACUUM; PRAGMA journal_mode=WAL;")
    setup += [
             f"CREATE TABLE records ({ITYPES}, object_key TEXT, receipt_stored_bytes INTEGER, facts TEXT) STRICT;",
             f"INSERT INTO records SELECT {ICOLS}, NULL, NULL, NULL FROM interactions ORDER BY rowid;"]
    if "merged-bodies" in flags:
        for k in chunks:
            setup.append(f"CREATE TABLE bodies_{k} (id INTEGER PRIMARY KEY, {PAYLOAD}); "
                         f"INSERT INTO bodies_{k} SELECT r.rowid, r.user_message, r.ai_response, r.workflow, r.metadata "
                         f"FROM records r JOIN chunk c ON c.id = r.id WHERE c.c = {k};")
        setup.append("UPDATE records SET user_message = NULL, ai_response = NULL, workflow = NULL, metadata = NULL; VACUUM;")
    setup += ["CREATE INDEX records_hot_by_platform ON records (platform, created_at, id) WHERE object_key IS NULL;",
              "CREATE INDEX records_by_user ON records (user_id, created_at, id);"]
    if "no-by-time" not in flags:
        setup.append("CREATE INDEX records_hot_by_time ON records (created_at, id) WHERE object_key IS NULL;")
    # Links without REFERENCES to the old table (it is dropped).
    setup += ["CREATE TABLE f2 AS SELECT * FROM feedback; DROP TABLE feedback; ALTER TABLE f2 RENAME TO feedback;",
              "CREATE INDEX feedback_by_interaction ON feedback (interaction_id);",
              "CREATE TABLE v2 AS SELECT * FROM validations; DROP TABLE validations; ALTER TABLE v2 RENAME TO validations;",
              "CREATE INDEX validations_by_interaction ON validations (interaction_id);",
              "DROP TABLE interactions; DROP TABLE archived; PRAGMA wal_checkpoint(TRUNCATE);"]
    step("_layout", "\n".join(setup))
else:
    setup = []
    if "slim" in flags:
        setup.append("UPDATE interactions SET workflow = x'00', user_message = 'x', ai_response = NULL, metadata = NULL; VACUUM;")
    if "no-by-time" in flags:
        setup.append("DROP INDEX interactions_by_time;")
    if "interactions-without-rowid" in flags:
        setup += ["PRAGMA foreign_keys=OFF;",
                  f"CREATE TABLE i2 ({ITYPES.replace('user_message TEXT', 'user_message TEXT NOT NULL')}) STRICT, WITHOUT ROWID;",
                  f"INSERT INTO i2 SELECT {ICOLS} FROM interactions ORDER BY id; DROP TABLE interactions;",
                  "ALTER TABLE i2 RENAME TO interactions;",
                  "CREATE INDEX interactions_by_platform ON interactions (platform, created_at, id);",
                  "CREATE INDEX interactions_by_user ON interactions (user_id, created_at, id);"]
        if "no-by-time" not in flags:
            setup.append("CREATE INDEX interactions_by_time ON interactions (created_at, id);")
    if "archived-without-rowid" in flags:
        setup += ["DROP TABLE archived;",
                  "CREATE TABLE archived (interaction_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, platform TEXT NOT NULL, "
                  "created_at TEXT NOT NULL, object_key TEXT NOT NULL, content_hash TEXT NOT NULL, "
                  "receipt_compressed INTEGER NOT NULL, receipt_original_bytes INTEGER NOT NULL, "
                  "receipt_stored_bytes INTEGER NOT NULL, facts TEXT NOT NULL) STRICT, WITHOUT ROWID;",
                  "CREATE INDEX archived_by_user ON archived (user_id, created_at);"]
    if page_size:
        setup.append(f"PRAGMA journal_mode=DELETE; PRAGMA page_size={page_size}; VACUUM; PRAGMA journal_mode=WAL;")
    if setup:
        step("_layout", "\n".join(setup + ["PRAGMA wal_checkpoint(TRUNCATE);"]))

step("_pragmas", pragmas)
for k in chunks:
    ids = f"(SELECT id FROM chunk WHERE c = {k})"
    key = f"'archive/n8n/2026-10-23/run-abcdef-{k:04}.jsonl.gz'"
    step(f"begin{k}", "BEGIN IMMEDIATE; PRAGMA defer_foreign_keys=ON;")
    if merged:
        cols = ", ".join("i." + c.strip() for c in ICOLS.split(","))
        step(f"select{k}", f"SELECT {cols}, {LINKS} FROM chunk AS j CROSS JOIN records AS i ON i.id = j.id "
                           f"WHERE j.c = {k} AND i.object_key IS NULL")
        step(f"links{k}", f"DELETE FROM feedback WHERE interaction_id IN {ids}; "
                          f"DELETE FROM validations WHERE interaction_id IN {ids};")
        step(f"move{k}", f"UPDATE records SET object_key = {key}, receipt_stored_bytes = 2400, facts = {FACTS}, "
                         "user_message = NULL, ai_response = NULL, workflow = NULL, metadata = NULL, intent = NULL, "
                         f"model_version = NULL WHERE id IN {ids};")
        if "merged-bodies" in flags:
            step(f"drop{k}", f"DROP TABLE bodies_{k};")
    else:
        cols = ", ".join("i." + c.strip() for c in ICOLS.split(","))
        step(f"select{k}", f"SELECT {cols}, {LINKS} FROM chunk AS j CROSS JOIN interactions AS i ON i.id = j.id "
                           f"WHERE j.c = {k}")
        step(f"insert{k}", f"INSERT INTO archived SELECT i.id, i.user_id, i.platform, i.created_at, {key}, "
                           f"i.content_hash, 0, length(i.workflow), length(i.workflow), {FACTS} "
                           f"FROM chunk j CROSS JOIN interactions i ON i.id = j.id WHERE j.c = {k};")
        step(f"links{k}", f"DELETE FROM feedback WHERE interaction_id IN {ids}; "
                          f"DELETE FROM validations WHERE interaction_id IN {ids};")
        step(f"move{k}", f"DELETE FROM interactions WHERE id IN {ids};")
    step(f"commit{k}", "COMMIT;")
print("\n".join(steps))
