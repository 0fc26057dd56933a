/**
 * The job commands of the client CLI: `sollol jobs`, `sollol status ID`, `sollol wait ID`,
 * `sollol cancel ID`, `sollol results ID -o FILE`. Same gateway and key flags as `sollol embed`;
 * same exit codes (0 fine, 3 some items failed, 1 error, 2 bad usage).
 */
import { Command } from 'commander';
import { withRetries, type RetryPolicy } from '../client/client.js';
import type { JobStatus, JobView } from '../client/types.js';
import { outputFormatOf, OutputWriter, EMPTY_MARK } from './embed/output.js';
import { fmt, Progress } from './embed/progress.js';
import { clientFrom, EXIT, gatewayWaitMs, positiveInt, stopped, usage, withGatewayFlags, type GatewayFlags } from './gatewayFlags.js';

const STATUSES: readonly JobStatus[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

function policyOf(flags: GatewayFlags): RetryPolicy {
  return { maxWaitMs: gatewayWaitMs(flags), onRetry: (error, delay) => process.stderr.write(`sollol: ${error.message}; retrying in ${(delay / 1000).toFixed(1)} s\n`) };
}

/** Exit code of a finished job: 0 everything embedded, 3 some items failed, 1 failed or cancelled. */
export function exitCodeOf(job: JobView): number {
  if (job.status === 'completed') return job.progress.failed_items > 0 ? EXIT.itemsFailed : EXIT.ok;
  return EXIT.error;
}

export function jobsCommand(): Command {
  return withGatewayFlags(new Command('jobs'))
    .description('List jobs, newest first')
    .option('--limit <n>', 'most jobs (1-1000)', '20')
    .option('--status <status>', `only jobs in this state (${STATUSES.join(', ')})`)
    .option('--json', 'print the answer as JSON')
    .action(async (flags: GatewayFlags & { limit: string; status?: string; json?: boolean }) => {
      const limit = positiveInt('--limit', flags.limit, 20);
      if (flags.status !== undefined && !STATUSES.includes(flags.status as JobStatus)) usage(`--status must be one of ${STATUSES.join(', ')}`);
      const client = clientFrom(flags);
      try {
        const answer = await withRetries(() => client.list({ limit, ...(flags.status ? { status: flags.status as JobStatus } : {}) }), policyOf(flags));
        if (flags.json) return void process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        const rows = answer.jobs.map((j) => [j.job_id, j.status, `${fmt(j.progress.completed_items + j.progress.failed_items)}/${fmt(j.progress.total_items)}`, fmt(j.progress.failed_items), j.model, j.created_at]);
        printTable(['job_id', 'status', 'done', 'failed', 'model', 'created_at'], rows);
        process.stdout.write(`${fmt(answer.jobs.length)} of ${fmt(answer.total)} jobs\n`);
      } catch (error) {
        stopped(error);
      }
    });
}

export function statusCommand(): Command {
  return withGatewayFlags(new Command('status'))
    .description('Print a job\'s status (JSON)')
    .argument('<job_id>')
    .action(async (id: string, flags: GatewayFlags) => {
      const client = clientFrom(flags);
      try {
        const job = await withRetries(() => client.status(id), policyOf(flags));
        process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
      } catch (error) {
        stopped(error);
      }
    });
}

export function waitCommand(): Command {
  return withGatewayFlags(new Command('wait'))
    .description('Follow a job\'s progress until it ends (exit 0 completed, 3 some items failed, 1 failed or cancelled)')
    .argument('<job_id>')
    .action(async (id: string, flags: GatewayFlags) => {
      const client = clientFrom(flags);
      const progress = new Progress(`job ${id.slice(0, 8)}`);
      try {
        const final = await client.wait(id, {
          ...policyOf(flags),
          onEvent: (event) => {
            const d = event.data as Record<string, any>;
            const p = d.progress ?? d;
            progress.update({ done: p.completed_items + p.failed_items, failed: p.failed_items, total: p.total_items });
          },
        });
        progress.stop();
        process.stderr.write(`sollol: job ${final.job_id} ${final.status}: ${fmt(final.progress.completed_items)} of ${fmt(final.progress.total_items)} embedded, ${fmt(final.progress.failed_items)} failed\n`);
        process.exitCode = exitCodeOf(final);
      } catch (error) {
        progress.stop();
        stopped(error);
      }
    });
}

export function cancelCommand(): Command {
  return withGatewayFlags(new Command('cancel'))
    .description('Cancel a pending or running job')
    .argument('<job_id>')
    .action(async (id: string, flags: GatewayFlags) => {
      const client = clientFrom(flags);
      try {
        const answer = await withRetries(() => client.cancel(id), policyOf(flags));
        process.stdout.write(`${answer.job_id} cancelled\n`);
      } catch (error) {
        stopped(error);
      }
    });
}

export function resultsCommand(): Command {
  return withGatewayFlags(new Command('results'))
    .description('Download a finished job\'s results into FILE (.jsonl or .npy; ids are the documents\' 0-based indexes), failed items into FILE.errors.jsonl')
    .argument('<job_id>')
    .option('-o, --output <file>', 'the file: .jsonl or .npy')
    .option('--follow', 'start before the job has finished: items are written as they finish')
    .action(async (id: string, flags: GatewayFlags & { output?: string; follow?: boolean }) => {
      if (!flags.output) usage('missing -o/--output FILE (.jsonl or .npy)');
      const format = outputFormatOf(flags.output);
      if (!format) usage(`cannot tell the output format of "${flags.output}": name it .jsonl or .npy`);
      const client = clientFrom(flags);
      const policy = policyOf(flags);
      try {
        if (!flags.follow) await withRetries(() => client.wait(id, policy), policy).then((job) => job);
        const writer = await OutputWriter.open(flags.output, format, EMPTY_MARK);
        let written = 0;
        let failed = 0;
        await withRetries(async (progressed) => {
          for await (const item of client.results(id, { offset: written, follow: flags.follow === true })) {
            if (item.embedding) await writer.addVector(item.index, item.index, item.embedding);
            else {
              await writer.addError(item.index, item.index, item.code, item.error);
              failed++;
            }
            written++;
            progressed();
          }
        }, policy);
        await writer.close();
        process.stderr.write(`sollol: wrote ${fmt(written - failed)} vectors to ${flags.output}${failed > 0 ? `; ${fmt(failed)} failed, listed in ${writer.errorsPath}` : ''}\n`);
        process.exitCode = failed > 0 ? EXIT.itemsFailed : EXIT.ok;
      } catch (error) {
        stopped(error);
      }
    });
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}
