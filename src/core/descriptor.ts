// Descriptors and the manifest/index/config documents, parsed and validated in one place.
import { type Digest, parseDigest } from './digest.ts';
import { HoistError } from './errors.ts';
import { isConfig, isIndex, isManifest, isSchema1, MediaType, refuseSchema1 } from './mediatypes.ts';
import type { Platform } from './platform.ts';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
  artifactType?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

export interface Index {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an OCI/Docker image config hoist reads. */
export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  'os.version'?: string;
  config?: { User?: string; Labels?: Record<string, string> | null; [k: string]: unknown };
  rootfs?: { type: string; diff_ids: Digest[] };
  history?: unknown[];
}

/**
 * Manifests, indexes and image configs are read whole into memory; larger ones are refused (containerd caps
 * manifests and indexes at 4 MiB too). Layers are streamed and have no cap.
 */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/** A manifest, index or image config: a document hoist parses, subject to MAX_DOCUMENT_BYTES. */
export function isDocument(mediaType: string): boolean {
  return isManifest(mediaType) || isIndex(mediaType) || isConfig(mediaType);
}

function documentKind(mediaType: string): string {
  return isIndex(mediaType) ? 'index' : isManifest(mediaType) ? 'manifest' : 'config';
}

/**
 * The error for a document over the cap. `declared`: the size was announced (a descriptor, a
 * Content-Length) and the bytes were never read; otherwise reading stopped at the cap.
 */
export function documentTooLarge(what: string, declared: number | undefined): HoistError {
  const message =
    declared === undefined
      ? `${what} is larger than 4 MiB, the most a manifest, index or config may have (reading stopped there)`
      : `${what} declares ${declared} bytes; a manifest, index or config may have at most 4 MiB`;
  return new HoistError('HOIST_TOO_LARGE', message, {
    hint: 'the registry or archive serves an oversized document; hoist will not hold it in memory',
  });
}

/** Refuse a manifest, index or config descriptor that declares more than the cap, before fetching it. */
export function checkDocumentSize(
  desc: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>,
  ref?: string,
): void {
  if (isDocument(desc.mediaType) && desc.size > MAX_DOCUMENT_BYTES)
    throw documentTooLarge(
      `${ref ? `${ref}: ` : ''}${documentKind(desc.mediaType)} ${desc.digest}`,
      desc.size,
    );
}

function malformed(what: string, detail: string): HoistError {
  return new HoistError('HOIST_MALFORMED_MANIFEST', `malformed ${what}: ${detail}`, {
    hint: 'the registry or archive holds an invalid document; it cannot be used as an image',
  });
}

function obj(v: unknown, what: string, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw malformed(what, `${field} is not an object`);
  return v as Record<string, unknown>;
}

function stringMap(v: unknown, what: string, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, what, field);
  for (const [k, val] of Object.entries(o)) {
    if (typeof val !== 'string') throw malformed(what, `${field}.${k} is not a string`);
  }
  return o as Record<string, string>;
}

/** Validate one descriptor object (from JSON) into a Descriptor. */
export function parseDescriptor(v: unknown, what = 'descriptor', field = 'descriptor'): Descriptor {
  const o = obj(v, what, field);
  if (typeof o.mediaType !== 'string' || o.mediaType === '')
    throw malformed(what, `${field}.mediaType is missing`);
  if (typeof o.digest !== 'string') throw malformed(what, `${field}.digest is missing`);
  let digest: Digest;
  try {
    digest = parseDigest(o.digest);
  } catch {
    throw malformed(what, `${field}.digest ${JSON.stringify(o.digest)} is not a valid digest`);
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0)
    throw malformed(what, `${field}.size is not a non-negative integer`);
  const d: Descriptor = { mediaType: o.mediaType, digest, size: o.size };
  const ann = stringMap(o.annotations, what, `${field}.annotations`);
  if (ann) d.annotations = ann;
  if (o.platform !== undefined) {
    const p = obj(o.platform, what, `${field}.platform`);
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string')
      throw malformed(what, `${field}.platform needs os and architecture`);
    d.platform = { os: p.os, architecture: p.architecture };
    if (typeof p.variant === 'string') d.platform.variant = p.variant;
    if (typeof p['os.version'] === 'string') d.platform.osVersion = p['os.version'];
  }
  if (Array.isArray(o.urls)) d.urls = o.urls.filter((u): u is string => typeof u === 'string');
  if (typeof o.artifactType === 'string') d.artifactType = o.artifactType;
  return d;
}

function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function parseJson(bytes: Uint8Array | string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    // V8 quotes the text around the error, control characters and all: keep the message one line.
    throw malformed(what, `not valid JSON (${oneLine((err as Error).message)})`);
  }
  return obj(v, what, 'document');
}

/**
 * Parse a manifest or index. `mediaType` is the one the descriptor (or registry) gave; the document's
 * own mediaType must agree when present. Schema 1 is refused with a clear message.
 */
export function parseManifestOrIndex(
  bytes: Uint8Array | string,
  mediaType: string,
  ref = 'image',
): { kind: 'index'; index: Index } | { kind: 'manifest'; manifest: Manifest } {
  if (isSchema1(mediaType)) refuseSchema1(mediaType, ref);
  const o = parseJson(bytes, `manifest of ${ref}`);
  if (o.schemaVersion === 1) refuseSchema1(MediaType.DockerSchema1Manifest, ref);
  const docType = typeof o.mediaType === 'string' ? o.mediaType : undefined;
  let mt = mediaType;
  if (docType && docType !== mediaType) {
    // Registries sometimes answer with a generic content type; trust the document when it is specific.
    if (isIndex(docType) || isManifest(docType)) mt = docType;
  }
  if (!isIndex(mt) && !isManifest(mt)) {
    // Infer from shape (OCI allows documents without mediaType).
    if (Array.isArray(o.manifests)) mt = MediaType.OciIndex;
    else if (o.config !== undefined) mt = MediaType.OciManifest;
    else
      throw new HoistError(
        'HOIST_UNSUPPORTED_MEDIA_TYPE',
        `${ref}: unsupported media type ${mediaType}: not an image manifest or index`,
      );
  }
  if (o.schemaVersion !== 2) throw malformed(`manifest of ${ref}`, `schemaVersion must be 2`);
  const what = `manifest of ${ref}`;
  if (isIndex(mt)) {
    if (!Array.isArray(o.manifests)) throw malformed(what, 'manifests is not an array');
    const index: Index = {
      schemaVersion: 2,
      mediaType: mt,
      manifests: o.manifests.map((m, i) => parseDescriptor(m, what, `manifests[${i}]`)),
    };
    const ann = stringMap(o.annotations, what, 'annotations');
    if (ann) index.annotations = ann;
    return { kind: 'index', index };
  }
  const config = parseDescriptor(o.config, what, 'config');
  if (!Array.isArray(o.layers)) throw malformed(what, 'layers is not an array');
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: mt,
    config,
    layers: o.layers.map((l, i) => parseDescriptor(l, what, `layers[${i}]`)),
  };
  const ann = stringMap(o.annotations, what, 'annotations');
  if (ann) manifest.annotations = ann;
  if (o.subject !== undefined) manifest.subject = parseDescriptor(o.subject, what, 'subject');
  return { kind: 'manifest', manifest };
}

export function parseImageConfig(bytes: Uint8Array | string, ref = 'image'): ImageConfig {
  const o = parseJson(bytes, `config of ${ref}`);
  const cfg = o as ImageConfig;
  if (cfg.rootfs !== undefined) {
    const r = obj(cfg.rootfs, `config of ${ref}`, 'rootfs');
    if (!Array.isArray(r.diff_ids)) throw malformed(`config of ${ref}`, 'rootfs.diff_ids is not an array');
    for (const d of r.diff_ids) {
      // Not String(d) or JSON.stringify(d): a value nested 100,000 deep overflows the stack in both.
      if (typeof d !== 'string')
        throw malformed(`config of ${ref}`, 'rootfs.diff_ids has a value that is not a string');
      try {
        parseDigest(d);
      } catch {
        throw malformed(`config of ${ref}`, `rootfs.diff_ids has an invalid digest ${JSON.stringify(d)}`);
      }
    }
  }
  return cfg;
}
