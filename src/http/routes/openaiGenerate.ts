/**
 * `POST /v1/chat/completions` and `POST /v1/completions` (OpenAI-compatible), forwarded on a
 * generation slot to a node that serves the model on that route: an Ollama node (its own
 * OpenAI compatibility layer) or an OpenAI-compatible server given `?parallel=N`. Streaming
 * (`stream: true`) relays the node's server-sent events as they arrive. Register with
 * `{ prefix: '/v1' }`; errors answer in OpenAI's shape.
 */
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BackendPool } from '../../backends/pool.js';
import { CompatError, sendOpenAIError, toCompatError } from '../compatErrors.js';
import { forwardGeneration } from '../generationForward.js';
import { chatCompletionProblem, completionProblem, type BodyProblem } from '../openaiBodies.js';

export interface OpenAIGenerateRouteOptions {
  readonly pool: BackendPool;
}

type Check = (body: unknown) => BodyProblem | undefined;

export async function openaiGenerateRoutes(app: FastifyInstance, options: OpenAIGenerateRouteOptions): Promise<void> {
  app.setErrorHandler((error, request, reply) => sendOpenAIError(reply, toCompatError(error, request)));
  const route = (path: '/chat/completions' | '/completions', check: Check, summary: string): void => {
    app.post(path, { schema: { tags: ['openai'], summary } }, async (request: FastifyRequest, reply: FastifyReply) => {
      const problem = check(request.body);
      if (problem) throw new CompatError('INVALID_INPUT', problem.message, { param: problem.param });
      const body = request.body as Record<string, unknown>;
      return forwardGeneration(options.pool, `/v1${path}`, body.model as string, body, reply);
    });
  };
  route('/chat/completions', chatCompletionProblem, 'Chat completions (OpenAI-compatible), forwarded on a generation slot; SSE when stream is true');
  route('/completions', completionProblem, 'Completions (OpenAI-compatible), forwarded on a generation slot; SSE when stream is true');
}
