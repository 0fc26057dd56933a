/**
 * The state file of `sollol embed` (OUTPUT.sollol-state.json): which ranges of documents are
 * written (and each output file's length after them), and the job of every range submitted
 * but not written yet. Written atomically (temp file + rename) after each change, so a rerun
 * after a crash (kill -9 included) continues where the last one stood: written ranges are not
 * embedded again, submitted ones are followed, not submitted again.
 */
import fs from 'node:fs';
import type { OutputMark } from './output.js';

export const STATE_VERSION = 1;

/** What must be the same for a rerun to continue a run. */
export interface RunSignature {
  input: { path: string; size: number; mtimeMs: number } | { stdin: true };
  model: string;
  inputFormat: string;
  textField: string;
  idField: string;
  textColumn: string;
  idColumn: string | null;
  output: string;
  options: Record<string, unknown>;
}

export interface EmbedState {
  version: number;
  run: RunSignature;
  batchSize: number;
  /** Ranges [0, writtenBatches * batchSize) of the documents are in the output files. */
  writtenBatches: number;
  writtenDocuments: number;
  failedDocuments: number;
  mark: OutputMark;
  /** Batch number -> its current job (the last retry's), for ranges not written yet. */
  jobs: Record<string, string>;
  /**
   * This run's id, part of every submit's Idempotency-Key: a rerun of the same run (a resume)
   * finds the jobs it submitted, another run of the same command (after one finished, or with
   * --restart) is not answered with those jobs, which are deleted once written. Absent in
   * state files of earlier versions (their keys are kept as they were).
   */
  runId?: string;
  /** For people reading the file: the document index ranges written, [start, end). */
  finishedRanges: [number, number][];
  updatedAt: string;
}

export function statePathOf(output: string): string {
  return `${output}.sollol-state.json`;
}

export function loadState(path: string): EmbedState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const state = JSON.parse(text) as EmbedState;
  if (state.version !== STATE_VERSION) throw new Error(`${path} was written by another version of sollol; delete it (or pass --restart) to start over`);
  return state;
}

/** Differences between two signatures, as "model: a -> b" lines. */
export function signatureChanges(before: RunSignature, now: RunSignature): string[] {
  const a = JSON.stringify(before.input);
  const b = JSON.stringify(now.input);
  const out: string[] = [];
  if (a !== b) out.push('the input file changed (size or modification time)');
  for (const key of ['model', 'inputFormat', 'textField', 'idField', 'textColumn', 'idColumn', 'output'] as const) {
    if (before[key] !== now[key]) out.push(`${key}: ${String(before[key])} -> ${String(now[key])}`);
  }
  if (JSON.stringify(before.options) !== JSON.stringify(now.options)) out.push('embedding options changed');
  return out;
}

/** Saves one snapshot at a time, in order: concurrent batches never interleave their writes. */
export class StateFile {
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string, readonly state: EmbedState) {}

  save(): Promise<void> {
    const json = JSON.stringify({ ...this.state, updatedAt: new Date().toISOString() }, null, 1);
    this.chain = this.chain.then(async () => {
      const temp = `${this.path}.tmp`;
      await fs.promises.writeFile(temp, json);
      await fs.promises.rename(temp, this.path);
    });
    return this.chain;
  }

  async remove(): Promise<void> {
    await this.chain;
    await fs.promises.rm(this.path, { force: true });
  }
}
