#!/usr/bin/env node
/** The `sollol` command: one sub-command per file in this folder. */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { embedCommand } from './embed.js';
import { hashKeyCommand } from './hashKey.js';
import { cancelCommand, jobsCommand, resultsCommand, statusCommand, waitCommand } from './jobs.js';
import { simCommand } from './sim.js';
import { upCommand } from './up.js';
import { workerCommand } from './worker.js';

const program = new Command('sollol')
  .description('Batch embedding gateway in front of Ollama and other embedding servers')
  .version(VERSION)
  .showHelpAfterError('(add --help for the list of commands and flags)')
  .addCommand(upCommand())
  .addCommand(workerCommand())
  .addCommand(simCommand())
  .addCommand(hashKeyCommand())
  .addCommand(embedCommand())
  .addCommand(jobsCommand())
  .addCommand(statusCommand())
  .addCommand(waitCommand())
  .addCommand(cancelCommand())
  .addCommand(resultsCommand());

await program.parseAsync(process.argv);
