/**
 * Checks of OpenAI request bodies for the generation routes, shared by the sync routes
 * (`/v1/chat/completions`, `/v1/completions`) and the Batch API's line validation, so a line
 * is refused for exactly what the sync route would refuse. Only what the gateway needs to
 * route and what a node would choke on are checked; other fields pass through to the node.
 */

export interface BodyProblem {
  readonly message: string;
  /** The field at fault (OpenAI's `param`). */
  readonly param: string;
}

type Body = Record<string, unknown>;

function isObject(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function modelProblem(body: Body): BodyProblem | undefined {
  if (typeof body.model !== 'string' || body.model.trim() === '') return { message: 'model is required (a non-empty string)', param: 'model' };
  return undefined;
}

function commonProblem(body: Body): BodyProblem | undefined {
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') return { message: 'stream must be a boolean', param: 'stream' };
  for (const key of ['max_tokens', 'max_completion_tokens', 'n'] as const) {
    const value = body[key];
    if (value !== undefined && value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 1)) {
      return { message: `${key} must be a positive integer`, param: key };
    }
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) return { message: 'n must be 1: a node answers one choice per call', param: 'n' };
  return undefined;
}

export function chatCompletionProblem(body: unknown): BodyProblem | undefined {
  if (!isObject(body)) return { message: 'the body must be a JSON object', param: 'body' };
  const problem = modelProblem(body) ?? commonProblem(body);
  if (problem) return problem;
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return { message: 'messages must be a non-empty array', param: 'messages' };
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    if (!isObject(message) || typeof message.role !== 'string' || message.role === '') {
      return { message: `messages[${i}] must be an object with a role`, param: `messages[${i}]` };
    }
    const content = message.content;
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      return { message: `messages[${i}].content must be a string or an array of content parts`, param: `messages[${i}].content` };
    }
  }
  return undefined;
}

export function completionProblem(body: unknown): BodyProblem | undefined {
  if (!isObject(body)) return { message: 'the body must be a JSON object', param: 'body' };
  const problem = modelProblem(body) ?? commonProblem(body);
  if (problem) return problem;
  if (typeof body.prompt !== 'string') return { message: 'prompt must be a string (one prompt per call)', param: 'prompt' };
  return undefined;
}

/** `/v1/embeddings`: a string or a non-empty list of non-empty strings (token arrays are refused, as the sync route does). */
export function embeddingProblem(body: unknown): BodyProblem | undefined {
  if (!isObject(body)) return { message: 'the body must be a JSON object', param: 'body' };
  const problem = modelProblem(body);
  if (problem) return problem;
  const input = body.input;
  const ok = (typeof input === 'string' && input !== '') || (Array.isArray(input) && input.length > 0 && input.every((s) => typeof s === 'string' && s !== ''));
  if (!ok) return { message: 'input must be a non-empty string or a non-empty list of non-empty strings', param: 'input' };
  if (body.encoding_format !== undefined && body.encoding_format !== 'float' && body.encoding_format !== 'base64') {
    return { message: "encoding_format must be 'float' or 'base64'", param: 'encoding_format' };
  }
  if (body.dimensions !== undefined && (typeof body.dimensions !== 'number' || !Number.isInteger(body.dimensions) || body.dimensions < 1)) {
    return { message: 'dimensions must be a positive integer', param: 'dimensions' };
  }
  return undefined;
}
