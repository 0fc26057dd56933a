#!/usr/bin/env node
/**
 * The `sollol` command: one sub-command per file in this folder. The client commands (embed,
 * jobs, status, wait, cancel, results) load only the client: the gateway's modules (fastify,
 * SQLite, BullMQ, the embedded model) would add about 50 MB to a process that needs none of them.
 */
import { Command } from 'commander';
import { VERSION } from '../version.js';

const CLIENT_COMMANDS: ReadonlySet<string> = new Set(['embed', 'jobs', 'status', 'wait', 'cancel', 'results']);

const program = new Command('sollol')
  .description('Batch embedding gateway in front of Ollama and other embedding servers')
  .version(VERSION)
  .showHelpAfterError('(add --help for the list of commands and flags)');

const sub = process.argv[2];
if (sub === undefined || !CLIENT_COMMANDS.has(sub)) {
  const [{ upCommand }, { workerCommand }, { simCommand }, { hashKeyCommand }] = await Promise.all([
    import('./up.js'),
    import('./worker.js'),
    import('./sim.js'),
    import('./hashKey.js'),
  ]);
  program.addCommand(upCommand()).addCommand(workerCommand()).addCommand(simCommand()).addCommand(hashKeyCommand());
}
const [{ embedCommand }, jobs] = await Promise.all([import('./embed.js'), import('./jobs.js')]);
program
  .addCommand(embedCommand())
  .addCommand(jobs.jobsCommand())
  .addCommand(jobs.statusCommand())
  .addCommand(jobs.waitCommand())
  .addCommand(jobs.cancelCommand())
  .addCommand(jobs.resultsCommand());

await program.parseAsync(process.argv);
