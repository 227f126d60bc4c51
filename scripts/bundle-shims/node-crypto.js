// The bundle's node:crypto (esbuild --alias, scripts/build.sh): the names hoist imports, fetched from the
// built-in on first call. The real module's ESM facade evaluates every export, whose lazy getters load
// webcrypto, X.509, key generation and the rest into every command's start-up. A name not here fails
// the build.
const crypto = () => process.getBuiltinModule('node:crypto');
export const createHash = (...args) => crypto().createHash(...args);
export const randomBytes = (...args) => crypto().randomBytes(...args);
export const randomUUID = (...args) => crypto().randomUUID(...args);
