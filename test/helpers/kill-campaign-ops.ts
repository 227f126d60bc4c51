// The operations the kill campaign (kill-campaign.ts) interrupts, each with the state it starts from and
// what must hold after: pull (fetch and unpack), unpack, rmi with its GC, system prune, in-place convert,
// load and push. A killed command never leaves a half image: a name points at a whole image or at none.
import assert from 'node:assert/strict';
import type { CampaignOp } from './kill-campaign.ts';
import { type HoistStore, jsonLines } from './run-hoist.ts';

export interface CampaignImage {
  /** `<registry>/<repo>:<tag>` of the image, pushed beforehand. */
  ref: string;
  /** Its manifest digest (the image ID). */
  id: string;
  layers: number;
  /** The registry (plain HTTP) to push copies to. */
  registry: string;
  /** A `hoist save` archive of the image. */
  archive: string;
}

const SNAPSHOTTER = 'native';

async function imageId(s: HoistStore, name: string): Promise<string | undefined> {
  const r = await s.run('image', 'inspect', name);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { Id: string }[])[0]!.Id;
}

async function names(s: HoistStore): Promise<string[]> {
  // JSON lines, one per name.
  const out = await s.ok('images', '--format', 'json');
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { Name: string }).Name);
}

async function committedSnapshots(s: HoistStore): Promise<number> {
  const snaps = jsonLines(await s.ok('snapshot', '--snapshotter', SNAPSHOTTER, 'ls', '--format', 'json'));
  return snaps.filter((x) => x.Kind === 'committed').length;
}

/** No image, and nothing an interrupted run left behind that prune would not take. */
async function empty(s: HoistStore): Promise<void> {
  if ((await names(s)).length) await s.ok('rmi', '-f', ...(await names(s)));
  await s.ok('system', 'prune', '-a');
}

export function campaignOps(img: CampaignImage): CampaignOp[] {
  const pullArgs = ['pull', '--plain-http', '-q', '--snapshotter', SNAPSHOTTER, img.ref];
  const present = async (s: HoistStore) => {
    if ((await imageId(s, img.ref)) !== img.id) await s.ok(...pullArgs);
  };
  const whole = async (s: HoistStore) =>
    assert.equal(await imageId(s, img.ref), img.id, 'the image is whole');
  let converted: string | undefined;
  return [
    {
      name: 'pull',
      prepare: empty,
      args: () => pullArgs,
      async verify(s) {
        await whole(s);
        assert.equal(await committedSnapshots(s), img.layers, 'every layer unpacked');
      },
    },
    {
      name: 'unpack',
      async prepare(s) {
        await empty(s);
        await s.ok('pull', '--plain-http', '-q', '--unpack=false', img.ref);
      },
      args: () => ['unpack', '--snapshotter', SNAPSHOTTER, img.ref],
      async verify(s) {
        await whole(s);
        assert.equal(await committedSnapshots(s), img.layers, 'every layer unpacked');
      },
    },
    {
      name: 'rmi (with GC)',
      prepare: present,
      args: () => ['rmi', img.ref],
      async afterKill(s) {
        const id = await imageId(s, img.ref);
        assert.ok(id === undefined || id === img.id, 'the name is gone or still names the whole image');
      },
      async recover(s) {
        if (await imageId(s, img.ref)) await s.ok('rmi', img.ref);
      },
      async verify(s) {
        assert.deepEqual(await names(s), []);
      },
    },
    {
      name: 'system prune',
      prepare: present,
      args: () => ['system', 'prune', '-a'],
      async afterKill(s) {
        const id = await imageId(s, img.ref);
        assert.ok(id === undefined || id === img.id, 'the name is gone or still names the whole image');
      },
      async verify(s) {
        assert.deepEqual(await names(s), []);
        assert.equal(await committedSnapshots(s), 0, 'the snapshots went with the image');
      },
    },
    {
      name: 'convert in place',
      async prepare(s) {
        // A pull names the registry's image again (the previous round converted it).
        if ((await imageId(s, img.ref)) !== img.id)
          await s.ok('pull', '--plain-http', '-q', '--unpack=false', img.ref);
      },
      args: () => ['image', 'convert', '-q', '--uncompress', img.ref, img.ref],
      async afterKill(s) {
        const id = await imageId(s, img.ref);
        assert.ok(
          id === img.id || (id !== undefined && id === converted),
          `the name moved atomically: ${id}`,
        );
      },
      async verify(s) {
        const id = await imageId(s, img.ref);
        assert.ok(id !== undefined && id !== img.id, 'converted');
        converted ??= id; // the first (measured) run: conversion is deterministic, every round gives it
        assert.equal(id, converted);
      },
    },
    {
      name: 'load',
      prepare: empty,
      args: () => ['load', '-q', '--snapshotter', SNAPSHOTTER, '-i', img.archive],
      async afterKill(s) {
        const id = await imageId(s, img.ref);
        assert.ok(id === undefined || id === img.id, 'no half-loaded image has the name');
      },
      async verify(s) {
        await whole(s);
      },
    },
    {
      name: 'push',
      prepare: present,
      // A new repository every round, so every round uploads (or mounts) the blobs again.
      args: (s, n) => ['push', '--plain-http', img.ref, pushedRef(img, s, n)],
      async verify(s) {
        await whole(s);
      },
      async recover(s, n) {
        await s.ok('push', '--plain-http', img.ref, pushedRef(img, s, n));
        // What the registry now has is the whole image: pull it back by that name.
        await s.ok('pull', '--plain-http', '-q', '--unpack=false', pushedRef(img, s, n));
        assert.equal(await imageId(s, pushedRef(img, s, n)), img.id);
        await s.ok('rmi', pushedRef(img, s, n));
      },
    },
  ];
}

function pushedRef(img: CampaignImage, s: HoistStore, n: number): string {
  const lane = s.root
    .split('/')
    .at(-2)!
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase();
  return `${img.registry}/campaign/pushed-${lane}-${n < 0 ? 'm' : n}:1`;
}
