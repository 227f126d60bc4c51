// Node built-ins that only some commands need, loaded on first use. A static `import … from 'node:zlib'`
// anywhere in hoist is hoisted to the top of the bundle (dist/main.js is one file), so every command,
// `hoist images` included, would load and initialise it at start-up: child_process (with dgram and net),
// zlib, worker_threads, readline, v8 and vm cost ~15 ms of a 76 ms `hoist images` (measured with
// process.moduleLoadList and paired runs, bench/RESULTS.md). process.getBuiltinModule returns the module
// itself (no ESM facade), once loaded a map lookup.

export const childProcess = (): typeof import('node:child_process') =>
  process.getBuiltinModule('node:child_process');
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
export const workerThreads = (): typeof import('node:worker_threads') =>
  process.getBuiltinModule('node:worker_threads');
export const readlinePromises = (): typeof import('node:readline/promises') =>
  process.getBuiltinModule('node:readline/promises');
export const v8 = (): typeof import('node:v8') => process.getBuiltinModule('node:v8');
export const vm = (): typeof import('node:vm') => process.getBuiltinModule('node:vm');
