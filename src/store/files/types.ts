/**
 * The FileStore port: OpenAI Files API files (`purpose: batch` input files, later batch output
 * files), with their bytes, owned like jobs (every read takes a scope). Two adapters beside the
 * job stores: SQLite (its own database file in the data directory) and Redis (the deployment's
 * prefix). Newest first in lists, with OpenAI's `after` cursor (a file id).
 */
import type { Scope } from '../../jobs/model.js';

export interface StoredFile {
  readonly id: string;
  readonly owner: string;
  readonly bytes: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly filename: string;
  readonly purpose: string;
}

export interface FileListQuery {
  readonly limit: number;
  /** A file id: only files listed after it (older ones). */
  readonly after?: string;
  readonly purpose?: string;
}

/**
 * A file written a chunk at a time (a batch's output can be hundreds of MB): nothing of it is
 * visible (get, list, content) until `commit`. A writer opened for an id that is not committed
 * starts over, dropping the chunks a writer before it (one that died) left.
 */
export interface FileWriter {
  append(chunk: Buffer): Promise<void>;
  /** Makes the file visible with every byte appended; its `bytes` is their count. */
  commit(): Promise<void>;
}

export interface FileStore {
  put(file: StoredFile, content: Buffer): Promise<void>;
  writer(file: Omit<StoredFile, 'bytes'>): Promise<FileWriter>;
  get(scope: Scope, id: string): Promise<StoredFile | undefined>;
  /** The whole content in one Buffer (input files: at most 200 MB). */
  content(scope: Scope, id: string): Promise<Buffer | undefined>;
  /** The content a chunk at a time, in order, for downloads; undefined when there is no such file. */
  chunks(scope: Scope, id: string): Promise<AsyncIterable<Buffer> | undefined>;
  /** Newest first; `hasMore` when files beyond `limit` match. */
  list(scope: Scope, query: FileListQuery): Promise<{ files: StoredFile[]; hasMore: boolean }>;
  /** False when there is no such file visible to the scope. */
  delete(scope: Scope, id: string): Promise<boolean>;
  close(): Promise<void>;
}

export function visibleTo(scope: Scope, owner: string): boolean {
  return scope.kind === 'admin' || scope.owner === owner;
}

/** A file's chunks read into one Buffer (`FileStore.content`, from `chunks`). */
export async function joinChunks(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
