// Example task plugin in JavaScript: counts its runs in its private state,
// remembers when it last ran, logs, and returns a summary the host records.
// Config: `greeting` (default "Hello").
//
// Build: `mission build tally-js` (or `./dev plugins`), with componentize-js
// from the npm registry.
import { get, set } from 'mission:plugin/state@0.1.0';
import { write } from 'mission:plugin/log@0.1.0';

export function run(invocation) {
  const config = Object.fromEntries(invocation.config);
  const count = Number(capability(() => get('runs')) ?? '0') + 1;
  const previous = capability(() => get('last-run'));
  capability(() => set('runs', String(count)));
  capability(() => set('last-run', String(invocation.scheduledAt)));
  write('info', `run #${count} of ${invocation.name} (attempt ${invocation.attempt})`);
  const since = previous === undefined ? 'first run' : `previous at ${previous}`;
  return { summary: `${config.greeting ?? 'Hello'} from JavaScript: run #${count}, ${since}` };
}

// A capability's error (a `capability-error` variant) as the run's error: an
// export returns `err(text)` when it throws a string.
function capability(call) {
  try {
    return call();
  } catch (e) {
    const error = e.payload ?? e;
    throw error.tag === undefined ? String(error) : `${error.tag}: ${error.val ?? ''}`;
  }
}
