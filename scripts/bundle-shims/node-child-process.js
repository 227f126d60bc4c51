// The bundle's node:child_process (esbuild --alias, scripts/build.sh): commander imports it for external
// subcommands, which hoist has none of. Loading it costs every command net, dgram and the child-process
// machinery at start-up; the built-in is fetched on first property access instead.
export default new Proxy(
  {},
  { get: (_target, name) => process.getBuiltinModule('node:child_process')[name] },
);
