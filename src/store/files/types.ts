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

export interface FileStore {
  put(file: StoredFile, content: Buffer): Promise<void>;
  get(scope: Scope, id: string): Promise<StoredFile | undefined>;
  content(scope: Scope, id: string): Promise<Buffer | undefined>;
  /** Newest first; `hasMore` when files beyond `limit` match. */
  list(scope: Scope, query: FileListQuery): Promise<{ files: StoredFile[]; hasMore: boolean }>;
  /** False when there is no such file visible to the scope. */
  delete(scope: Scope, id: string): Promise<boolean>;
  close(): Promise<void>;
}

export function visibleTo(scope: Scope, owner: string): boolean {
  return scope.kind === 'admin' || scope.owner === owner;
}
