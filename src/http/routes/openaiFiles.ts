/**
 * The OpenAI Files API for batch input files (register with `{ prefix: '/v1' }`):
 * `POST /files` (multipart: `purpose=batch` and `file`), `GET /files`, `GET /files/{id}`,
 * `GET /files/{id}/content`, `DELETE /files/{id}`. An uploaded file is validated line by line
 * (openaiBatch/inputFile.ts) and refused with errors that name the lines; files belong to the
 * key that uploaded them (any other key gets 404, as for jobs). Multipart parsing is
 * @fastify/multipart (fastify's own, streaming, with per-part size limits).
 */
import { randomBytes } from 'node:crypto';
import multipart from '@fastify/multipart';
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MAX_INPUT_BYTES, MAX_INPUT_LINES, validateInputFile } from '../../openaiBatch/inputFile.js';
import { fileObject } from '../../openaiBatch/objects.js';
import type { FileStore } from '../../store/files/types.js';
import { Readable } from 'node:stream';
import { CompatError, sendOpenAIError, toCompatError } from '../compatErrors.js';
import { scopeOf } from '../scope.js';

export interface OpenAIFileRouteOptions {
  readonly files: FileStore;
}

const PURPOSES = ['batch'];
const MAX_LIST = 10_000;

function fileNotFound(id: string): CompatError {
  return new CompatError('FILE_NOT_FOUND', `No such file object: ${id.slice(0, 80)}`, { param: 'file_id' });
}

function newFileId(): string {
  return `file-${randomBytes(12).toString('hex')}`;
}

interface Upload {
  purpose: string | undefined;
  filename: string;
  content: Buffer | undefined;
}

async function readUpload(request: FastifyRequest): Promise<Upload> {
  if (!request.isMultipart()) throw new CompatError('INVALID_BODY', "Send the file as multipart/form-data with the fields 'purpose' and 'file'", { param: 'file' });
  const upload: Upload = { purpose: undefined, filename: 'file', content: undefined };
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          part.file.resume();
          continue;
        }
        upload.filename = part.filename || 'file';
        upload.content = await part.toBuffer();
      } else if (part.fieldname === 'purpose') {
        upload.purpose = String(part.value);
      }
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new CompatError('BODY_TOO_LARGE', `The file is over ${MAX_INPUT_BYTES} bytes`, { param: 'file' });
    if (typeof code === 'string' && code.startsWith('FST_')) throw new CompatError('INVALID_BODY', `The multipart body could not be read (${code})`, { param: 'file' });
    throw error;
  }
  return upload;
}

export async function openaiFileRoutes(app: FastifyInstance, options: OpenAIFileRouteOptions): Promise<void> {
  const { files } = options;
  app.setErrorHandler((error, request, reply) => sendOpenAIError(reply, toCompatError(error, request)));
  await app.register(multipart, { limits: { fileSize: MAX_INPUT_BYTES, files: 1, fields: 10, parts: 12 } });

  app.post('/files', { schema: { tags: ['openai'], summary: `Upload a batch input file (multipart: purpose=batch, file; JSONL, at most ${MAX_INPUT_LINES} lines and ${MAX_INPUT_BYTES / 1024 / 1024} MB)` } }, async (request) => {
    const scope = scopeOf(request);
    const upload = await readUpload(request);
    if (upload.purpose === undefined) throw new CompatError('INVALID_BODY', "The field 'purpose' is required", { param: 'purpose' });
    if (!PURPOSES.includes(upload.purpose)) throw new CompatError('INVALID_BODY', `purpose must be one of: ${PURPOSES.join(', ')}`, { param: 'purpose' });
    if (upload.content === undefined) throw new CompatError('INVALID_BODY', "The field 'file' is required", { param: 'file' });
    const verdict = validateInputFile(upload.content);
    if (!verdict.ok) {
      const shown = verdict.errors.slice(0, 5).map((e) => e.message).join('; ');
      const more = verdict.errors.length > 5 ? ` (and ${verdict.errors.length - 5} more)` : '';
      throw new CompatError('INVALID_FILE', `The file is not a valid batch input file: ${shown}${more}`, { param: 'file' });
    }
    const file = { id: newFileId(), owner: scope.owner ?? 'admin', bytes: upload.content.length, createdAt: Date.now(), filename: upload.filename, purpose: upload.purpose };
    await files.put(file, upload.content);
    return fileObject(file);
  });

  app.get<{ Querystring: { limit?: string; after?: string; purpose?: string } }>('/files', { schema: { tags: ['openai'], summary: 'List your files, newest first (limit, after, purpose)' } }, async (request) => {
    const { after, purpose } = request.query;
    const limit = request.query.limit === undefined ? MAX_LIST : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) throw new CompatError('INVALID_LIMIT', `limit must be an integer from 1 to ${MAX_LIST}`, { param: 'limit' });
    const page = await files.list(scopeOf(request), { limit, ...(after ? { after } : {}), ...(purpose ? { purpose } : {}) });
    const data = page.files.map(fileObject);
    return { object: 'list', data, first_id: page.files[0]?.id ?? null, last_id: page.files.at(-1)?.id ?? null, has_more: page.hasMore };
  });

  app.get<{ Params: { id: string } }>('/files/:id', { schema: { tags: ['openai'], summary: 'A file object' } }, async (request) => {
    const file = await files.get(scopeOf(request), request.params.id);
    if (!file) throw fileNotFound(request.params.id);
    return fileObject(file);
  });

  app.get<{ Params: { id: string } }>('/files/:id/content', { schema: { tags: ['openai'], summary: "A file's bytes" } }, async (request, reply) => {
    const scope = scopeOf(request);
    const file = await files.get(scope, request.params.id);
    const chunks = file ? await files.chunks(scope, request.params.id) : undefined;
    if (!file || !chunks) throw fileNotFound(request.params.id);
    // A chunk at a time: a batch's output can be hundreds of MB.
    return reply.type('application/octet-stream').header('content-length', file.bytes).send(Readable.from(chunks));
  });

  app.delete<{ Params: { id: string } }>('/files/:id', { schema: { tags: ['openai'], summary: 'Delete a file' } }, async (request) => {
    if (!(await files.delete(scopeOf(request), request.params.id))) throw fileNotFound(request.params.id);
    return { id: request.params.id, object: 'file', deleted: true };
  });
}
