// Preloaded by `npm start` (node --import) before src/main.ts, so it is plain JavaScript.
//
// Node strips TypeScript types with a WebAssembly module that, once loaded, stays resident
// (about 25 MB, a fifth of an idle server). With the compile cache on, Node keeps stripped and
// compiled code on disk, keyed by the source's content, and later starts never load the
// stripper. The cache is code: it lives under node_modules, so only who can change the code
// can change it; where the server's user may not write there (the container image), Node
// leaves the cache off, which only costs the saving. NODE_COMPILE_CACHE, when set, has
// already chosen another directory.
import module from 'node:module';
import { fileURLToPath } from 'node:url';

module.enableCompileCache?.(fileURLToPath(new URL('../node_modules/.cache/latchkey', import.meta.url)));
