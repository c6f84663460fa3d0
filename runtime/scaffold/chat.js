// {{name}}: a chat plugin. It answers each message with what it heard, how
// many earlier messages the chat's history holds, and how many it has
// answered in all (kept in its private state).
//
// Build: `mission build {{name}}` (componentize-js).
import { read } from 'mission:plugin/history@{{version}}';
import { get, set } from 'mission:plugin/state@{{version}}';
import { write } from 'mission:plugin/log@{{version}}';

export function handle(message) {
  const earlier = capability(() => read(String(message.chatId), 100));
  const said = earlier.filter((entry) => entry.role === 'user').length;
  const answered = Number(capability(() => get('answered')) ?? '0') + 1;
  capability(() => set('answered', String(answered)));
  write('info', `message from ${message.senderName} in chat ${message.chatId}`);
  return {
    text: `{{name}} heard: ${message.text} (${said} earlier in this chat, ${answered} answered in all)`,
    parseMode: undefined,
  };
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
