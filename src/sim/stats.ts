/**
 * What the simulated node counts, so tests can assert on what the gateway actually
 * sent (how many calls, how batched, whether it retried or fell back).
 */

/** The parameters of the most recent embed call, to check what a gateway forwards. */
export interface LastEmbedCall {
  readonly endpoint: '/api/embed' | '/api/embeddings';
  readonly model: string;
  readonly inputs: number;
  readonly truncate: boolean | null;
  readonly dimensions: number | null;
  readonly keepAlive: string | number | null;
  readonly options: Readonly<Record<string, unknown>> | null;
}

/** Counters since start or the last reset, plus live gauges (which a reset leaves alone). */
export interface SimStats {
  /** `POST /api/embed` calls received, answered or not. */
  readonly embedCalls: number;
  /** `POST /api/embeddings` (legacy) calls received. */
  readonly legacyEmbedCalls: number;
  /** Inputs embedded and answered 200, over both endpoints. */
  readonly documents: number;
  /** The same, per model display name. */
  readonly documentsByModel: Readonly<Record<string, number>>;
  /** Gauge: embed calls admitted to the runner and not yet answered (hung ones included). */
  readonly inFlight: number;
  /** Highest `inFlight` seen. */
  readonly maxInFlight: number;
  /** Gauge: embed calls waiting for the runner in serial mode. */
  readonly queued: number;
  /** Highest `queued` seen. */
  readonly maxQueued: number;
  /** Gauge: model calls parked by `hang`. */
  readonly hung: number;
  /** Embed calls answered 500 by `failureRate`. */
  readonly failures: number;
  /** Calls answered 4xx with an Ollama error body (bad JSON, unknown model, too long...). */
  readonly rejected: number;
  /** Calls whose client went away (or node closed) before the answer. */
  readonly aborted: number;
  /** Requests answered `404 page not found` (unknown path, or `/api/embed` when legacyOnly). */
  readonly notFound: number;
  readonly generateCalls: number;
  readonly chatCalls: number;
  /** `POST /v1/chat/completions` and `POST /v1/completions` calls received. */
  readonly openaiChatCalls: number;
  readonly openaiCompletionCalls: number;
  /** Tokens generated over every generation route. */
  readonly generatedTokens: number;
  /** Gauge: generations running now (at most `generateParallel`). */
  readonly generating: number;
  /** Highest `generating` seen. */
  readonly maxGenerating: number;
  /** Gauge: generations waiting for a parallel slot. */
  readonly generateQueued: number;
  /** Vector cache hits and misses, over both embed endpoints. */
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /**
   * Gauge: bytes of the serialised vectors the cache answers for (see `SimOptions.cacheMb`);
   * a text met only once is held as its length, its vector rebuilt if it comes again.
   */
  readonly cacheBytes: number;
  readonly lastEmbed: LastEmbedCall | null;
  /** Inputs of each `/api/embed` call, oldest first (the last 1000), e.g. to see a bisection. */
  readonly callSizes: readonly number[];
  /** The first input of each of those calls (its first 80 characters), in the same order: which job the gateway served when. */
  readonly callFirstInputs: readonly string[];
  /** The text of each generation as it took a parallel slot (its first 80 characters; the last 1000), oldest first. */
  readonly generationTexts: readonly string[];
}

/** The counting half of {@link SimStats}; the gauges live with the gates that own them. */
export class SimCounters {
  embedCalls = 0;
  legacyEmbedCalls = 0;
  documents = 0;
  failures = 0;
  rejected = 0;
  aborted = 0;
  notFound = 0;
  generateCalls = 0;
  chatCalls = 0;
  openaiChatCalls = 0;
  openaiCompletionCalls = 0;
  generatedTokens = 0;
  lastEmbed: LastEmbedCall | null = null;
  readonly callSizes: number[] = [];
  readonly callFirstInputs: string[] = [];
  readonly generationTexts: string[] = [];
  readonly documentsByModel = new Map<string, number>();

  addCall(inputs: readonly string[]): void {
    if (this.callSizes.length >= 1000) {
      this.callSizes.shift();
      this.callFirstInputs.shift();
    }
    this.callSizes.push(inputs.length);
    this.callFirstInputs.push((inputs[0] ?? '').slice(0, 80));
  }

  addGeneration(text: string): void {
    if (this.generationTexts.length >= 1000) this.generationTexts.shift();
    this.generationTexts.push(text.slice(0, 80));
  }

  addDocuments(model: string, count: number): void {
    this.documents += count;
    this.documentsByModel.set(model, (this.documentsByModel.get(model) ?? 0) + count);
  }

  reset(): void {
    this.embedCalls = 0;
    this.legacyEmbedCalls = 0;
    this.documents = 0;
    this.failures = 0;
    this.rejected = 0;
    this.aborted = 0;
    this.notFound = 0;
    this.generateCalls = 0;
    this.chatCalls = 0;
    this.openaiChatCalls = 0;
    this.openaiCompletionCalls = 0;
    this.generatedTokens = 0;
    this.lastEmbed = null;
    this.callSizes.length = 0;
    this.callFirstInputs.length = 0;
    this.generationTexts.length = 0;
    this.documentsByModel.clear();
  }
}
