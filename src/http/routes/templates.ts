/** Batch templates: POST/GET /api/batch/templates, GET/DELETE /api/batch/templates/{name}, POST .../{name}/run. */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import type { Priority } from '../../jobs/priority.js';
import { TEMPLATE_NAME_PATTERN, templateView, type TemplateRunner, type Templates } from '../../jobs/templates.js';
import { controlFromBody, jobControlProperties, type JobControlBody } from '../jobControl.js';
import { errorSchema, METADATA_MAX_BYTES } from '../schemas.js';
import { scopeOf } from '../scope.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../validation.js';
import { toEmbedOptions } from './batch.js';
import { submitGeneration } from './batchGenerate.js';
import type { GenerationKind } from '../generationSubmit.js';

const tags = ['templates'];

interface TemplateBody {
  name: string;
  job_type?: string;
  model: string;
  options?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  priority?: Priority;
  callback_url?: string;
  schedule?: string;
  documents?: string[];
  prompts?: string[];
  conversations?: unknown[];
  requests?: unknown[];
}

/** The inputs a run takes, by job type: `documents` (embed), `prompts` / `requests` (generate), `conversations` / `requests` (chat). */
const INPUT_FIELDS = ['documents', 'prompts', 'conversations', 'requests'] as const;

interface RunBody {
  documents?: string[];
  prompts?: string[];
  conversations?: unknown[];
  requests?: unknown[];
  overrides?: JobControlBody & { model?: string; options?: Record<string, unknown>; metadata?: Record<string, unknown> };
}

/**
 * A template's options: an embed template's are checked against embedding options
 * (checkEmbedOptions), a generate/chat template's are model options plus `keep_alive`, checked
 * as the generate/chat submit checks them when it runs.
 */
const templateOptionsSchema = { type: 'object', additionalProperties: true } as const;

const EMBED_OPTION_KEYS = new Set(['truncate', 'dimensions', 'keep_alive']);

function checkEmbedOptions(options: Record<string, unknown> | undefined): void {
  if (options === undefined) return;
  const bad = (why: string): never => {
    throw new ApiError('INVALID_OPTIONS', `An embed template's options ${why}`);
  };
  for (const key of Object.keys(options)) if (!EMBED_OPTION_KEYS.has(key)) bad(`take truncate, dimensions and keep_alive only, not '${key}'`);
  if (options.truncate !== undefined && typeof options.truncate !== 'boolean') bad('need truncate to be a boolean');
  const dims = options.dimensions;
  if (dims !== undefined && !(Number.isInteger(dims) && (dims as number) >= 1 && (dims as number) <= 65536)) bad('need dimensions to be an integer in 1..65536');
  const keep = options.keep_alive;
  if (keep !== undefined && typeof keep !== 'string' && typeof keep !== 'number') bad('need keep_alive to be a duration string or a number');
}

const nameParams = { type: 'object', properties: { name: { type: 'string', description: 'The template name' } } } as const;

/** The embed job type's runner: `{documents}` in, a batch embedding job out. */
export function embedRunner(manager: JobManager): TemplateRunner {
  return async (scope, job, input) => {
    checkEmbedOptions({ ...job.options });
    const documents = input.documents;
    if (!Array.isArray(documents) || documents.length === 0 || !documents.every((d) => typeof d === 'string' && d.length > 0)) {
      throw new ApiError('NO_DOCUMENTS', 'An embed template runs on documents: a non-empty list of non-empty strings');
    }
    return manager.submit(scope, {
      model: job.model,
      documents: documents as string[],
      metadata: job.metadata,
      options: toEmbedOptions(job.options as Parameters<typeof toEmbedOptions>[0]),
      control: job.control,
    });
  };
}

/**
 * The generate and chat job types' runner: `{prompts | conversations | requests}` in, a batch
 * generate/chat job out, checked and stored as POST /api/batch/generate|chat would.
 */
export function generationRunner(manager: JobManager, kind: GenerationKind, maxBatchDocuments: number): TemplateRunner {
  const list = kind === 'generate' ? 'prompts' : 'conversations';
  return async (scope, job, input) => {
    // A generate template also takes `documents` as its prompts (autobatch queues documents).
    const aliased = kind === 'generate' && input.prompts === undefined && input.requests === undefined && input.documents !== undefined ? { prompts: input.documents } : input;
    const given = aliased[list] !== undefined ? list : aliased.requests !== undefined ? 'requests' : undefined;
    if (given === undefined) throw new ApiError('NO_DOCUMENTS', `A ${kind} template runs on '${list}' or 'requests'`);
    input = aliased;
    const { keep_alive: keepAlive, ...modelOptions } = job.options;
    const body = {
      model: job.model,
      [given]: input[given],
      metadata: job.metadata,
      ...(Object.keys(modelOptions).length > 0 ? { options: modelOptions } : {}),
      ...(keepAlive !== undefined ? { keep_alive: keepAlive } : {}),
    };
    return submitGeneration(manager, scope, kind, body, maxBatchDocuments, job.control);
  };
}

/** The run's input: whichever input fields the body gives. */
function inputOf(body: Partial<Record<(typeof INPUT_FIELDS)[number], unknown>>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const field of INPUT_FIELDS) if (body[field] !== undefined) input[field] = body[field];
  return input;
}

function checkMetadata(metadata: Record<string, unknown> | undefined): void {
  if (metadata === undefined) return;
  if (nestedDeeperThan(metadata)) throw new ApiError('INVALID_METADATA', `Field 'metadata' nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`);
  if (Buffer.byteLength(JSON.stringify(metadata)) > METADATA_MAX_BYTES) throw new ApiError('INVALID_METADATA', `Field 'metadata' is over ${METADATA_MAX_BYTES / 1024} KiB when serialized`);
}

export async function templateRoutes(app: FastifyInstance, options: { readonly templates: Templates; readonly maxBatchDocuments: number }): Promise<void> {
  const { templates } = options;
  const documents = { type: 'array', minItems: 1, maxItems: options.maxBatchDocuments, items: { type: 'string', minLength: 1 } } as const;
  const inputProperties = {
    documents,
    prompts: { ...documents, description: 'generate templates: the prompts' },
    conversations: { type: 'array', minItems: 1, maxItems: options.maxBatchDocuments, items: { type: 'array' }, description: 'chat templates: [[{role, content}]]' },
    requests: { type: 'array', minItems: 1, maxItems: options.maxBatchDocuments, items: { type: 'object' }, description: 'generate/chat templates: full requests' },
  } as const;

  app.post<{ Body: TemplateBody }>('/api/batch/templates', {
    schema: {
      tags,
      summary: 'Create a batch template (optionally with a cron schedule)',
      body: {
        type: 'object',
        required: ['name', 'model'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: TEMPLATE_NAME_PATTERN },
          job_type: { type: 'string', default: 'embed', description: `The job type its runs are (${templates.jobTypes.join(', ')})` },
          model: { type: 'string', minLength: 1, maxLength: 200 },
          options: templateOptionsSchema,
          metadata: { type: 'object', additionalProperties: true },
          priority: jobControlProperties.priority,
          callback_url: jobControlProperties.callback_url,
          schedule: { type: 'string', minLength: 1, maxLength: 200, description: 'A cron expression (UTC), e.g. "0 2 * * *": runs by itself with its fixed input' },
          // The fixed input of scheduled runs: documents (embed), prompts / conversations / requests (generate, chat).
          ...inputProperties,
        },
      },
      response: { 400: errorSchema, 409: errorSchema },
    },
  }, async (request, reply) => {
    const b = request.body;
    checkMetadata(b.metadata);
    if ((b.job_type ?? 'embed') === 'embed') checkEmbedOptions(b.options);
    const input = inputOf(b);
    const template = await templates.create(scopeOf(request), {
      name: b.name,
      jobType: b.job_type ?? 'embed',
      model: b.model,
      ...(b.options ? { options: b.options } : {}),
      ...(b.metadata ? { metadata: b.metadata } : {}),
      ...(b.priority ? { priority: b.priority } : {}),
      ...(b.callback_url !== undefined ? { callbackUrl: b.callback_url } : {}),
      ...(b.schedule !== undefined ? { schedule: b.schedule } : {}),
      ...(Object.keys(input).length > 0 ? { input } : {}),
    });
    reply.code(201);
    return templateView(template);
  });

  app.get('/api/batch/templates', {
    schema: { tags, summary: "This key's templates, by name" },
  }, async (request) => ({ templates: (await templates.list(scopeOf(request))).map(templateView) }));

  app.get<{ Params: { name: string } }>('/api/batch/templates/:name', {
    schema: { tags, summary: 'One template', params: nameParams, response: { 404: errorSchema } },
  }, async (request) => templateView(await templates.get(scopeOf(request), request.params.name)));

  app.delete<{ Params: { name: string } }>('/api/batch/templates/:name', {
    schema: { tags, summary: 'Delete a template (its past runs stay)', params: nameParams, response: { 404: errorSchema } },
  }, async (request) => templates.delete(scopeOf(request), request.params.name));

  app.post<{ Params: { name: string }; Body: RunBody }>('/api/batch/templates/:name/run', {
    schema: {
      tags,
      summary: "Run a template: a job with this input and the template's settings under the overrides",
      params: nameParams,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...inputProperties,
          overrides: {
            type: 'object',
            additionalProperties: false,
            properties: { model: { type: 'string', minLength: 1, maxLength: 200 }, options: templateOptionsSchema, metadata: { type: 'object', additionalProperties: true }, ...jobControlProperties },
          },
        },
      },
      response: { 400: errorSchema, 404: errorSchema },
    },
  }, async (request) => {
    const { overrides = {}, ...body } = request.body ?? {};
    const input = inputOf(body);
    checkMetadata(overrides.metadata);
    const control = controlFromBody(overrides);
    return templates.run(scopeOf(request), request.params.name, input, {
      ...(overrides.model ? { model: overrides.model } : {}),
      ...(overrides.options ? { options: overrides.options } : {}),
      ...(overrides.metadata ? { metadata: overrides.metadata } : {}),
      ...(control ? { control } : {}),
    });
  });
}
