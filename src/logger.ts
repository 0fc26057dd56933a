/** Readable logs (pino-pretty on a terminal, JSON lines otherwise) shared by fastify and the core. */
import { pino, type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';

export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export function createLogger(level: string, options: { pretty?: boolean } = {}): PinoLogger {
  const usePretty = options.pretty ?? true;
  if (!usePretty) return pino({ level });
  const stream = pretty({ colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, destination: 2, sync: true });
  return pino({ level }, stream);
}

export function silentLogger(): PinoLogger {
  return pino({ level: 'silent' });
}
