/**
 * Text fields of a finished job's items that a child job can take its documents from
 * (`documents_from: {job_id, field}`), per job type: an item-result accessor each. Embedding
 * jobs give none (their results are vectors); a job type with text results registers its fields
 * here (generate: `response`, chat: `message.content`), and documents_from works for it at once.
 */
import type { ItemResult } from './model.js';

/** The item's text in that field; undefined when the item has none (it failed, or the field is empty). */
export type ItemTextAccessor = (item: ItemResult) => string | undefined;

/** A field of a generation item's result (a JSON object text: generationItem.ts), when it is a string. */
function resultField(read: (result: Record<string, unknown>) => unknown): ItemTextAccessor {
  return (item) => {
    if (item.state !== 'generated') return undefined;
    const value = read(JSON.parse(item.result) as Record<string, unknown>);
    return typeof value === 'string' ? value : undefined;
  };
}

export const ITEM_TEXT_FIELDS: Record<string, Readonly<Record<string, ItemTextAccessor>>> = {
  embed: {},
  generate: { response: resultField((r) => r.response) },
  chat: { 'message.content': resultField((r) => (r.message as { content?: unknown } | undefined)?.content) },
};

export function textAccessor(jobType: string, field: string): ItemTextAccessor | undefined {
  return ITEM_TEXT_FIELDS[jobType]?.[field];
}

/** Every field some job type offers, for messages: `response (generate), ...`. */
export function knownTextFields(): string {
  const all = Object.entries(ITEM_TEXT_FIELDS).flatMap(([type, fields]) => Object.keys(fields).map((f) => `${f} (${type})`));
  return all.length > 0 ? all.join(', ') : 'none on this gateway';
}

/** One document of the child, in the parent's item order: its text, or the parent item's failure. */
export type FilledDocument = { readonly text: string } | { readonly code: 'DEPENDENCY_FAILED'; readonly error: string };

/** The child's documents from the parent's items: each failed or empty parent item fails its child item, naming its index. */
export function documentsFromItems(parentId: string, field: string, items: readonly ItemResult[], accessor: ItemTextAccessor): FilledDocument[] {
  return items.map((item) => {
    const answered = item.state === 'done' || item.state === 'generated';
    const text = answered ? accessor(item) : undefined;
    if (text !== undefined && text !== '') return { text };
    const why = item.state === 'failed' ? `failed (${item.code}: ${item.error})` : answered ? `has no '${field}'` : 'was not processed';
    return { code: 'DEPENDENCY_FAILED' as const, error: `Item ${item.index} of parent job ${parentId} ${why}` };
  });
}
