/**
 * Batch templates: a named job recipe per owner (job type, model, options, metadata,
 * priority, callback_url) that `POST /api/batch/templates/{name}/run` turns into a job with
 * the caller's input and overrides. A template with `schedule` (a cron expression, UTC, parsed
 * by croner) also runs by itself on that schedule with its fixed input; the background task
 * (background.ts) claims each due run atomically (the store's compare-and-set on the next run
 * time), so a run happens once even with several gateways, and a restart carries on. Every run
 * is an ordinary job whose status and list entry carry `template`.
 *
 * Job types plug in as runners (`TemplateRunner`): `embed`, `generate` and `chat` (http/routes/templates.ts).
 */
import { Cron } from 'croner';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ControlStore, Template } from '../store/control.js';
import type { BackgroundTasks } from './background.js';
import type { SubmitAnswer } from './manager.js';
import type { Scope } from './model.js';
import { DEFAULT_PRIORITY, type Priority } from './priority.js';
import type { SubmitControl } from './scheduling.js';

export const TEMPLATE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const NAME = new RegExp(TEMPLATE_NAME_PATTERN);
const TICK_MS = 1000;

export interface TemplateRequest {
  readonly name: string;
  readonly jobType: string;
  readonly model: string;
  readonly options?: Readonly<Record<string, unknown>>;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly priority?: Priority;
  readonly callbackUrl?: string;
  readonly schedule?: string;
  readonly input?: Readonly<Record<string, unknown>>;
}

export interface RunOverrides {
  readonly model?: string;
  readonly options?: Readonly<Record<string, unknown>>;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly control?: SubmitControl;
}

/** Submits one job of a template's type: the input (e.g. `{documents}`) and the merged settings. */
export type TemplateRunner = (
  scope: Scope,
  job: { model: string; options: Readonly<Record<string, unknown>>; metadata: Readonly<Record<string, unknown>>; control: SubmitControl },
  input: Readonly<Record<string, unknown>>,
) => Promise<SubmitAnswer>;

/** The next run after `after` of a cron expression (UTC); throws INVALID_SCHEDULE for a bad one. */
export function nextRun(schedule: string, after: number): number | null {
  let cron: Cron;
  try {
    cron = new Cron(schedule, { paused: true, timezone: 'UTC' });
  } catch (error) {
    throw new ApiError('INVALID_SCHEDULE', `Field 'schedule' is not a cron expression: ${(error as Error).message}`);
  }
  return cron.nextRun(new Date(after))?.getTime() ?? null;
}

export class Templates {
  constructor(
    private readonly control: ControlStore,
    private readonly runners: Readonly<Record<string, TemplateRunner>>,
    private readonly checkCallback: (owner: string, url: string) => void,
    private readonly log: Logger,
  ) {}

  get jobTypes(): string[] {
    return Object.keys(this.runners);
  }

  async create(scope: Scope, request: TemplateRequest): Promise<Template> {
    const owner = ownerOf(scope);
    if (!NAME.test(request.name)) throw new ApiError('INVALID_TEMPLATE', "Field 'name' must be 1-64 letters, digits or ._- starting with a letter or digit");
    if (!this.runners[request.jobType]) throw new ApiError('INVALID_TEMPLATE', `job_type '${request.jobType}' is not one of ${this.jobTypes.join(', ')}`);
    if (request.callbackUrl !== undefined) this.checkCallback(owner, request.callbackUrl);
    const now = Date.now();
    let nextRunAt: number | null = null;
    if (request.schedule !== undefined) {
      if (request.input === undefined) throw new ApiError('INVALID_TEMPLATE', 'A template with a schedule needs the input its runs take (e.g. documents)');
      nextRunAt = nextRun(request.schedule, now);
    }
    const template: Template = {
      owner,
      name: request.name,
      jobType: request.jobType,
      model: request.model,
      options: request.options ?? {},
      metadata: request.metadata ?? {},
      priority: request.priority ?? DEFAULT_PRIORITY,
      callbackUrl: request.callbackUrl ?? null,
      schedule: request.schedule ?? null,
      input: request.input ?? null,
      createdAt: now,
      nextRunAt,
    };
    if (!(await this.control.putTemplate(template))) throw new ApiError('TEMPLATE_EXISTS', `A template named '${request.name}' already exists; delete it first to replace it`);
    this.log.info({ template: template.name, owner, schedule: template.schedule }, 'template created');
    return template;
  }

  list(scope: Scope): Promise<Template[]> {
    return this.control.templates(ownerOf(scope));
  }

  async get(scope: Scope, name: string): Promise<Template> {
    const template = await this.control.template(ownerOf(scope), name);
    if (!template) throw new ApiError('TEMPLATE_NOT_FOUND', `Template '${name}' not found`);
    return template;
  }

  async delete(scope: Scope, name: string): Promise<{ name: string; deleted: true }> {
    if (!(await this.control.deleteTemplate(ownerOf(scope), name))) throw new ApiError('TEMPLATE_NOT_FOUND', `Template '${name}' not found`);
    return { name, deleted: true };
  }

  /** One run: a job of the template's type with this input, the template's settings under the overrides. */
  async run(scope: Scope, name: string, input: Readonly<Record<string, unknown>>, overrides: RunOverrides = {}): Promise<SubmitAnswer & { template: string }> {
    const template = await this.get(scope, name);
    return this.runTemplate(scope, template, input, overrides);
  }

  private async runTemplate(scope: Scope, template: Template, input: Readonly<Record<string, unknown>>, overrides: RunOverrides): Promise<SubmitAnswer & { template: string }> {
    const runner = this.runners[template.jobType];
    if (!runner) throw new ApiError('INVALID_TEMPLATE', `Template '${template.name}' has job_type '${template.jobType}', which this gateway cannot run`);
    const callbackUrl = overrides.control?.callbackUrl ?? template.callbackUrl ?? undefined;
    const control: SubmitControl = {
      priority: template.priority,
      ...overrides.control,
      ...(callbackUrl !== undefined ? { callbackUrl } : {}),
      template: template.name,
    };
    const answer = await runner(scope, {
      model: overrides.model ?? template.model,
      options: { ...template.options, ...overrides.options },
      metadata: { ...template.metadata, ...overrides.metadata },
      control,
    }, input);
    return { ...answer, template: template.name };
  }

  start(tasks: BackgroundTasks): void {
    tasks.every('template-schedules', TICK_MS, () => this.runDue(Date.now()));
  }

  /** Runs every scheduled template that is due, once each (claimed by moving its next run on first). */
  async runDue(now: number): Promise<void> {
    for (const template of await this.control.dueTemplates(now)) {
      const due = template.nextRunAt!;
      const next = nextRun(template.schedule!, Math.max(now, due));
      if (!(await this.control.advanceTemplate(template.owner, template.name, due, next))) continue;
      try {
        const answer = await this.runTemplate({ kind: 'owner', owner: template.owner }, template, template.input ?? {}, {});
        this.log.info({ template: template.name, owner: template.owner, job_id: answer.job_id }, 'scheduled template run');
      } catch (error) {
        this.log.warn({ template: template.name, owner: template.owner, err: error instanceof Error ? error.message : error }, 'scheduled template run refused; next run as scheduled');
      }
    }
  }
}

function ownerOf(scope: Scope): string {
  return scope.owner ?? 'admin';
}

/** A template as the API shows it. */
export function templateView(t: Template) {
  return {
    name: t.name,
    job_type: t.jobType,
    model: t.model,
    options: t.options,
    metadata: t.metadata,
    priority: t.priority,
    callback_url: t.callbackUrl,
    schedule: t.schedule,
    next_run_at: t.nextRunAt === null ? null : new Date(t.nextRunAt).toISOString().replace('Z', '+00:00'),
    ...(t.input !== null ? { input: t.input } : {}),
    created_at: new Date(t.createdAt).toISOString().replace('Z', '+00:00'),
  };
}
