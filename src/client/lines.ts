/** Splitting a byte stream into lines and SSE blocks, without holding more than one unfinished line. */

export async function* textLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body) {
    rest += decoder.decode(chunk, { stream: true });
    let cut: number;
    let from = 0;
    while ((cut = rest.indexOf('\n', from)) >= 0) {
      yield rest.slice(from, cut);
      from = cut + 1;
    }
    rest = rest.slice(from);
  }
  rest += decoder.decode();
  if (rest !== '') yield rest;
}

export interface SseMessage {
  event: string;
  id: string | undefined;
  data: string;
}

/** Server-Sent Events framing (WHATWG): `event:`, `id:`, `data:` lines, a blank line ends a message, `:` lines are comments. */
export async function* sseMessages(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  let event = '';
  let id: string | undefined;
  let data: string[] = [];
  for await (const raw of textLines(body)) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') {
      if (data.length > 0) yield { event: event || 'message', id, data: data.join('\n') };
      event = '';
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
}
