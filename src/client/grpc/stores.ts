// The store interfaces over containerd's gRPC API (as containerd's own proxies do): images, content
// (reads, labels, deletion, resumable writes over the Write stream, ingest status), namespaces, leases.
import { Readable } from 'node:stream';
import type {
  ContentInfo,
  ContentStore,
  ContentWriter,
  IngestStatus,
  WriterOptions,
} from '../../api/content.ts';
import { dateFromTimestamp, descriptorFromProto, descriptorToProto, fromInt64 } from '../../api/convert.ts';
import { Content, type Info, type Status } from '../../api/gen/containerd/services/content/v1/content_pb.ts';
import { type Image, Images } from '../../api/gen/containerd/services/images/v1/images_pb.ts';
import { Leases } from '../../api/gen/containerd/services/leases/v1/leases_pb.ts';
import { Namespaces } from '../../api/gen/containerd/services/namespaces/v1/namespace_pb.ts';
import type {
  ImageRecord,
  ImageStore,
  Lease,
  LeaseManager,
  LeaseResource,
  Namespace,
  NamespaceStore,
} from '../../api/metadata.ts';
import type { Context } from '../../core/context.ts';
import type { Digest } from '../../core/digest.ts';
import { HoistError } from '../../core/errors.ts';
import type { GrpcChannel } from './channel.ts';
import { openRemoteWriter } from './writer.ts';

const date = dateFromTimestamp;

function notThroughDaemon(what: string): HoistError {
  return new HoistError('HOIST_NOT_IMPLEMENTED', `${what} is not available through --address yet`, {
    hint: 'run this command on the embedded store (without --address)',
  });
}

function imageFromProto(i: Image): ImageRecord {
  return {
    name: i.name,
    target: descriptorFromProto(i.target),
    labels: { ...i.labels },
    createdAt: date(i.createdAt),
    updatedAt: date(i.updatedAt),
  };
}

export class GrpcImageStore implements ImageStore {
  readonly #ch: GrpcChannel;
  constructor(ch: GrpcChannel) {
    this.#ch = ch;
  }

  /** Another process's store changes behind this client's back: no token to cache on. */
  version(_ctx: Context): undefined {
    return undefined;
  }

  async get(ctx: Context, name: string): Promise<ImageRecord> {
    const r = await this.#ch.unary(Images, Images.method.get, ctx, { name });
    if (!r.image) throw new HoistError('HOIST_NOT_FOUND', `image "${name}": not found`);
    return imageFromProto(r.image);
  }

  async list(ctx: Context, filters: string[] = []): Promise<ImageRecord[]> {
    const r = await this.#ch.unary(Images, Images.method.list, ctx, { filters });
    return r.images.map(imageFromProto);
  }

  listByTarget(ctx: Context, target: Digest): Promise<ImageRecord[]> {
    return this.list(ctx, [`target.digest==${target}`]);
  }

  async create(ctx: Context, image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>): Promise<ImageRecord> {
    const r = await this.#ch.unary(Images, Images.method.create, ctx, {
      image: { name: image.name, labels: image.labels, target: descriptorToProto(image.target) },
    });
    return imageFromProto(r.image!);
  }

  async update(
    ctx: Context,
    image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>,
    fieldpaths?: string[],
  ): Promise<ImageRecord> {
    const r = await this.#ch.unary(Images, Images.method.update, ctx, {
      image: { name: image.name, labels: image.labels, target: descriptorToProto(image.target) },
      ...(fieldpaths && fieldpaths.length > 0 ? { updateMask: { paths: fieldpaths } } : {}),
    });
    return imageFromProto(r.image!);
  }

  /** `sync`: containerd runs its garbage collection before answering (how rmi gets "GC before return"). */
  async delete(ctx: Context, name: string, opts: { target?: Digest; sync?: boolean } = {}): Promise<void> {
    await this.#ch.unary(Images, Images.method.delete, ctx, {
      name,
      sync: opts.sync ?? true,
      ...(opts.target ? { target: { digest: opts.target, mediaType: '', size: 0n, annotations: {} } } : {}),
    });
  }
}

function infoFromProto(i: Info | undefined): ContentInfo {
  return {
    digest: (i?.digest ?? '') as Digest,
    size: fromInt64(i?.size ?? 0n, 'size'),
    createdAt: date(i?.createdAt),
    updatedAt: date(i?.updatedAt),
    labels: { ...(i?.labels ?? {}) },
  };
}

export class GrpcContentStore implements ContentStore {
  readonly #ch: GrpcChannel;
  constructor(ch: GrpcChannel) {
    this.#ch = ch;
  }

  async info(ctx: Context, digest: Digest): Promise<ContentInfo> {
    return infoFromProto((await this.#ch.unary(Content, Content.method.info, ctx, { digest })).info);
  }

  async update(
    ctx: Context,
    info: { digest: Digest; labels: Record<string, string> },
    fieldpaths?: string[],
  ): Promise<ContentInfo> {
    const r = await this.#ch.unary(Content, Content.method.update, ctx, {
      info: { digest: info.digest, labels: info.labels },
      ...(fieldpaths && fieldpaths.length > 0 ? { updateMask: { paths: fieldpaths } } : {}),
    });
    return infoFromProto(r.info);
  }

  async list(ctx: Context, filters: string[] = []): Promise<ContentInfo[]> {
    const out: ContentInfo[] = [];
    for await (const r of this.#ch.stream(Content, Content.method.list, ctx, { filters })) {
      for (const i of r.info) out.push(infoFromProto(i));
    }
    return out;
  }

  async delete(ctx: Context, digest: Digest): Promise<void> {
    await this.#ch.unary(Content, Content.method.delete, ctx, { digest });
  }

  async reader(
    ctx: Context,
    digest: Digest,
    opts: { offset?: number; length?: number } = {},
  ): Promise<Readable> {
    const stream = this.#ch.stream(Content, Content.method.read, ctx, {
      digest,
      offset: BigInt(opts.offset ?? 0),
      size: BigInt(opts.length ?? 0),
    });
    return Readable.from(
      (async function* () {
        for await (const r of stream) yield Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
      })(),
    );
  }

  async readBlob(ctx: Context, digest: Digest, maxBytes = 4 * 1024 * 1024): Promise<Buffer> {
    const info = await this.info(ctx, digest);
    if (info.size > maxBytes)
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        `blob ${digest} is ${info.size} bytes, over the ${maxBytes}-byte limit`,
      );
    const chunks: Buffer[] = [];
    for await (const c of await this.reader(ctx, digest)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  writer(ctx: Context, opts: WriterOptions): Promise<ContentWriter> {
    return openRemoteWriter(this.#ch, ctx, opts);
  }

  async status(ctx: Context, ref: string): Promise<IngestStatus> {
    const r = await this.#ch.unary(Content, Content.method.status, ctx, { ref });
    return statusFromProto(r.status);
  }

  async listStatuses(ctx: Context, filters: string[] = []): Promise<IngestStatus[]> {
    const r = await this.#ch.unary(Content, Content.method.listStatuses, ctx, { filters });
    return r.statuses.map(statusFromProto);
  }

  async abort(ctx: Context, ref: string): Promise<void> {
    await this.#ch.unary(Content, Content.method.abort, ctx, { ref });
  }
}

function statusFromProto(s: Status | undefined): IngestStatus {
  const out: IngestStatus = {
    ref: s?.ref ?? '',
    offset: fromInt64(s?.offset ?? 0n, 'offset'),
    total: fromInt64(s?.total ?? 0n, 'total'),
    startedAt: date(s?.startedAt),
    updatedAt: date(s?.updatedAt),
  };
  if (s?.expected) out.expected = s.expected as Digest;
  return out;
}

export class GrpcNamespaceStore implements NamespaceStore {
  readonly #ch: GrpcChannel;
  constructor(ch: GrpcChannel) {
    this.#ch = ch;
  }
  // Namespaces calls carry no namespace of their own; containerd ignores the metadata for them.
  readonly #ctx: Context = { namespace: 'default' };

  async list(): Promise<Namespace[]> {
    const r = await this.#ch.unary(Namespaces, Namespaces.method.list, this.#ctx, { filter: '' });
    return r.namespaces.map((n) => ({ name: n.name, labels: { ...n.labels } }));
  }

  async get(name: string): Promise<Namespace> {
    const r = await this.#ch.unary(Namespaces, Namespaces.method.get, this.#ctx, { name });
    return { name: r.namespace!.name, labels: { ...r.namespace!.labels } };
  }

  async create(name: string, labels: Record<string, string> = {}): Promise<Namespace> {
    const r = await this.#ch.unary(Namespaces, Namespaces.method.create, this.#ctx, {
      namespace: { name, labels },
    });
    return { name: r.namespace!.name, labels: { ...r.namespace!.labels } };
  }

  async setLabel(name: string, key: string, value: string): Promise<Namespace> {
    await this.#ch.unary(Namespaces, Namespaces.method.update, this.#ctx, {
      namespace: { name, labels: value ? { [key]: value } : {} },
      updateMask: { paths: [`labels.${key}`] },
    });
    // containerd 1.6 answers an update with a mask without the namespace's labels: read them back.
    return this.get(name);
  }

  async delete(name: string): Promise<void> {
    await this.#ch.unary(Namespaces, Namespaces.method.delete, this.#ctx, { name });
  }
}

export class GrpcLeaseManager implements LeaseManager {
  readonly #ch: GrpcChannel;
  constructor(ch: GrpcChannel) {
    this.#ch = ch;
  }

  async create(ctx: Context, opts: { id?: string; labels?: Record<string, string> } = {}): Promise<Lease> {
    const r = await this.#ch.unary(Leases, Leases.method.create, ctx, {
      id: opts.id ?? '',
      labels: opts.labels ?? {},
    });
    return { id: r.lease!.id, createdAt: date(r.lease!.createdAt), labels: { ...r.lease!.labels } };
  }

  async delete(ctx: Context, id: string): Promise<void> {
    await this.#ch.unary(Leases, Leases.method.delete, ctx, { id, sync: false });
  }

  async list(ctx: Context, filters: string[] = []): Promise<Lease[]> {
    const r = await this.#ch.unary(Leases, Leases.method.list, ctx, { filters });
    return r.leases.map((l) => ({ id: l.id, createdAt: date(l.createdAt), labels: { ...l.labels } }));
  }

  setLabels(_ctx: Context, _id: string, _labels: Record<string, string>): Promise<Lease> {
    // containerd's Leases service has no update: a lease's labels are fixed at creation.
    return Promise.reject(notThroughDaemon('changing lease labels'));
  }

  async addResource(ctx: Context, id: string, resource: LeaseResource): Promise<void> {
    await this.#ch.unary(Leases, Leases.method.addResource, ctx, { id, resource });
  }

  async deleteResource(ctx: Context, id: string, resource: LeaseResource): Promise<void> {
    await this.#ch.unary(Leases, Leases.method.deleteResource, ctx, { id, resource });
  }

  async listResources(ctx: Context, id: string): Promise<LeaseResource[]> {
    const r = await this.#ch.unary(Leases, Leases.method.listResources, ctx, { id });
    return r.resources.map((x) => ({ id: x.id, type: x.type }));
  }
}
