/**
 * Everything one simulated node remembers between requests, and how a configuration
 * change propagates to the parts built from it.
 */

import { FailureDice, HangGate, RunnerClock, SerialGate } from './behaviour.js';
import { ModelCatalog, type ServedModel } from './models.js';
import { resolveSimOptions, type SimOptions } from './options.js';
import { SlotGate } from './slots.js';
import { SimCounters, type SimStats } from './stats.js';
import { VectorJsonCache } from './vectors.js';

const MIB = 1024 * 1024;

/** How long a used model stays listed in `/api/ps`: Ollama's default keep_alive. */
const KEEP_ALIVE_MS = 5 * 60 * 1000;

function buildCatalog(options: SimOptions): ModelCatalog {
  return new ModelCatalog(options.models, options.dims, options.rejectModels, options.acceptAnyModel);
}

export class SimState {
  #options: SimOptions;
  #catalog: ModelCatalog;
  readonly counters = new SimCounters();
  readonly gate: SerialGate;
  readonly hang = new HangGate();
  /** When calls on the runner are due (RunnerClock). */
  readonly clock = new RunnerClock();
  readonly dice: FailureDice;
  readonly cache: VectorJsonCache;
  /** Parallel generation slots (`generateParallel`). */
  readonly generation: SlotGate;
  /** Models used recently, by key, with when they "unload" (for `/api/ps`). */
  readonly #loaded = new Map<string, { model: ServedModel; until: number }>();

  constructor(options: SimOptions) {
    this.#options = options;
    this.#catalog = buildCatalog(options);
    this.gate = new SerialGate(options.serial);
    this.dice = new FailureDice(options.failureSeed);
    this.cache = new VectorJsonCache(options.cacheMb * MIB);
    this.generation = new SlotGate(options.generateParallel);
  }

  get options(): SimOptions {
    return this.#options;
  }

  get catalog(): ModelCatalog {
    return this.#catalog;
  }

  /** Applies a validated patch; throws SimConfigError and changes nothing when invalid. */
  configure(patch: unknown): SimOptions {
    const next = resolveSimOptions(patch, this.#options);
    const given = patch as Record<string, unknown>;
    this.#options = next;
    if ('models' in given || 'dims' in given || 'rejectModels' in given || 'acceptAnyModel' in given) {
      this.#catalog = buildCatalog(next);
    }
    if ('failureSeed' in given) this.dice.reseed(next.failureSeed);
    this.cache.resize(next.cacheMb * MIB);
    this.gate.setSerial(next.serial);
    this.generation.setSlots(next.generateParallel);
    if (!next.hang) this.hang.releaseAll();
    return next;
  }

  /** Marks a model as loaded; true when it was not, so the caller can report a load time. */
  touchModel(model: ServedModel): boolean {
    const wasLoaded = (this.#loaded.get(model.key)?.until ?? 0) > Date.now();
    this.#loaded.set(model.key, { model, until: Date.now() + KEEP_ALIVE_MS });
    return !wasLoaded;
  }

  loadedModels(): ServedModel[] {
    const now = Date.now();
    const loaded: ServedModel[] = [];
    for (const [key, entry] of this.#loaded) {
      if (entry.until > now) loaded.push(entry.model);
      else this.#loaded.delete(key);
    }
    return loaded;
  }

  stats(): SimStats {
    const c = this.counters;
    return {
      embedCalls: c.embedCalls,
      legacyEmbedCalls: c.legacyEmbedCalls,
      documents: c.documents,
      documentsByModel: Object.fromEntries(c.documentsByModel),
      inFlight: this.gate.running,
      maxInFlight: this.gate.maxRunning,
      queued: this.gate.waiting,
      maxQueued: this.gate.maxWaiting,
      hung: this.hang.parked,
      failures: c.failures,
      rejected: c.rejected,
      aborted: c.aborted,
      notFound: c.notFound,
      generateCalls: c.generateCalls,
      chatCalls: c.chatCalls,
      openaiChatCalls: c.openaiChatCalls,
      openaiCompletionCalls: c.openaiCompletionCalls,
      generatedTokens: c.generatedTokens,
      generating: this.generation.running,
      maxGenerating: this.generation.maxRunning,
      generateQueued: this.generation.waiting,
      cacheHits: this.cache.hits,
      cacheMisses: this.cache.misses,
      cacheBytes: this.cache.bytes,
      lastEmbed: c.lastEmbed,
      callSizes: [...c.callSizes],
      callFirstInputs: [...c.callFirstInputs],
      generationTexts: [...c.generationTexts],
    };
  }

  resetStats(): void {
    this.counters.reset();
    this.gate.resetMaxima();
    this.generation.resetMaxima();
    this.cache.hits = 0;
    this.cache.misses = 0;
  }
}
