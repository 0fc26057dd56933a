/**
 * Schema migrations for the embedded store, applied in order and recorded in
 * `PRAGMA user_version`. Add a new entry for every change; never edit a shipped one.
 */
import type { Database } from 'better-sqlite3';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    expires_at INTEGER,
    total_items INTEGER NOT NULL,
    completed_items INTEGER NOT NULL DEFAULT 0,
    failed_items INTEGER NOT NULL DEFAULT 0,
    dimensions INTEGER,
    metadata TEXT NOT NULL,
    options TEXT NOT NULL,
    errors TEXT NOT NULL DEFAULT '[]'
  );
  CREATE INDEX jobs_status ON jobs(status);
  CREATE INDEX jobs_created ON jobs(created_at, seq);
  CREATE INDEX jobs_owner_created ON jobs(owner, created_at, seq);
  CREATE INDEX jobs_expires ON jobs(expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE documents (
    job_seq INTEGER NOT NULL REFERENCES jobs(seq) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    text TEXT,
    vector BLOB,
    truncated INTEGER NOT NULL DEFAULT 0,
    code TEXT,
    error TEXT,
    PRIMARY KEY (job_seq, idx)
  );
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO counters (name, value) VALUES
    ('jobs_created', 0), ('jobs_completed', 0), ('jobs_failed', 0), ('jobs_cancelled', 0);
  `,
  // 2: content cache, per-document cache keys (for in-job de-duplication), retry lineage.
  `
  ALTER TABLE jobs ADD COLUMN retry_of TEXT;
  ALTER TABLE documents ADD COLUMN cache_key BLOB;
  CREATE INDEX documents_cache_key ON documents(job_seq, cache_key) WHERE cache_key IS NOT NULL;
  CREATE TABLE embedding_cache (
    key BLOB PRIMARY KEY,
    vector BLOB NOT NULL,
    truncated INTEGER NOT NULL
  );
  -- Recency lives apart from the vectors: touching an entry must not rewrite its blob.
  CREATE TABLE embedding_cache_usage (
    key BLOB PRIMARY KEY,
    bytes INTEGER NOT NULL,
    used_at INTEGER NOT NULL
  );
  CREATE INDEX embedding_cache_used ON embedding_cache_usage(used_at);
  INSERT INTO counters (name, value) VALUES ('cache_hits', 0), ('cache_misses', 0), ('cache_bytes', 0);
  `,
  // 3: API keys: job counters per owner (per-key stats), and the index the per-key active-job cap counts with.
  `
  CREATE TABLE owner_counters (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (owner, name)
  ) WITHOUT ROWID;
  -- Every job made before API keys existed belongs to the anonymous owner.
  INSERT INTO owner_counters (owner, name, value)
    SELECT 'anonymous', name, value FROM counters
    WHERE name IN ('jobs_created', 'jobs_completed', 'jobs_failed', 'jobs_cancelled') AND value > 0;
  CREATE INDEX jobs_owner_status ON jobs(owner, status);
  `,
  // 4: documents whose text occurs more than once in their job, so only they pay for de-duplication.
  `
  ALTER TABLE documents ADD COLUMN dup INTEGER NOT NULL DEFAULT 0;
  `,
  // 5: job control (store/control.ts): priority, run_at, dependencies per job; Idempotency-Key answers.
  `
  CREATE TABLE job_control (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    priority TEXT NOT NULL,
    run_at INTEGER,
    depends_on TEXT NOT NULL DEFAULT '[]',
    documents_from TEXT,
    template TEXT,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
  ) WITHOUT ROWID;
  CREATE INDEX idempotency_expires ON idempotency_keys(expires_at);
  CREATE TABLE webhooks (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts TEXT NOT NULL DEFAULT '[]',
    next_attempt_at INTEGER NOT NULL,
    first_attempt_at INTEGER,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX webhooks_open ON webhooks(state, created_at) WHERE state IN ('waiting', 'retrying');
  CREATE TABLE templates (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    next_run_at INTEGER,
    PRIMARY KEY (owner, name)
  ) WITHOUT ROWID;
  CREATE INDEX templates_due ON templates(next_run_at) WHERE next_run_at IS NOT NULL;
  CREATE TABLE autobatch_queue (
    seq INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    documents TEXT NOT NULL,
    count INTEGER NOT NULL,
    metadata TEXT,
    queued_at INTEGER NOT NULL
  );
  CREATE INDEX autobatch_queue_target ON autobatch_queue(owner, target, queued_at);
  CREATE TABLE autobatch_history (
    seq INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    job_ids TEXT NOT NULL,
    documents INTEGER NOT NULL,
    flushed_at INTEGER NOT NULL
  );
  CREATE INDEX autobatch_history_owner ON autobatch_history(owner, seq);
  `,
  // 6: content-cache recency keyed by the entry's rowid, not its key. Keys are hashes, so every
  // insert into and delete from a key index dirties a random 16 KiB page (one WAL frame each);
  // rowids grow with insertion, so this table and its used_at index are written at their ends.
  `
  CREATE TABLE embedding_cache_lru (
    entry INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL,
    used_at INTEGER NOT NULL
  );
  INSERT INTO embedding_cache_lru (entry, bytes, used_at)
    SELECT c.rowid, u.bytes, u.used_at FROM embedding_cache c JOIN embedding_cache_usage u ON u.key = c.key ORDER BY c.rowid;
  DROP TABLE embedding_cache_usage;
  CREATE INDEX embedding_cache_lru_used ON embedding_cache_lru(used_at);
  `,
  // 7: generation jobs (generate / chat): an item's result, a JSON object text, beside its request in \`text\`.
  `
  ALTER TABLE documents ADD COLUMN result TEXT;
  `,
  // 8: one stored copy per computed vector. Vectors live in their own table, written once;
  // a document and a content-cache entry hold its id, so a cache hit, an in-job duplicate and
  // a retry's copy reference the row instead of copying 3 KiB (768 dims) each. A vector row
  // is deleted, by the triggers below, with the last document or cache entry referring to it,
  // whichever path deletes them (purge, expiry, eviction for room, cascade, cache eviction).
  // Documents written before keep their vector inline (documents.vector; readers take
  // either). The cache also loses its index on the hash keys: with 100,000s of entries every
  // insert and every eviction dirtied a random 16 KiB page of it (measured: 33 KiB written
  // per document fresh, 67-73 KiB once the cache was full). Its entries are keyed by an
  // insertion-ordered number and their keys indexed in memory (embeddingCache.ts).
  `
  CREATE TABLE vectors (
    id INTEGER PRIMARY KEY,
    vector BLOB NOT NULL
  );
  ALTER TABLE documents ADD COLUMN vector_id INTEGER;
  CREATE INDEX documents_vector ON documents(vector_id) WHERE vector_id IS NOT NULL;
  CREATE TABLE embedding_cache_entries (
    entry INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    vector_id INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    used_at INTEGER NOT NULL
  );
  CREATE INDEX embedding_cache_entries_used ON embedding_cache_entries(used_at);
  CREATE INDEX embedding_cache_entries_vector ON embedding_cache_entries(vector_id);
  INSERT INTO vectors (id, vector)
    SELECT c.rowid, c.vector FROM embedding_cache c JOIN embedding_cache_lru l ON l.entry = c.rowid ORDER BY c.rowid;
  INSERT INTO embedding_cache_entries (entry, key, vector_id, truncated, bytes, used_at)
    SELECT c.rowid, c.key, c.rowid, c.truncated, l.bytes, l.used_at FROM embedding_cache c JOIN embedding_cache_lru l ON l.entry = c.rowid ORDER BY c.rowid;
  DROP TABLE embedding_cache;
  DROP TABLE embedding_cache_lru;
  UPDATE counters SET value = (SELECT COALESCE(SUM(bytes), 0) FROM embedding_cache_entries) WHERE name = 'cache_bytes';
  CREATE TRIGGER documents_free_vector AFTER DELETE ON documents WHEN old.vector_id IS NOT NULL BEGIN
    DELETE FROM vectors WHERE id = old.vector_id
      AND NOT EXISTS (SELECT 1 FROM documents WHERE vector_id = old.vector_id)
      AND NOT EXISTS (SELECT 1 FROM embedding_cache_entries WHERE vector_id = old.vector_id);
  END;
  CREATE TRIGGER cache_free_vector AFTER DELETE ON embedding_cache_entries BEGIN
    DELETE FROM vectors WHERE id = old.vector_id
      AND NOT EXISTS (SELECT 1 FROM documents WHERE vector_id = old.vector_id)
      AND NOT EXISTS (SELECT 1 FROM embedding_cache_entries WHERE vector_id = old.vector_id);
  END;
  `,
  // 9: the index on documents' cache keys holds only the documents whose text occurs more than
  // once in their job (dup = 1), the only ones ever looked up by key (filling in-job duplicates;
  // their queries say dup = 1). An index entry per document, on a random 32-byte key, was a
  // third of admission's cost (docs/ARCHITECTURE.md, "Admission").
  `
  DROP INDEX documents_cache_key;
  CREATE INDEX documents_dup_key ON documents(job_seq, cache_key) WHERE dup = 1;
  `,
  // 10: the triggers of migration 8 look for other referrers before they touch the vector.
  // `DELETE FROM vectors WHERE id = x AND NOT EXISTS (...)` seeks the vectors row first (the
  // subqueries are evaluated on the row found), so every cache eviction read the 16 KiB page
  // holding a vector that a stored document still used, and kept: once the file outgrew the
  // page cache, a full cache cost one disk read per document written (docs/ARCHITECTURE.md,
  // "Store contract"). With the checks in WHEN, the vectors table is read only to delete.
  `
  DROP TRIGGER documents_free_vector;
  DROP TRIGGER cache_free_vector;
  CREATE TRIGGER documents_free_vector AFTER DELETE ON documents WHEN old.vector_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM documents WHERE vector_id = old.vector_id)
    AND NOT EXISTS (SELECT 1 FROM embedding_cache_entries WHERE vector_id = old.vector_id)
  BEGIN
    DELETE FROM vectors WHERE id = old.vector_id;
  END;
  CREATE TRIGGER cache_free_vector AFTER DELETE ON embedding_cache_entries WHEN
    NOT EXISTS (SELECT 1 FROM documents WHERE vector_id = old.vector_id)
    AND NOT EXISTS (SELECT 1 FROM embedding_cache_entries WHERE vector_id = old.vector_id)
  BEGIN
    DELETE FROM vectors WHERE id = old.vector_id;
  END;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Applies the migrations up to `target` (all of them by default; tests stop earlier to build an old file). */
export function migrate(db: Database, target = SCHEMA_VERSION): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `The data directory was written by a newer sollol (schema ${current}, this one knows ${SCHEMA_VERSION}); upgrade sollol or use another --data-dir`,
    );
  }
  for (let version = current; version < target; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? '');
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
