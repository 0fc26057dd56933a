/**
 * The simulated node's model catalogue: name matching the way Ollama does it, and
 * the model metadata that `/api/tags`, `/api/ps` and `/api/show` report.
 */

import { createHash } from 'node:crypto';

/** One model the node serves. */
export interface ServedModel {
  /** Display name, always with a tag, as `/api/tags` lists it (`nomic-embed-text:latest`). */
  readonly name: string;
  /** Lower-cased display name: what requests are matched against and vectors seeded from. */
  readonly key: string;
  readonly dims: number;
  readonly family: string;
  readonly parameterSize: string;
  /** Bytes on disk; only reported, never allocated. */
  readonly size: number;
  readonly digest: string;
  /** Listed in `/api/tags` but answered 404 (see `SimOptions.rejectModels`). */
  readonly rejected: boolean;
}

/**
 * Canonical form of a model name: trimmed, lower-cased (Ollama compares names
 * case-insensitively) and tagged `:latest` when the last path segment has no tag,
 * so `x`, `X` and `x:latest` all name the same model.
 */
export function canonicalModelName(name: string): string {
  const trimmed = name.trim().toLowerCase();
  const lastSegment = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? trimmed : `${trimmed}:latest`;
}

function withTag(name: string): string {
  const trimmed = name.trim();
  const lastSegment = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? trimmed : `${trimmed}:latest`;
}

/** Real metadata for the usual embedding models, so `/api/tags` looks familiar. */
const KNOWN_FAMILIES: Readonly<Record<string, { family: string; parameterSize: string; size: number }>> = {
  'nomic-embed-text': { family: 'nomic-bert', parameterSize: '137M', size: 274_302_450 },
  'mxbai-embed-large': { family: 'bert', parameterSize: '334M', size: 669_615_493 },
  'all-minilm': { family: 'bert', parameterSize: '23M', size: 45_960_996 },
  'snowflake-arctic-embed': { family: 'bert', parameterSize: '334M', size: 669_603_712 },
  'bge-m3': { family: 'bert', parameterSize: '567M', size: 1_157_672_605 },
};

function describe(name: string, dims: number, rejected: boolean): ServedModel {
  const display = withTag(name);
  const key = display.toLowerCase();
  const base = key.slice(key.lastIndexOf('/') + 1).split(':')[0] ?? key;
  const known = KNOWN_FAMILIES[base];
  return {
    name: display,
    key,
    dims,
    family: known?.family ?? 'bert',
    parameterSize: known?.parameterSize ?? '100M',
    size: known?.size ?? 200_000_000,
    digest: createHash('sha256').update(`sollol-sim:${key}`).digest('hex'),
    rejected,
  };
}

/** Looks up served models; rebuilt whenever `models`, `dims` or `rejectModels` change. */
export class ModelCatalog {
  readonly #byKey = new Map<string, ServedModel>();
  /** Unknown models served because of `acceptAnyModel`, described once (sha256 is not free). */
  readonly #accepted = new Map<string, ServedModel>();
  readonly #acceptAny: boolean;
  readonly #defaultDims: number;

  constructor(
    models: Readonly<Record<string, number | null>>,
    defaultDims: number,
    rejectModels: readonly string[],
    acceptAnyModel: boolean,
  ) {
    const rejected = new Set(rejectModels.map(canonicalModelName));
    for (const [name, dims] of Object.entries(models)) {
      const model = describe(name, dims ?? defaultDims, rejected.has(canonicalModelName(name)));
      this.#byKey.set(model.key, model);
    }
    this.#acceptAny = acceptAnyModel;
    this.#defaultDims = defaultDims;
  }

  /** The model a request names, or undefined when the node must answer 404. */
  resolve(requested: string): ServedModel | undefined {
    const served = this.#byKey.get(canonicalModelName(requested));
    if (served) return served.rejected ? undefined : served;
    if (!this.#acceptAny) return undefined;
    const key = canonicalModelName(requested);
    let accepted = this.#accepted.get(key);
    if (!accepted) {
      accepted = describe(requested, this.#defaultDims, false);
      this.#accepted.set(key, accepted);
    }
    return accepted;
  }

  list(): ServedModel[] {
    return [...this.#byKey.values()];
  }
}

/** A fixed date: the catalogue is synthetic, and a constant keeps snapshots stable. */
const MODIFIED_AT = '2025-01-20T12:00:00.000000000Z';

function detailsJson(model: ServedModel): Record<string, unknown> {
  return {
    parent_model: '',
    format: 'gguf',
    family: model.family,
    families: [model.family],
    parameter_size: model.parameterSize,
    quantization_level: 'F16',
  };
}

/** Body of `GET /api/tags`. */
export function tagsBody(catalog: ModelCatalog): string {
  const models = catalog.list().map((model) => ({
    name: model.name,
    model: model.name,
    modified_at: MODIFIED_AT,
    size: model.size,
    digest: model.digest,
    details: detailsJson(model),
  }));
  return JSON.stringify({ models });
}

/** Body of `GET /api/ps`: the models used recently, as if still loaded. */
export function psBody(loaded: readonly ServedModel[], expiresAt: Date): string {
  const models = loaded.map((model) => ({
    name: model.name,
    model: model.name,
    size: model.size,
    digest: model.digest,
    details: detailsJson(model),
    expires_at: expiresAt.toISOString(),
    size_vram: model.size,
  }));
  return JSON.stringify({ models });
}

/** Body of `POST /api/show`: enough for a client to learn the embedding length. */
export function showBody(model: ServedModel, contextChars: number): string {
  return JSON.stringify({
    license: '',
    modelfile: `# Modelfile generated by the sollol simulated node\nFROM ${model.name}\n`,
    parameters: '',
    template: '{{ .Prompt }}',
    details: detailsJson(model),
    model_info: {
      'general.architecture': model.family,
      'general.parameter_count': 0,
      [`${model.family}.embedding_length`]: model.dims,
      [`${model.family}.context_length`]: Math.max(1, Math.floor(contextChars / 4)),
    },
    capabilities: ['embedding'],
    modified_at: MODIFIED_AT,
  });
}
