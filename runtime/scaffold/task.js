// {{name}}: a task plugin. It counts its runs in its private state, logs,
// and returns a one-line summary that the host records. Config: `greeting`
// (default "Hello").
//
// More, once granted in its [plugins.{{name}}] table (docs/plugins.md):
// `later` (after(ms, payload), at, cancel: the woken run reads wake() from
// mission:plugin/event), `notify` (post(chat, { text, format, buttons }):
// a press runs it again with press() from the event), and a schedule's or
// its own `after` (the run reads parent() from the event).
//
// Build: `mission build {{name}}` (componentize-js).
import { get, set } from 'mission:plugin/state@{{version}}';
import { write } from 'mission:plugin/log@{{version}}';

export function run(invocation) {
  const config = Object.fromEntries(invocation.config);
  const runs = Number(capability(() => get('runs')) ?? '0') + 1;
  capability(() => set('runs', String(runs)));
  write('info', `run #${runs} of ${invocation.name}`);
  return { summary: `${config.greeting ?? 'Hello'} from {{name}}: run #${runs}` };
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
