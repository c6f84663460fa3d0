// dates: a tools plugin in JavaScript. Claude is poor at calendar sums;
// these two tools do them exactly: the weekday of a date, and the days
// between two dates (and how many of them are working days, Monday to
// Friday). It needs no grant: it reaches nothing outside.
//
// Build: `./dev plugins` (componentize-js, world `tools`).
const DATE = { type: 'string', description: 'A date, YYYY-MM-DD' };

export function tools() {
  return [
    {
      name: 'weekday',
      description: 'The day of the week of a date.',
      inputSchema: JSON.stringify({ type: 'object', properties: { date: DATE }, required: ['date'] }),
    },
    {
      name: 'days_between',
      description: 'Days from one date to another, and how many of them are working days (Mon-Fri).',
      inputSchema: JSON.stringify({
        type: 'object',
        properties: { from: DATE, to: DATE },
        required: ['from', 'to'],
      }),
    },
  ];
}

export function call(call) {
  const input = JSON.parse(call.input);
  if (call.name === 'weekday') {
    const day = parse(input.date).getUTCDay();
    const names = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
    return { tag: 'json', val: JSON.stringify({ date: input.date, weekday: names[day] }) };
  }
  if (call.name === 'days_between') {
    const from = parse(input.from);
    const to = parse(input.to);
    const days = Math.round((to - from) / 86400000);
    // Working days from the earlier date up to, not including, the later.
    const [start, end] = days < 0 ? [to, from] : [from, to];
    let working = 0;
    for (let t = start.getTime(); t < end.getTime(); t += 86400000) {
      const weekday = new Date(t).getUTCDay();
      if (weekday !== 0 && weekday !== 6) working += 1;
    }
    return { tag: 'json', val: JSON.stringify({ days, working_days: Math.sign(days) * working }) };
  }
  throw `no tool ${call.name}`;
}

// `YYYY-MM-DD` as midnight UTC, or the error Claude is told.
function parse(text) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text ?? '')) {
    throw `not a date (YYYY-MM-DD): ${text}`;
  }
  const date = new Date(`${text}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== text) {
    throw `no such date: ${text}`;
  }
  return date;
}
