/** Prints one clear line on stderr and exits non-zero: the CLI's only way to refuse. */
export function fail(message: string, exitCode = 2): never {
  process.stderr.write(`sollol: error: ${message}\n`);
  process.exit(exitCode);
}
