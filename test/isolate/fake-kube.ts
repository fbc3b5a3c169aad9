/**
 * An in-memory apiserver for reconciler unit tests: objects by path, resourceVersions from one counter,
 * create (409 AlreadyExists), merge patch with an optional resourceVersion guard (409 Conflict), the
 * status subresource, label-selected lists, and gates that hold chosen requests until released.
 */
import type { Kube, KubeRequest } from '../../src/isolate/kube.ts';
import { KubeError } from '../../src/isolate/kube.ts';

interface Obj {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    generateName?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Applies a JSON merge patch (RFC 7386). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function matches(labels: Record<string, string>, selector: string): boolean {
  return selector.split(',').every((term) => {
    if (term.startsWith('!')) return !(term.slice(1) in labels);
    const eq = term.indexOf('=');
    if (eq < 0) return term in labels;
    return labels[term.slice(0, eq)] === term.slice(eq + 1);
  });
}

export interface Gate {
  /** Resolves when a request matching the gate is being held. */
  reached: Promise<void>;
  release(): void;
}

export class FakeKube implements Kube {
  readonly objects = new Map<string, Obj>();
  /** Every request, in the order received: `METHOD path`. */
  readonly log: string[] = [];
  readonly events: Obj[] = [];
  /** The API groups discovery (`/apis`) serves besides the core group. */
  apiGroups: { name: string; versions: { version: string }[] }[] = [];
  private rv = 100;
  private uid = 0;
  private readonly gates: { match: (r: KubeRequest) => boolean; open: Promise<void>; hit: () => void }[] = [];

  /** Holds every request matching `match` until `release()`. */
  gate(match: (r: KubeRequest) => boolean): Gate {
    let release!: () => void;
    let hit!: () => void;
    const open = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (hit = r));
    const g = { match, open, hit };
    this.gates.push(g);
    return {
      reached,
      release: () => {
        this.gates.splice(this.gates.indexOf(g), 1);
        release();
      },
    };
  }

  put(collection: string, obj: Obj): Obj {
    const stored = {
      ...obj,
      metadata: {
        ...obj.metadata,
        uid: obj.metadata.uid ?? `uid-${++this.uid}`,
        resourceVersion: String(++this.rv),
        generation: obj.metadata.generation ?? 1,
      },
    };
    this.objects.set(`${collection}/${obj.metadata.name}`, stored);
    return structuredClone(stored);
  }

  get(path: string): Obj | undefined {
    const o = this.objects.get(path);
    return o ? structuredClone(o) : undefined;
  }

  /** What a read with `resourceVersion=0` (the watch cache) returns instead of the current object. */
  readonly cached = new Map<string, Obj>();

  async request<T = unknown>(req: KubeRequest): Promise<T> {
    this.log.push(`${req.method} ${req.path}${req.query?.resourceVersion === '0' ? ' (cache)' : ''}`);
    const stale = req.method === 'GET' && req.query?.resourceVersion === '0' && this.cached.get(req.path);
    if (stale) return structuredClone(stale) as T;
    for (const g of [...this.gates])
      if (g.match(req)) {
        g.hit();
        await g.open;
      }
    await Promise.resolve();
    return this.handle(req) as T;
  }

  private handle(req: KubeRequest): unknown {
    const { method, path } = req;
    if (method === 'GET' && path === '/apis') return { groups: structuredClone(this.apiGroups) };
    const body = req.body as Obj | undefined;
    if (method === 'POST' && path.endsWith('/events')) {
      this.events.push(body!);
      return body;
    }
    if (method === 'GET') {
      const o = this.objects.get(path);
      if (o) return structuredClone(o);
      if (this.isItemPath(path)) throw new KubeError(404, 'NotFound', `${path} not found`);
      const items = [...this.objects.entries()]
        .filter(([p]) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/'))
        .map(([, x]) => structuredClone(x))
        .filter(
          (x) => !req.query?.labelSelector || matches(x.metadata.labels ?? {}, req.query.labelSelector),
        );
      return { items, metadata: { resourceVersion: String(this.rv) } };
    }
    if (method === 'POST') {
      const key = `${path}/${body!.metadata.name}`;
      if (this.objects.has(key)) throw new KubeError(409, 'AlreadyExists', `${key} already exists`);
      return this.put(path, body!);
    }
    const status = path.endsWith('/status');
    const itemPath = status ? path.slice(0, -'/status'.length) : path;
    const cur = this.objects.get(itemPath);
    if (!cur) throw new KubeError(404, 'NotFound', `${itemPath} not found`);
    if (method === 'DELETE') {
      this.objects.delete(itemPath);
      return {};
    }
    const guard = body?.metadata?.resourceVersion;
    if (guard !== undefined && guard !== cur.metadata.resourceVersion)
      throw new KubeError(409, 'Conflict', `${itemPath}: the object has been modified`);
    let next: Obj;
    if (method === 'PUT') next = { ...body!, metadata: { ...cur.metadata, ...body!.metadata } };
    else if (status) next = { ...cur, status: mergePatch(cur.status, (body as { status?: unknown }).status) };
    else next = mergePatch(cur, body) as Obj;
    const specChanged = JSON.stringify(next.spec) !== JSON.stringify(cur.spec);
    next.metadata = {
      ...next.metadata,
      resourceVersion: String(++this.rv),
      generation: (cur.metadata.generation ?? 1) + (specChanged && !status ? 1 : 0),
    };
    this.objects.set(itemPath, next);
    return structuredClone(next);
  }

  /** Paths of a single object: `.../namespaces/<ns>/<plural>/<name>` or a cluster-scoped item. */
  private isItemPath(path: string): boolean {
    const parts = path.split('/').filter((x) => x !== '');
    const i = parts.lastIndexOf('namespaces');
    return i >= 0 ? parts.length - i === 4 : false;
  }
}
