/**
 * FileStore on SQLite: its own database file (`files.sqlite` in the data directory, or memory),
 * so the job store's schema and connection are untouched. An uploaded file is written in one
 * statement, its bytes in `files.content`; a file written in chunks (FileWriter: a batch's
 * output) keeps them in `file_chunks` under its writer's id, and its `files` row, written last,
 * names that writer (`chunks`; `content` empty). Two writers of one file (two gateways
 * finalising one batch) write the same bytes: the last commit wins, a download goes on with
 * the writer it started with, and delete drops every writer's chunks.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Scope } from '../../jobs/model.js';
import { StoreError } from '../errors.js';
import { joinChunks, visibleTo, type FileListQuery, type FileStore, type FileWriter, type StoredFile } from './types.js';

interface Row {
  seq: number;
  id: string;
  owner: string;
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  filename TEXT NOT NULL,
  purpose TEXT NOT NULL,
  content BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS files_owner ON files(owner, seq);
CREATE TABLE IF NOT EXISTS file_chunks (
  file_id TEXT NOT NULL,
  writer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  UNIQUE (file_id, writer, seq)
);
`;

const fromRow = (r: Row): StoredFile => ({ id: r.id, owner: r.owner, bytes: r.bytes, createdAt: r.created_at, filename: r.filename, purpose: r.purpose });

export class SqliteFileStore implements FileStore {
  private readonly db: Database.Database;

  constructor(dataDir: string) {
    this.db = new Database(dataDir === ':memory:' ? ':memory:' : path.join(dataDir, 'files.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
    const columns = this.db.prepare(`PRAGMA table_info(files)`).all() as { name: string }[];
    if (!columns.some((c) => c.name === 'chunks')) this.db.exec(`ALTER TABLE files ADD COLUMN chunks TEXT`);
  }

  async put(file: StoredFile, content: Buffer): Promise<void> {
    this.guard(() =>
      this.db
        .prepare(`INSERT INTO files (id, owner, bytes, created_at, filename, purpose, content) VALUES (?, ?, ?, ?, ?, ?, ?)`)
        .run(file.id, file.owner, file.bytes, file.createdAt, file.filename, file.purpose, content),
    );
  }

  async writer(file: Omit<StoredFile, 'bytes'>): Promise<FileWriter> {
    const writer = randomUUID();
    const insert = this.db.prepare(`INSERT INTO file_chunks (file_id, writer, seq, data) VALUES (?, ?, ?, ?)`);
    let seq = 0;
    let bytes = 0;
    return {
      append: async (chunk) => {
        if (chunk.length === 0) return;
        this.guard(() => insert.run(file.id, writer, seq, chunk));
        seq++;
        bytes += chunk.length;
      },
      commit: async () => {
        this.guard(() =>
          this.db
            .prepare(`INSERT INTO files (id, owner, bytes, created_at, filename, purpose, content, chunks) VALUES (?, ?, ?, ?, ?, ?, x'', ?)
                      ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, chunks = excluded.chunks`)
            .run(file.id, file.owner, bytes, file.createdAt, file.filename, file.purpose, writer),
        );
      },
    };
  }

  async get(scope: Scope, id: string): Promise<StoredFile | undefined> {
    const row = this.row(id);
    return row && visibleTo(scope, row.owner) ? fromRow(row) : undefined;
  }

  async content(scope: Scope, id: string): Promise<Buffer | undefined> {
    const chunks = await this.chunks(scope, id);
    return chunks ? joinChunks(chunks) : undefined;
  }

  async chunks(scope: Scope, id: string): Promise<AsyncIterable<Buffer> | undefined> {
    const row = this.guard(() => this.db.prepare(`SELECT owner, content, chunks FROM files WHERE id = ?`).get(id) as { owner: string; content: Buffer; chunks: string | null } | undefined);
    if (!row || !visibleTo(scope, row.owner)) return undefined;
    const writer = row.chunks;
    if (writer === null) return (async function* one() { yield row.content; })();
    // One chunk per query: a statement left iterating would keep the connection busy between yields.
    const chunk = this.db.prepare(`SELECT data FROM file_chunks WHERE file_id = ? AND writer = ? AND seq = ?`).pluck();
    const guard = this.guard.bind(this);
    return (async function* chunked() {
      for (let seq = 0; ; seq++) {
        const data = guard(() => chunk.get(id, writer, seq) as Buffer | undefined);
        if (data === undefined) return;
        yield data;
      }
    })();
  }

  async list(scope: Scope, query: FileListQuery): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    const owner = scope.kind === 'admin' ? null : scope.owner;
    const after = query.after === undefined ? null : (this.row(query.after)?.seq ?? null);
    if (query.after !== undefined && after === null) return { files: [], hasMore: false };
    const rows = this.guard(
      () =>
        this.db
          .prepare(
            `SELECT seq, id, owner, bytes, created_at, filename, purpose FROM files
             WHERE (@owner IS NULL OR owner = @owner) AND (@after IS NULL OR seq < @after) AND (@purpose IS NULL OR purpose = @purpose)
             ORDER BY seq DESC LIMIT @limit`,
          )
          .all({ owner, after, purpose: query.purpose ?? null, limit: query.limit + 1 }) as Row[],
    );
    return { files: rows.slice(0, query.limit).map(fromRow), hasMore: rows.length > query.limit };
  }

  async delete(scope: Scope, id: string): Promise<boolean> {
    const row = this.row(id);
    if (!row || !visibleTo(scope, row.owner)) return false;
    return this.guard(() =>
      this.db.transaction(() => {
        this.db.prepare(`DELETE FROM file_chunks WHERE file_id = ?`).run(id);
        return this.db.prepare(`DELETE FROM files WHERE seq = ?`).run(row.seq).changes === 1;
      })(),
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private row(id: string): Row | undefined {
    return this.guard(() => this.db.prepare(`SELECT seq, id, owner, bytes, created_at, filename, purpose FROM files WHERE id = ?`).get(id) as Row | undefined);
  }

  /** SQLite faults are the store's: STORE_FULL for a full disk, STORE_UNAVAILABLE otherwise. */
  private guard<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'SQLITE_FULL') throw new StoreError('STORE_FULL', 'The file store is full', { cause: error });
      if (typeof code === 'string' && code.startsWith('SQLITE_')) throw new StoreError('STORE_UNAVAILABLE', 'The file store is unavailable', { cause: error });
      throw error;
    }
  }
}
