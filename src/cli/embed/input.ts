/**
 * The documents of `sollol embed`'s INPUT, read as a stream (memory stays bounded whatever the
 * input's size): a text file (one document per line), JSONL (`--text-field`, `--id-field`),
 * CSV or TSV with a header row (`--text-column`, `--id-column`, parsed by csv-parse), or `-`
 * for stdin. Every record is yielded, blank ones too (the caller skips and counts them).
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { textLines } from '../../client/lines.js';

export type InputFormat = 'text' | 'jsonl' | 'csv' | 'tsv';

export interface InputRecord {
  /** 1-based line number of the record (for CSV, the line its record starts on). */
  readonly line: number;
  readonly text: string;
  /** From the id field or column when the record has one. */
  readonly id: string | number | undefined;
}

export interface InputSpec {
  readonly path: string;
  readonly format: InputFormat;
  readonly textField: string;
  readonly idField: string;
  readonly textColumn: string;
  readonly idColumn: string | undefined;
}

/** A problem with the input's content (exit 1: the run stopped), with where it is. */
export class InputError extends Error {}

export function formatFromPath(path: string): InputFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.tsv') || lower.endsWith('.tab')) return 'tsv';
  return 'text';
}

function open(path: string): Readable {
  return path === '-' ? process.stdin : fs.createReadStream(path);
}

export function isBlank(text: string): boolean {
  return text.trim() === '';
}

export async function* readInput(spec: InputSpec): AsyncGenerator<InputRecord> {
  if (spec.format === 'csv' || spec.format === 'tsv') {
    yield* readTable(spec);
    return;
  }
  // Lines pulled from the stream as they are consumed (readline's async iterator would read
  // ahead without bound while the consumer waits on the gateway).
  let line = 0;
  for await (const rawLine of textLines(open(spec.path))) {
    const raw = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    line++;
    if (spec.format === 'text') {
      yield { line, text: raw, id: undefined };
      continue;
    }
    if (isBlank(raw)) {
      yield { line, text: '', id: undefined };
      continue;
    }
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (error) {
      throw new InputError(`${spec.path} line ${line}: not JSON (${(error as Error).message})`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new InputError(`${spec.path} line ${line}: not a JSON object`);
    const fields = record as Record<string, unknown>;
    const text = fields[spec.textField];
    if (text === undefined || text === null) {
      yield { line, text: '', id: idOf(fields[spec.idField]) };
      continue;
    }
    if (typeof text !== 'string') throw new InputError(`${spec.path} line ${line}: field '${spec.textField}' is not a string`);
    yield { line, text, id: idOf(fields[spec.idField]) };
  }
}

function idOf(value: unknown): string | number | undefined {
  if (typeof value === 'string' || typeof value === 'number') return value;
  return undefined;
}

async function* readTable(spec: InputSpec): AsyncGenerator<InputRecord> {
  const parser = open(spec.path).pipe(parse({
    delimiter: spec.format === 'tsv' ? '\t' : ',',
    columns: true,
    info: true,
    relax_column_count: true,
    bom: true,
    skip_empty_lines: false,
    ...(spec.format === 'tsv' ? { quote: false } : {}),
  }));
  let checked = false;
  for await (const entry of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    const { record, info } = entry;
    if (!checked) {
      checked = true;
      const columns = Object.keys(record);
      if (!columns.includes(spec.textColumn)) throw new InputError(`${spec.path}: no column '${spec.textColumn}' (columns: ${columns.join(', ')}); choose one with --text-column`);
      if (spec.idColumn !== undefined && !columns.includes(spec.idColumn)) throw new InputError(`${spec.path}: no column '${spec.idColumn}' (columns: ${columns.join(', ')})`);
    }
    const idColumn = spec.idColumn ?? (record.id !== undefined ? 'id' : undefined);
    const id = idColumn !== undefined ? record[idColumn] : undefined;
    yield { line: info.lines, text: record[spec.textColumn] ?? '', id: id === undefined || id === '' ? undefined : id };
  }
}

/** Lines of a file, counted fast (for the progress bar's total before the documents are read); undefined for stdin. */
export async function countLines(path: string): Promise<number | undefined> {
  if (path === '-') return undefined;
  let count = 0;
  let last = 10;
  for await (const chunk of fs.createReadStream(path) as AsyncIterable<Buffer>) {
    let at = -1;
    while ((at = chunk.indexOf(10, at + 1)) >= 0) count++;
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  return last === 10 ? count : count + 1;
}
