// Platforms: parsing `os/arch[/variant]`, normalising like containerd's platforms package, matching.
import { arch as hostArch } from 'node:os';
import { invalidArgument } from './errors.ts';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  osVersion?: string;
}

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  x64: 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  ia32: '386',
};

/** Normalise like containerd: aliases, arm64 → variant v8 by default, arm → v7 by default. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  // Own names only: an architecture called `constructor` or `__proto__` (a hostile index) is not an alias.
  if (Object.hasOwn(ARCH_ALIASES, architecture)) architecture = ARCH_ALIASES[architecture]!;
  let variant = p.variant?.toLowerCase();
  if (architecture === 'arm64') {
    if (variant === '8' || variant === undefined || variant === '') variant = 'v8';
  } else if (architecture === 'arm') {
    if (variant === undefined || variant === '' || variant === '7') variant = 'v7';
    else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
  } else if (architecture === 'amd64') {
    if (variant === 'v1') variant = undefined;
  }
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p.osVersion) out.osVersion = p.osVersion;
  return out;
}

const PART = /^[A-Za-z0-9_.-]+$/;

/** Parse `linux`, `linux/arm64`, `linux/arm/v7`, `arm64` (os defaults to linux). */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.length > 3 || parts.some((p) => !PART.test(p)))
    throw invalidArgument(
      `invalid platform ${JSON.stringify(spec)}: expected os/arch[/variant], e.g. linux/arm64`,
    );
  if (parts.length === 1) {
    const only = parts[0]!.toLowerCase();
    if (only === 'linux' || only === 'windows' || only === 'darwin')
      return normalizePlatform({ os: only, architecture: hostPlatform().architecture });
    return normalizePlatform({ os: 'linux', architecture: only });
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return normalizePlatform(p);
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

export function hostPlatform(): Platform {
  return normalizePlatform({ os: 'linux', architecture: hostArch() });
}

const ARM_VARIANT_ORDER = ['v5', 'v6', 'v7', 'v8'];

/**
 * Does an image built for `candidate` run on `want`? Exact os/arch, and a variant that is the same or
 * (for arm) an older one the wanted CPU can run. A missing candidate variant matches.
 */
export function platformMatches(want: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(want);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  if (!c.variant || !w.variant || c.variant === w.variant) return true;
  if (w.architecture === 'arm') {
    return ARM_VARIANT_ORDER.indexOf(c.variant) <= ARM_VARIANT_ORDER.indexOf(w.variant);
  }
  return false;
}

/** Rank for choosing among several matching manifests: exact variant first. Lower is better. */
export function platformRank(want: Platform, candidate: Platform): number {
  const w = normalizePlatform(want);
  const c = normalizePlatform(candidate);
  if (!platformMatches(w, c)) return Number.POSITIVE_INFINITY;
  if (w.variant === c.variant) return 0;
  if (!c.variant) return 1;
  return 2 + (ARM_VARIANT_ORDER.indexOf(w.variant ?? '') - ARM_VARIANT_ORDER.indexOf(c.variant));
}
