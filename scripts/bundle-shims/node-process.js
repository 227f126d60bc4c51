// The bundle's node:process (esbuild --alias, scripts/build.sh): the real module's ESM facade reads every
// property of `process`, running lazy getters (process.report, process.finalization, …) at start-up.
export default globalThis.process;
