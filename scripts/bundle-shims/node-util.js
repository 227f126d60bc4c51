// The bundle's node:util (esbuild --alias, scripts/build.sh): commander's only import from it. The real
// module's ESM facade evaluates every export of util, whose lazy getters load worker_threads, perf and
// more into every command's start-up; the built-in itself is fetched when a name is first called.
export function stripVTControlCharacters(text) {
  return process.getBuiltinModule('node:util').stripVTControlCharacters(text);
}
