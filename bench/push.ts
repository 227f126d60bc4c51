// Push of the medium image to an empty loopback registry (a fresh registry each run):
//   hoist push --plain-http REF-ON-NEW-REGISTRY      (from a store holding the image)
//   skopeo copy oci:LAYOUT docker://NEW-REGISTRY/…   (from the same image as an OCI layout on disk)
// Each run checks the registry serves the manifest afterwards.
import { execFileSync } from 'node:child_process';
import { startRegistry } from '../test/helpers/registry.ts';
import {
  type Bench,
  hoistStore,
  machineLine,
  printCpuRatios,
  printGoals,
  printTable,
  RUNS,
  run,
  runInterleaved,
  type Sample,
  sampleOf,
  summarize,
} from './lib.ts';
import { MEDIUM_REPO, MEDIUM_TAG, registryWithMediumImage } from './medium-image.ts';

const src = await registryWithMediumImage();
const template = await hoistStore();
await template.hoist(['pull', '-q', '--plain-http', '--unpack=false', src.ref]);

const check = (host: string) => {
  const raw = execFileSync('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--raw',
    `docker://${host}/push/medium:v1`,
  ]);
  if (!raw.toString().includes(src.image.manifestDigest.slice(7)) && raw.length < 100)
    throw new Error('pushed manifest missing');
};

const hoistPush = async (): Promise<Sample> => {
  const dst = await startRegistry();
  const store = await hoistStore({ from: template.root });
  try {
    const target = `${dst.registryHost}/push/medium:v1`;
    await store.hoist(['tag', src.ref, target]);
    const r = await store.hoist(['push', '-q', '--plain-http', target]);
    check(dst.registryHost);
    return sampleOf(r);
  } finally {
    await store.cleanup();
    await dst.stop();
  }
};

const skopeoPush = async (): Promise<Sample> => {
  const dst = await startRegistry();
  try {
    const r = await run('skopeo', [
      'copy',
      '--quiet',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${src.image.layoutDir}:${MEDIUM_TAG}`,
      `docker://${dst.registryHost}/push/medium:v1`,
    ]);
    check(dst.registryHost);
    return sampleOf(r);
  } finally {
    await dst.stop();
  }
};

const benches: Bench[] = [
  { name: 'hoist push', command: 'hoist push --plain-http NEW/push/medium:v1', samples: [], fn: hoistPush },
  {
    name: 'skopeo copy (push)',
    command: `skopeo copy oci:LAYOUT:${MEDIUM_TAG} docker://NEW/push/medium:v1`,
    samples: [],
    fn: skopeoPush,
  },
];

try {
  await runInterleaved(benches);
} finally {
  await template.cleanup();
  await src.stop();
}

process.stdout.write(
  `# push: the medium image (${MEDIUM_REPO}) to an empty registry\n\n${await machineLine()}\n`,
);
printTable(`push (median of ${RUNS})`, benches);
const z = Object.fromEntries(benches.map((s) => [s.name, summarize(s).median]));
printCpuRatios([[benches[0]!, benches[1]!]]);
printGoals([
  { label: 'hoist push / skopeo copy', value: z['hoist push']! / z['skopeo copy (push)']!, limit: 1.0 },
]);
