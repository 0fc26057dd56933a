/**
 * The simulated Ollama node, a test tool for the project's tests and benchmarks.
 * Import from here rather than from the individual files.
 */

export { startSimNode, SIM_OLLAMA_VERSION, type SimListenOptions, type SimNode } from './server.js';
export { DEFAULT_SIM_OPTIONS, resolveSimOptions, SimConfigError, type SimModels, type SimOptions } from './options.js';
export { simVector } from './vectors.js';
export { canonicalModelName } from './models.js';
export type { LastEmbedCall, SimStats } from './stats.js';
