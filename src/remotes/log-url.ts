// A registry URL as the debug log shows it: never a credential. The user and password part is dropped,
// and query values are kept only for the parameters known to carry none (a blob redirect to object
// storage signs its URL in the query, an upload location carries the registry's session state).
const SAFE_QUERY_PARAMETERS = new Set(['ns', 'scope', 'service', 'digest', 'mount', 'from', 'n', 'last']);

export function loggableUrl(url: URL): string {
  let query = '';
  for (const [name, value] of url.searchParams) {
    // Decoded, for reading (`scope=repository:team/app:pull`): the line is not a URL to follow.
    query += `${query === '' ? '?' : '&'}${name}=${SAFE_QUERY_PARAMETERS.has(name) ? value : 'REDACTED'}`;
  }
  return `${url.protocol}//${url.host}${url.pathname}${query}`;
}
