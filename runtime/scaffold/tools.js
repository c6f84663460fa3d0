// {{name}}: a tools plugin. Claude may call its tools for the plugins
// whose Claude grant names it in `tools_from`. `count_words` counts the
// words of a text and keeps a running total in its private state.
//
// Build: `mission build {{name}}` (componentize-js).
import { get, set } from 'mission:plugin/state@{{version}}';

export function tools() {
  return [
    {
      name: 'count_words',
      description: 'Counts the words of a text.',
      inputSchema: JSON.stringify({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }),
    },
  ];
}

export function call(call) {
  if (call.name !== 'count_words') {
    throw `no tool ${call.name}`;
  }
  const words = String(JSON.parse(call.input).text ?? '').split(/\s+/).filter(Boolean).length;
  const total = Number(capability(() => get('total')) ?? '0') + words;
  capability(() => set('total', String(total)));
  return { tag: 'text', val: `${words} words (${total} counted in all)` };
}

// A capability's error as the call's error: an export returns `err(text)`
// when it throws a string.
function capability(call) {
  try {
    return call();
  } catch (e) {
    const error = e.payload ?? e;
    throw error.tag === undefined ? String(error) : `${error.tag}: ${error.val ?? ''}`;
  }
}
