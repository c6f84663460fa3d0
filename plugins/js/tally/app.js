// Example task plugin in JavaScript: counts its runs in its private state,
// remembers when it last ran, and with config `url` fetches that address
// over the host's `wasi:http` (the `http` grant must list its origin),
// reporting the status and size. Started by a webhook, it says which and
// how big the body was. Config: `greeting` (default "Hello"), `url`
// (optional).
//
// Build: `mission build tally-js` (or `./dev plugins`), with componentize-js
// from the npm registry.
import { get, set } from 'mission:plugin/state@0.1.6';
import { write } from 'mission:plugin/log@0.1.6';
import { webhook } from 'mission:plugin/event@0.1.6';
import { handle as send } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest } from 'wasi:http/types@0.2.12';

export function run(invocation) {
  const config = Object.fromEntries(invocation.config);
  const count = Number(capability(() => get('runs')) ?? '0') + 1;
  const previous = capability(() => get('last-run'));
  capability(() => set('runs', String(count)));
  capability(() => set('last-run', String(invocation.scheduledAt)));
  write('info', `run #${count} of ${invocation.name} (attempt ${invocation.attempt})`);
  const since = previous === undefined ? 'first run' : `previous at ${previous}`;
  const fetched = config.url === undefined ? '' : `; ${fetch(config.url)}`;
  const request = webhook(); // none (undefined) unless a webhook started the run
  const hooked = request == null
    ? ''
    : `; webhook ${request.webhook}, delivery ${request.deliveryId}, ${request.body.length} bytes`;
  return { summary: `${config.greeting ?? 'Hello'} from JavaScript: run #${count}, ${since}${fetched}${hooked}` };
}

// GETs `address` through `wasi:http`: `GET URL: 200, 5 bytes`.
function fetch(address) {
  const url = new URL(address);
  const request = new OutgoingRequest(new Fields());
  request.setScheme(url.protocol === 'https:' ? { tag: 'HTTPS' } : { tag: 'HTTP' });
  request.setAuthority(url.host);
  request.setPathWithQuery(url.pathname + url.search);
  let response;
  try {
    const future = send(request, undefined);
    future.subscribe().block();
    const result = future.get(); // some(ok(ok(response))) once ready
    if (result.tag === 'err' || result.val.tag === 'err') {
      throw result.tag === 'err' ? result.val : result.val.val;
    }
    response = result.val.val;
  } catch (e) {
    const error = e.payload ?? e;
    throw `GET ${address}: ${error.tag ?? error}${error.val === undefined ? '' : `: ${JSON.stringify(error.val)}`}`;
  }
  const stream = response.consume().stream();
  let bytes = 0;
  for (;;) {
    try {
      stream.subscribe().block();
      bytes += stream.read(65536n).length;
    } catch {
      break; // the stream is closed: the body is complete
    }
  }
  return `GET ${address}: ${response.status()}, ${bytes} bytes`;
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
