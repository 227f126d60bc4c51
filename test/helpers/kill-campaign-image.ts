// The image the kill campaign works on: many small files (unpack takes a while, so kills land in it), a
// few MiB that do not compress (the download takes a while) and a small top layer; pushed to the test
// registry and saved to an archive for `load`.
import { join } from 'node:path';
import { type FileContent, pushLayout, writeOciLayout } from './image-builder.ts';
import type { CampaignImage } from './kill-campaign-ops.ts';
import { tempStore } from './run-hoist.ts';

const SMALL_FILES = 600;
const RANDOM_BYTES = 3 * 1024 * 1024;

export async function campaignImage(work: string, registryHost: string): Promise<CampaignImage> {
  const many: Record<string, FileContent> = {};
  for (let i = 0; i < SMALL_FILES; i++)
    many[`srv/files/f${String(i).padStart(5, '0')}`] = `file ${i}\n`.repeat(1 + (i % 40));
  const [built] = await writeOciLayout(join(work, 'layout'), [
    {
      tag: 'v1',
      image: {
        layers: [many, { randomBytes: RANDOM_BYTES, path: 'srv/blob.bin' }, { 'etc/app.conf': 'kill=9\n' }],
      },
    },
  ]);
  await pushLayout(join(work, 'layout'), 'campaign/app:v1', registryHost);
  const ref = `${registryHost}/campaign/app:v1`;
  const archive = join(work, 'app.tar');
  const s = await tempStore();
  try {
    await s.ok('pull', '--plain-http', '-q', '--unpack=false', ref);
    await s.ok('save', '-q', '-o', archive, ref);
  } finally {
    await s.cleanup();
  }
  return { ref, id: built!.top.digest, layers: 3, registry: registryHost, archive };
}
