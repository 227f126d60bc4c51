// One tar entry as the layer writer applies it: the header's fields with PAX overrides taken into
// account (uid, gid, times beyond what octal fields hold) and xattrs gathered from the PAX records.
import { refuseEntry } from './root-path.ts';
import type { TarHeader } from './tar-reader.ts';

/** One tar entry, decoded: names are latin1 byte strings, times are seconds. */
export interface LayerEntry {
  name: string;
  linkname: string;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  atime: number;
  devmajor: number;
  devminor: number;
  xattrs: Array<[name: string, value: Buffer]>;
}

function paxNumber(pax: Map<string, Buffer> | null, key: string, entry: string): number | undefined {
  const raw = pax?.get(key);
  if (raw === undefined) return undefined;
  const n = Number(raw.toString('latin1'));
  if (!Number.isFinite(n)) throw refuseEntry(entry, `has an invalid PAX ${key} '${raw.toString('latin1')}'`);
  return n;
}

/** xattrs from PAX records: `SCHILY.xattr.<name>` (Go, GNU tar) and `LIBARCHIVE.xattr.<%name>` (bsdtar). */
function paxXattrs(pax: Map<string, Buffer> | null): Array<[string, Buffer]> {
  if (!pax) return [];
  const out = new Map<string, Buffer>();
  for (const [key, value] of pax) {
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      const name = Buffer.from(decodeURIComponent(key.slice(17)), 'utf8').toString('latin1');
      out.set(name, Buffer.from(value.toString('latin1'), 'base64'));
    }
  }
  for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) out.set(key.slice(13), value);
  return [...out];
}

export function layerEntryOf(h: TarHeader): LayerEntry {
  const pax = h.pax;
  if (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) {
    throw refuseEntry(h.name, 'is a sparse file, which hoist cannot apply');
  }
  const mtime = paxNumber(pax, 'mtime', h.name) ?? h.mtime;
  return {
    name: h.name,
    linkname: h.linkname,
    typeflag: h.typeflag,
    mode: h.mode & 0o7777,
    uid: paxNumber(pax, 'uid', h.name) ?? h.uid,
    gid: paxNumber(pax, 'gid', h.name) ?? h.gid,
    mtime,
    atime: paxNumber(pax, 'atime', h.name) ?? mtime,
    devmajor: h.devmajor,
    devminor: h.devminor,
    xattrs: paxXattrs(pax),
  };
}
