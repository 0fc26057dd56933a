/**
 * `sollol sim`: runs the simulated Ollama node, a test tool, from the command line
 * (for trying the gateway by hand, or benchmarks driven from a shell).
 */

import { Command, InvalidArgumentError, Option } from 'commander';
import { SIM_OLLAMA_VERSION, startSimNode, type SimListenOptions, type SimNode } from '../sim/server.js';
import { SIM_BAD_VECTORS, SIM_POISON_ERRORS, type SimBadVector, type SimModels, type SimOptions, type SimPoisonError } from '../sim/options.js';

/** The default set when no `--model` is given: one model per common embedding size. */
const DEFAULT_MODELS: SimModels = { 'nomic-embed-text': null, 'mxbai-embed-large': 1024, 'all-minilm': 384 };

function integerIn(min: number, max: number, what: string): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`Expected ${what} (an integer from ${min} to ${max}).`);
    }
    return parsed;
  };
}

function milliseconds(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0 || parsed > 2_147_483_647) {
    throw new InvalidArgumentError('Expected a number of milliseconds >= 0.');
  }
  return parsed;
}

function fraction(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !(parsed >= 0 && parsed <= 1)) throw new InvalidArgumentError('Expected a number from 0 to 1.');
  return parsed;
}

const parseDims = integerIn(1, 65_536, 'a dimension');

/**
 * `NAME[:DIMS]` or `NAME=DIMS`. A trailing all-digit `:` part is read as dimensions,
 * since embedding model tags are rarely pure numbers; `=` is there for when one is.
 */
export function parseModelFlag(value: string, previous: Record<string, number | null> | undefined): Record<string, number | null> {
  const models = { ...previous };
  const equals = value.lastIndexOf('=');
  const colon = value.lastIndexOf(':');
  let name = value;
  let dims: number | null = null;
  if (equals >= 0) {
    name = value.slice(0, equals);
    dims = parseDims(value.slice(equals + 1));
  } else if (colon >= 0 && /^\d+$/.test(value.slice(colon + 1))) {
    name = value.slice(0, colon);
    dims = parseDims(value.slice(colon + 1));
  }
  if (name.trim() === '') throw new InvalidArgumentError('Expected NAME[:DIMS] with a non-empty NAME.');
  models[name.trim()] = dims;
  return models;
}

interface SimFlags {
  port: number;
  host: string;
  dims: number;
  model?: Record<string, number | null>;
  delayPerCall: number;
  delayPerDoc: number;
  serial: boolean;
  failureRate: number;
  failureSeed?: number;
  hang: boolean;
  legacyOnly: boolean;
  acceptAnyModel: boolean;
  maxInputChars: number;
  cacheMb: number;
  poison?: string;
  badVector: SimBadVector;
  poisonError: SimPoisonError;
  generateParallel: number;
  delayPerToken: number;
  replyTokens?: number;
}

function toOptions(flags: SimFlags): Partial<SimOptions> & SimListenOptions {
  return {
    port: flags.port,
    host: flags.host,
    dims: flags.dims,
    models: flags.model ?? DEFAULT_MODELS,
    delayPerCallMs: flags.delayPerCall,
    delayPerDocMs: flags.delayPerDoc,
    serial: flags.serial,
    failureRate: flags.failureRate,
    failureSeed: flags.failureSeed ?? null,
    hang: flags.hang,
    legacyOnly: flags.legacyOnly,
    acceptAnyModel: flags.acceptAnyModel,
    maxInputChars: flags.maxInputChars,
    cacheMb: flags.cacheMb,
    poison: flags.poison ?? null,
    badVector: flags.badVector,
    poisonError: flags.poisonError,
    generateParallel: flags.generateParallel,
    delayPerTokenMs: flags.delayPerToken,
    replyTokens: flags.replyTokens ?? null,
  };
}

/** Closes the node on the first SIGINT/SIGTERM; the process then exits on its own. */
function stopOnSignal(node: SimNode): void {
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    node.close().then(
      () => {
        process.exitCode = 0;
      },
      (error: unknown) => {
        process.stderr.write(`sollol sim: error while closing: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function run(flags: SimFlags): Promise<void> {
  const options = toOptions(flags);
  const node = await startSimNode(options);
  const names = Object.keys(options.models ?? {}).join(', ');
  console.log(`sollol sim (test tool, simulated Ollama ${SIM_OLLAMA_VERSION}) listening on ${node.url} serving ${names}`);
  stopOnSignal(node);
}

export function simCommand(): Command {
  return new Command('sim')
    .description(
      'Run a simulated Ollama node (a test tool, not a real model): deterministic vectors, configurable delays and failures',
    )
    .addOption(new Option('--port <port>', 'port to listen on (0 picks a free one)').default(11435).argParser(integerIn(0, 65_535, 'a port')))
    .addOption(new Option('--host <host>', 'interface to bind').default('127.0.0.1'))
    .addOption(new Option('--dims <n>', 'dimensions of models given without their own').default(768).argParser(parseDims))
    .addOption(
      new Option('--model <name[:dims]>', 'serve this model, repeatable (default: nomic-embed-text, mxbai-embed-large:1024, all-minilm:384)').argParser(
        parseModelFlag,
      ),
    )
    .addOption(new Option('--delay-per-call <ms>', 'fixed time each embed call takes').default(0).argParser(milliseconds))
    .addOption(new Option('--delay-per-doc <ms>', 'extra time per input of an embed call').default(0).argParser(milliseconds))
    .addOption(new Option('--serial', 'handle one embed call at a time, queueing the others (as Ollama does)').default(false))
    .addOption(new Option('--failure-rate <f>', 'fraction (0..1) of embed calls answered 500').default(0).argParser(fraction))
    .addOption(new Option('--failure-seed <n>', 'seed making the failures reproducible').argParser(integerIn(0, Number.MAX_SAFE_INTEGER, 'a seed')))
    .addOption(new Option('--hang', 'accept model calls and never answer them').default(false))
    .addOption(new Option('--legacy-only', 'no /api/embed, only the legacy /api/embeddings (Ollama < 0.3)').default(false))
    .addOption(new Option('--accept-any-model', 'serve any model name instead of answering 404').default(false))
    .addOption(
      new Option('--max-input-chars <n>', 'longest input the context takes (longer: cut, or 400 with truncate:false)')
        .default(8192)
        .argParser(integerIn(1, Number.MAX_SAFE_INTEGER, 'a character count')),
    )
    .addOption(
      new Option('--cache-mb <mb>', 'memory for serialised vectors, so repeated texts cost nothing (0: off)')
        .default(256)
        .argParser(integerIn(0, 1_048_576, 'a size in MiB')),
    )
    .addOption(new Option('--poison <text>', 'documents containing this text are poisoned (default: every document, when a bad shape or error is set)'))
    .addOption(new Option('--bad-vector <shape>', 'answer poisoned documents with this bad vector').choices(SIM_BAD_VECTORS).default('none'))
    .addOption(new Option('--poison-error <kind>', 'fail every call holding a poisoned document').choices(SIM_POISON_ERRORS).default('none'))
    .addOption(
      new Option('--generate-parallel <n>', 'generations run at once (like OLLAMA_NUM_PARALLEL); more wait in order')
        .default(1)
        .argParser(integerIn(1, 1024, 'a slot count')),
    )
    .addOption(new Option('--delay-per-token <ms>', 'time each generated token takes').default(0).argParser(milliseconds))
    .addOption(new Option('--reply-tokens <n>', 'tokens in every reply (default: a fixed sentence)').argParser(integerIn(1, 100_000, 'a token count')))
    .action(async (flags: SimFlags, command: Command) => {
      try {
        await run(flags);
      } catch (error) {
        // A port in use or an unknown host: one line and a non-zero exit, like a bad flag.
        command.error(`error: cannot start the simulated node: ${(error as Error).message}`);
      }
    });
}
