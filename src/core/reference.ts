// The one image-reference parser: Docker normalisation (`alpine` → `docker.io/library/alpine:latest`),
// registry hosts with ports, tags, digests, tag+digest. Grammar from the distribution reference spec.
import { type Digest, isDigest } from './digest.ts';
import { HoistError } from './errors.ts';

export interface Reference {
  /** Registry host as written after normalisation, e.g. `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/alpine`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const MAX_NAME = 255;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PORT = /^[0-9]+$/;
const HEX64 = /^[a-f0-9]{64}$/;

function invalid(input: string, why: string): HoistError {
  return new HoistError('HOIST_INVALID_REFERENCE', `invalid reference ${JSON.stringify(input)}: ${why}`, {
    hint: 'use NAME[:TAG][@sha256:DIGEST], e.g. alpine:3.20 or registry.example.com:5000/team/app@sha256:…',
  });
}

function validDomain(domain: string): boolean {
  if (domain.startsWith('[')) {
    // IPv6 literal, optionally with a port: [::1]:5000
    return /^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/.test(domain);
  }
  const [host, port, ...rest] = domain.split(':');
  if (rest.length > 0 || host === undefined || host === '') return false;
  if (port !== undefined && !PORT.test(port)) return false;
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** Parse and normalise a reference. Throws HOIST_INVALID_REFERENCE with the reason. */
export function parseReference(input: string): Reference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'it is empty');
  if (HEX64.test(s)) throw invalid(input, 'a bare 64-character hex string is an image ID, not a name');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw invalid(input, `${JSON.stringify(d)} is not a valid digest (sha256:<64 hex>)`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `tag ${JSON.stringify(tag)} is invalid`);
  }
  if (rest === '') throw invalid(input, 'the repository name is empty');
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first.toLowerCase() !== first
    ) {
      domain = first;
      path = rest.slice(slash + 1);
      if (!validDomain(domain)) throw invalid(input, `registry host ${JSON.stringify(domain)} is invalid`);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path !== path.toLowerCase()) throw invalid(input, 'repository names must be lowercase');
  for (const component of path.split('/')) {
    if (!COMPONENT.test(component))
      throw invalid(input, `repository path component ${JSON.stringify(component)} is invalid`);
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (domain.length + 1 + path.length > MAX_NAME)
    throw invalid(input, `the repository name is longer than ${MAX_NAME} characters`);
  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Parse, and add `:latest` when the reference has neither tag nor digest (docker's pull behaviour). */
export function parseDockerRef(input: string): Reference {
  const ref = parseReference(input);
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = 'latest';
  return ref;
}

export function repository(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Full normalised string, e.g. `docker.io/library/alpine:latest` or `host/r@sha256:…`. */
export function formatReference(ref: Reference): string {
  let s = repository(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Docker's short form: `alpine`, `user/app`, `ghcr.io/x/y` (repository only). */
export function familiarRepository(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repository(ref);
  return ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : ref.path;
}

export function familiarString(ref: Reference): string {
  let s = familiarRepository(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Try to parse an image record name; undefined when the name is not a reference (e.g. `sha256:<id>`). */
export function tryParseReference(name: string): Reference | undefined {
  if (isDigest(name)) return undefined;
  try {
    return parseReference(name);
  } catch {
    return undefined;
  }
}

/** The three name kinds containerd's CRI creates for one image. */
export type NameKind = 'tag' | 'digest' | 'id' | 'other';

export function nameKind(name: string): NameKind {
  if (isDigest(name)) return 'id';
  const ref = tryParseReference(name);
  if (!ref) return 'other';
  if (ref.tag !== undefined) return 'tag';
  if (ref.digest !== undefined) return 'digest';
  return 'other';
}
