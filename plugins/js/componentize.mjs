// Builds a JavaScript plugin into a component with componentize-js's API:
//   node componentize.mjs MODULE SOURCE WIT WORLD OUT
// MODULE is componentize-js's entry (target/js/node_modules/...), so this
// script needs no node_modules of its own. `./dev` and `mission build` both
// run it. Features a plugin has no use for are left out: the host grants
// HTTP through the world's own `wasi:http` import, not through `fetch`.
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(process.argv[1]?.endsWith('.mjs') ? 2 : 1);
const [module, source, wit, world, out] = args;
const { componentize } = await import(pathToFileURL(module).href);
const { component } = await componentize(await readFile(source, 'utf8'), {
  witPath: wit,
  worldName: world,
  disableFeatures: ['http', 'fetch-event', 'random', 'clocks', 'stdio'],
});
await writeFile(out, component);
