// The names containerd's CRI plugin gives one pulled image in `k8s.io`: `repo:tag`, `repo@<target>` and
// `sha256:<config>`, all on the same target with `io.cri-containerd.image=managed`. hoist creates the
// same records so kubelet, crictl and ctr find what they expect, and shows them as one image.
import type { Descriptor } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { Labels } from '../core/labels.ts';
import { type Reference, repository } from '../core/reference.ts';

export const CRI_NAMESPACE = 'k8s.io';

export function criNames(ref: Reference, target: Descriptor, configDigest: Digest | undefined): string[] {
  const names: string[] = [];
  if (configDigest) names.push(configDigest);
  if (ref.tag !== undefined) names.push(`${repository(ref)}:${ref.tag}`);
  names.push(`${repository(ref)}@${target.digest}`);
  return names;
}

export function criLabels(pinned: boolean): Record<string, string> {
  const labels: Record<string, string> = { [Labels.criManaged]: 'managed' };
  if (pinned) labels[Labels.criPinned] = 'pinned';
  return labels;
}
