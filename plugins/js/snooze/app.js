// Test fixture in JavaScript: `later`, `event.wake` and `notify.post` from
// the JavaScript SDK paths. A run not started by a wake-up asks to be woken
// in config `after_ms` (default 1) with the payload `from javascript`, and
// reports the id (and, with config `chat`, posts a message with a button
// there); a woken run reports the payload it was given back.
import { wake } from 'mission:plugin/event@0.1.6';
import { after } from 'mission:plugin/later@0.1.6';
import { post } from 'mission:plugin/notify@0.1.6';

export function run(invocation) {
  const config = Object.fromEntries(invocation.config);
  const woken = wake();
  if (woken != null) {
    return { summary: `woke ${woken.id}: ${new TextDecoder().decode(woken.payload)}` };
  }
  const id = after(BigInt(config.after_ms ?? '1'), new TextEncoder().encode('from javascript'));
  if (config.chat !== undefined) {
    post(BigInt(config.chat), {
      text: 'Asked from *JavaScript*',
      format: 'markdown',
      buttons: [[{ label: 'OK', data: new TextEncoder().encode('ok') }]],
    });
  }
  return { summary: `asked ${id}` };
}
