/**
 * Starts a worker thread from a module of this tree: `NAME.js` next to the caller in `dist/`,
 * `NAME.ts` under tsx (tests, dev, bench). In the second case a plain
 * `execArgv: ['--import', 'tsx']` is not enough: on Node 20 tsx registers its loader on the
 * main thread only and workers do not inherit it, so a tiny bootstrap loads the module
 * through tsx's API instead.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `from`: the caller's `import.meta.url`; `name`: the module's file name without extension. */
export function spawnModuleWorker(from: string, name: string, options: WorkerOptions = {}): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), options);
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, from).href;
  const bootstrap = `import(${JSON.stringify(api)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(from)}));`;
  return new Worker(bootstrap, { ...options, eval: true });
}
