/**
 * GET /dashboard: the web dashboard, three static files from public/dashboard/ (found from this
 * module's own path, so `npm start` from dist/ serves them too; no build step). The page holds
 * no data: it calls the API with the key the user types, kept in the tab's sessionStorage.
 * The files are read once at registration: a fixed set of names, no path from the request.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** src/http/routes/ and dist/http/routes/ are both three levels below the package root. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../public/dashboard/', import.meta.url));

const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const contents = new Map<string, Buffer>();
  for (const name of Object.keys(FILES)) contents.set(name, fs.readFileSync(`${DASHBOARD_DIR}${name}`));
  const serve = (name: string) => async (_request: unknown, reply: import('fastify').FastifyReply) =>
    reply.type(FILES[name]!).header('cache-control', 'no-cache').header('content-security-policy', "default-src 'self'; connect-src 'self'").send(contents.get(name));
  app.get('/dashboard', { schema: { hide: true } }, serve('index.html'));
  app.get('/dashboard/', { schema: { hide: true } }, serve('index.html'));
  for (const name of Object.keys(FILES)) app.get(`/dashboard/${name}`, { schema: { hide: true } }, serve(name));
}
