/** Ollama model names: `x` and `x:latest` are the same model. */
export function canonicalModel(name: string): string {
  return name.includes(':') ? name : `${name}:latest`;
}

export function sameModel(a: string, b: string): boolean {
  return canonicalModel(a) === canonicalModel(b);
}
