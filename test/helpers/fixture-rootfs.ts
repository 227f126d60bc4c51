// A three-layer fixture image that exercises everything a layer applier must get right: whiteouts and
// opaque directories, hardlinks (within and across layers), absolute and relative symlinks, a write
// through a directory symlink from a lower layer, names over 100 bytes (PAX), character and block
// devices, a FIFO, setuid/setgid/sticky modes, ownership, user and security.capability xattrs, mtimes.
import tar from 'tar-stream';

const MTIME = new Date('2021-06-01T12:00:00Z');
/** cap_net_raw+ep in VFS_CAP_REVISION_2 layout (what `setcap cap_net_raw+ep` writes). */
export const CAP_NET_RAW_EP = Buffer.from('0100000200200000000000000000000000000000', 'hex');

export const LONG_DIR = `usr/share/doc/${'a-rather-long-package-name-'.repeat(3)}`;
export const LONG_FILE = `${LONG_DIR}/${'changelog-of-the-release-'.repeat(3)}.txt`;

type Header = Parameters<tar.Pack['entry']>[0];

interface Entry {
  header: Header;
  body?: string | Buffer;
}

function dir(name: string, mode = 0o755, extra: Partial<Header> = {}): Entry {
  return { header: { name, type: 'directory', mode, uid: 0, gid: 0, mtime: MTIME, ...extra } };
}

function file(name: string, body: string | Buffer, mode = 0o644, extra: Partial<Header> = {}): Entry {
  return { header: { name, type: 'file', mode, uid: 0, gid: 0, mtime: MTIME, ...extra }, body };
}

function symlink(name: string, target: string): Entry {
  return { header: { name, type: 'symlink', linkname: target, mode: 0o777, uid: 0, gid: 0, mtime: MTIME } };
}

function hardlink(name: string, target: string): Entry {
  return { header: { name, type: 'link', linkname: target, mode: 0o755, uid: 0, gid: 0, mtime: MTIME } };
}

function device(
  name: string,
  type: 'character-device' | 'block-device',
  major: number,
  minor: number,
  mode: number,
): Entry {
  return { header: { name, type, devmajor: major, devminor: minor, mode, uid: 0, gid: 0, mtime: MTIME } };
}

async function pack(entries: Entry[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.body === undefined) p.entry(e.header, cb);
      else p.entry(e.header, e.body, cb);
    });
  }
  p.finalize();
  return done;
}

const busybox = `#!/bin/sh\n# not really busybox\n${'x'.repeat(3000)}\n`;

export function layer1(): Promise<Buffer> {
  return pack([
    dir('bin'),
    dir('dev'),
    dir('etc'),
    dir('home'),
    dir('home/user', 0o700, { uid: 1000, gid: 1000 }),
    dir('opt'),
    dir('opt/old'),
    dir('run'),
    dir('tmp', 0o1777),
    dir('usr'),
    dir('usr/bin'),
    dir('usr/lib'),
    dir('usr/share'),
    dir('usr/share/doc'),
    dir(LONG_DIR),
    dir('var'),
    dir('var/mail', 0o2775, { gid: 8 }),
    file('usr/bin/busybox', busybox, 0o755),
    hardlink('usr/bin/ls', 'usr/bin/busybox'),
    symlink('bin/sh', '/usr/bin/busybox'),
    symlink('lib', 'usr/lib'),
    file('usr/lib/libc.so', 'libc\n', 0o755),
    file('usr/bin/su', 'su\n', 0o4755),
    file('usr/bin/ping', 'ping\n', 0o755, {
      pax: { 'SCHILY.xattr.security.capability': CAP_NET_RAW_EP.toString('latin1') },
    }),
    file('etc/motd', 'welcome\n', 0o644, { pax: { 'SCHILY.xattr.user.comment': 'message of the day' } }),
    file('etc/remove-me', 'gone in layer 2\n'),
    file('etc/replace-me', 'a file in layer 1, a directory in layer 2\n'),
    file('opt/old/a', 'a\n'),
    file('opt/old/b', 'b\n'),
    file('home/user/.profile', 'export PS1=$\n', 0o644, { uid: 1000, gid: 1000 }),
    file(LONG_FILE, 'a name longer than 100 bytes needs a PAX header\n'),
    device('dev/null', 'character-device', 1, 3, 0o666),
    device('dev/loop0', 'block-device', 7, 0, 0o660),
    { header: { name: 'run/initctl', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: MTIME } },
  ]);
}

export function layer2(): Promise<Buffer> {
  return pack([
    dir('etc'),
    file('etc/.wh.remove-me', ''),
    file('etc/motd', 'welcome back\n', 0o644),
    dir('etc/replace-me'),
    file('etc/replace-me/now-a-dir', 'inside\n'),
    dir('opt/old'),
    file('opt/old/.wh..wh..opq', ''),
    file('opt/old/c', 'c\n'),
    // Written through the `lib -> usr/lib` symlink of layer 1: must land in usr/lib.
    file('lib/libnew.so', 'new\n', 0o755),
    // A hardlink to a file of the layer below.
    hardlink('usr/bin/cat', 'usr/bin/busybox'),
  ]);
}

export function layer3(): Promise<Buffer> {
  return pack([
    dir('opt'),
    file('opt/.wh.old', ''),
    dir('opt/new'),
    file('opt/new/d', 'd\n', 0o640, { uid: 1000, gid: 1000 }),
    file('usr/bin/su', 'su v2\n', 0o4755),
  ]);
}
