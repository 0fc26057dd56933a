/** `sollol up` and `sollol worker` as child processes, for crash tests (kill -9) and CLI tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

const START_TIMEOUT_MS = 60_000;

export interface GatewayProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  log(): string;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

/** A `sollol worker` (it does not listen): `id` is its instance id. */
export interface WorkerProcess extends Omit<GatewayProcess, 'url'> {
  readonly id: string;
}

export async function spawnGateway(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<GatewayProcess> {
  const { ready, ...proc } = await spawnCli(t, ['up', '--port', '0', ...args], /listening on (http:\/\/127\.0\.0\.1:\d+)/, env);
  return { ...proc, url: ready };
}

/** `sollol worker <args>`, resolved once it took its place in the worker registry. */
export async function spawnWorker(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<WorkerProcess> {
  const { ready, ...proc } = await spawnCli(t, ['worker', ...args], /worker (\S+) ready/, env);
  return { ...proc, id: ready };
}

async function spawnCli(t: TestContext, args: string[], readyPattern: RegExp, env: Record<string, string>): Promise<Omit<GatewayProcess, 'url'> & { ready: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  const ready = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = readyPattern.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`sollol ${args[0]} exited ${code}: ${output}`)));
    setTimeout(() => reject(new Error(`sollol ${args[0]} did not get ready within ${START_TIMEOUT_MS / 1000} s: ${output}`)), START_TIMEOUT_MS).unref();
  });
  const exited = once(child, 'exit');
  return {
    ready,
    child,
    log: () => output,
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}
