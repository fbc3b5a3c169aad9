/**
 * Builds realistic Kubernetes objects (what `kubectl get ... -o json` prints) for synthetic clusters,
 * and keeps a compact registry of nodes, workloads and pods that the flow generators draw from.
 * Everything is deterministic given the builder's random generator.
 */
import { isoSeconds } from '../model/time.ts';
import type { Rng } from './prng.ts';

export interface NodeInfo {
  name: string;
  /** InternalIP of the node (what host-network pods and kubelet use). */
  ip: string;
  /** First three octets of the node's IPv4 pod CIDR (a /24), e.g. `10.244.1`. */
  podPrefix: string;
  /** IPv6 pod CIDR prefix (a /64 written without the trailing `::`), when the node is dual-stack. */
  podPrefix6?: string;
  /** The cilium_host address inside the pod CIDR: kubelet probes come from it. */
  routerIP: string;
  controlPlane: boolean;
  /** Next host number to hand out in the pod CIDR. */
  nextHost: number;
  /** True when this node runs an old Cilium agent (legacy `reply` field only, no `is_reply`). */
  oldAgent: boolean;
  mac: string;
}

export type RootKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob';

export interface WorkloadInfo {
  namespace: string;
  kind: RootKind;
  name: string;
  /** Pod template labels (without controller-added hash labels). */
  labels: Record<string, string>;
  serviceAccount: string;
  /** Cilium security identity shared by all pods of the workload. */
  identity: number;
  hostNetwork: boolean;
  pods: PodInfo[];
  /** Hubble `workloads` entry (the root controller). */
  hubbleWorkload: { name: string; kind: string };
  /** uid of the root controller object. */
  uid: string;
}

export interface PodInfo {
  namespace: string;
  name: string;
  ip: string;
  ipv6?: string;
  node: NodeInfo;
  workload: WorkloadInfo;
  /** Cilium endpoint id (local to the node); 0 for host-network pods. */
  endpointId: number;
  /** Milliseconds since the epoch. */
  startTime: number;
  /** When the pod stopped existing (absent from the snapshot afterwards); undefined while it runs. */
  endTime?: number;
  mac: string;
  iface: { index: number; name: string };
}

export interface PortSpec {
  name: string;
  port: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  clusterIP: string;
  ports: { name: string; port: number; targetPort: number | string; protocol: string }[];
  workload: WorkloadInfo;
}

export interface WorkloadSpec {
  namespace: string;
  name: string;
  kind: RootKind;
  replicas?: number;
  /** Labels of the pod template; defaults to `{app: name}`. */
  labels?: Record<string, string>;
  image: string;
  ports?: PortSpec[];
  serviceAccount?: string;
  hostNetwork?: boolean;
  /** Give the pods an IPv6 address too (on dual-stack nodes). */
  dualStack?: boolean;
  /** Nodes to place pods on (round robin); defaults to all schedulable nodes. DaemonSets use all nodes. */
  nodes?: NodeInfo[];
  /** CronJob schedule. */
  schedule?: string;
  /** CronJob: when the Job that produced the running pod was scheduled (ms). */
  jobScheduledAt?: number;
  /** CronJob: when that Job's pod finished (it is then Succeeded in the snapshot). */
  jobCompletedAt?: number;
  /** Override for the pods' start time (ms). */
  podStartTime?: number;
  /** Per-replica overrides (Deployments): a fixed IP (IP reuse), a start time, a node. */
  podOverrides?: Record<number, PodOverride>;
  /** Fixed pod-template-hash / controller revision suffix (otherwise random). */
  templateHash?: string;
  /** Fixed Cilium identity (otherwise the next free one). */
  identity?: number;
}

/** What a caller may fix about one replica (large clusters derive these from a layout). */
export interface PodOverride {
  ip?: { ip: string; ipv6?: string };
  startTime?: number;
  node?: NodeInfo;
  name?: string;
  endpointId?: number;
  mac?: string;
  iface?: { index: number; name: string };
}

export const CILIUM_CLUSTER = 'default';

const DAY = 86_400_000;

/** RFC 3339 to the second, as objects carry times. */
export const iso = isoSeconds;

/** Cilium endpoint ids are 1..65535, unique per node. */
export class ClusterBuilder {
  readonly rng: Rng;
  /** Time the snapshot is taken (ms). */
  readonly now: number;
  readonly nodes: NodeInfo[] = [];
  readonly workloads: WorkloadInfo[] = [];
  readonly services: ServiceInfo[] = [];
  /** Objects in emission order; callers may drain it (`takeObjects`) to stream. */
  objects: object[] = [];
  private nextIdentity = 10_000;
  private nextEndpointId = 100;
  private nextClusterIP = 20;
  private nextIfIndex = 12;
  private readonly namespaceCreated = new Map<string, number>();
  private resourceVersion = 1_000;

  /** Leave out fields no stage reads (pod conditions, resources, probes, ...) to save memory. */
  readonly lean: boolean;

  constructor(rng: Rng, now: number, opts: { lean?: boolean } = {}) {
    this.rng = rng;
    this.now = now;
    this.lean = opts.lean === true;
  }

  takeObjects(): object[] {
    const out = this.objects;
    this.objects = [];
    return out;
  }

  private rv(): string {
    this.resourceVersion += 1 + this.rng.int(0, 40);
    return String(this.resourceVersion);
  }

  mac(): string {
    const bytes = [(this.rng.int(0, 255) & 0xfe) | 0x02];
    for (let i = 0; i < 5; i++) bytes.push(this.rng.int(0, 255));
    return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
  }

  addNode(spec: {
    name: string;
    ip: string;
    podPrefix: string;
    podPrefix6?: string;
    routerHost: number;
    controlPlane?: boolean;
    oldAgent?: boolean;
    emit?: boolean;
  }): NodeInfo {
    const node: NodeInfo = {
      name: spec.name,
      ip: spec.ip,
      podPrefix: spec.podPrefix,
      ...(spec.podPrefix6 ? { podPrefix6: spec.podPrefix6 } : {}),
      routerIP: `${spec.podPrefix}.${spec.routerHost}`,
      controlPlane: spec.controlPlane === true,
      nextHost: 2,
      oldAgent: spec.oldAgent === true,
      mac: this.mac(),
    };
    this.nodes.push(node);
    if (spec.emit !== false) {
      const labels: Record<string, string> = {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
      };
      if (node.controlPlane) labels['node-role.kubernetes.io/control-plane'] = '';
      const cidrs = [`${node.podPrefix}.0/24`, ...(node.podPrefix6 ? [`${node.podPrefix6}::/64`] : [])];
      this.objects.push({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: node.name,
          uid: this.rng.uuid(),
          resourceVersion: this.rv(),
          creationTimestamp: iso(this.now - 30 * DAY),
          labels,
        },
        spec: { podCIDR: cidrs[0], podCIDRs: cidrs },
        status: {
          addresses: [
            { type: 'InternalIP', address: node.ip },
            { type: 'Hostname', address: node.name },
          ],
        },
      });
    }
    return node;
  }

  /** Hands out the next pod IP on a node (and an IPv6 one when asked and the node has a v6 CIDR). */
  allocatePodIP(node: NodeInfo, v6: boolean): { ip: string; ipv6?: string } {
    const host = node.nextHost++;
    if (host > 254) throw new RangeError(`node ${node.name} ran out of pod IPs`);
    const ip = `${node.podPrefix}.${host}`;
    if (v6 && node.podPrefix6) return { ip, ipv6: `${node.podPrefix6}::${host.toString(16)}` };
    return { ip };
  }

  namespace(name: string, labels: Record<string, string> = {}, createdAt?: number): void {
    if (this.namespaceCreated.has(name)) return;
    const created = createdAt ?? this.now - this.rng.int(20, 29) * DAY - this.rng.int(0, DAY);
    this.namespaceCreated.set(name, created);
    this.objects.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name,
        uid: this.rng.uuid(),
        resourceVersion: this.rv(),
        creationTimestamp: iso(created),
        labels: { 'kubernetes.io/metadata.name': name, ...labels },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
  }

  private created(ns: string, minDays: number): number {
    const nsCreated = this.namespaceCreated.get(ns) ?? this.now - 30 * DAY;
    const latest = this.now - minDays * DAY;
    return Math.max(nsCreated + 60_000, latest - this.rng.int(0, 5 * DAY));
  }

  /** Builds the controller objects and pods of one workload and registers them. */
  workload(spec: WorkloadSpec): WorkloadInfo {
    const labels = spec.labels ?? { app: spec.name };
    const sa = spec.serviceAccount ?? spec.name;
    const info: WorkloadInfo = {
      namespace: spec.namespace,
      kind: spec.kind,
      name: spec.name,
      labels,
      serviceAccount: sa,
      identity: spec.identity ?? this.nextIdentity + this.rng.int(1, 60),
      hostNetwork: spec.hostNetwork === true,
      pods: [],
      hubbleWorkload: { name: spec.name, kind: spec.kind },
      uid: '',
    };
    this.nextIdentity = info.identity;
    this.workloads.push(info);
    this.namespace(spec.namespace);
    const podSpec = this.podSpec(spec, sa);
    const selector = { matchLabels: { ...labels } };
    const created = this.created(spec.namespace, 2);
    const meta = (name: string, extra: object = {}) => ({
      name,
      namespace: spec.namespace,
      uid: (info.uid = this.rng.uuid()),
      resourceVersion: this.rv(),
      generation: 1,
      creationTimestamp: iso(created),
      labels: { ...labels },
      ...extra,
    });
    const schedulable = spec.nodes ?? this.nodes;
    const replicas = spec.kind === 'DaemonSet' ? schedulable.length : (spec.replicas ?? 1);
    const podStart =
      spec.podStartTime ?? Math.max(created + 30_000, this.now - this.rng.int(2, 20) * 3_600_000);

    switch (spec.kind) {
      case 'Deployment': {
        const dMeta = meta(spec.name, { annotations: { 'deployment.kubernetes.io/revision': '1' } });
        this.objects.push({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: dMeta,
          spec: {
            replicas,
            selector,
            template: { metadata: { labels: { ...labels } }, spec: podSpec },
            strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
            revisionHistoryLimit: 10,
          },
          status: {
            observedGeneration: 1,
            replicas,
            readyReplicas: replicas,
            availableReplicas: replicas,
            updatedReplicas: replicas,
          },
        });
        this.replicaSet(spec, info, dMeta, podSpec, replicas, podStart, schedulable, '1');
        break;
      }
      case 'StatefulSet': {
        const sMeta = meta(spec.name);
        const revision = `${spec.name}-${spec.templateHash ?? this.rng.suffix(10)}`;
        this.objects.push({
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          metadata: sMeta,
          spec: {
            replicas,
            selector,
            serviceName: spec.name,
            podManagementPolicy: 'OrderedReady',
            template: { metadata: { labels: { ...labels } }, spec: podSpec },
            updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
          },
          status: {
            observedGeneration: 1,
            replicas,
            readyReplicas: replicas,
            currentReplicas: replicas,
            updatedReplicas: replicas,
            currentRevision: revision,
            updateRevision: revision,
          },
        });
        for (let i = 0; i < replicas; i++) {
          const name = `${spec.name}-${i}`;
          this.pod(
            spec,
            info,
            podSpec,
            name,
            schedulable[i % schedulable.length]!,
            podStart + i * 40_000,
            {
              ...labels,
              'apps.kubernetes.io/pod-index': String(i),
              'controller-revision-hash': revision,
              'statefulset.kubernetes.io/pod-name': name,
            },
            owner('apps/v1', 'StatefulSet', sMeta),
            { index: i },
          );
        }
        break;
      }
      case 'DaemonSet': {
        const dsMeta = meta(spec.name, { annotations: { 'deprecated.daemonset.template.generation': '1' } });
        const hash = spec.templateHash ?? this.rng.suffix(9);
        this.objects.push({
          apiVersion: 'apps/v1',
          kind: 'DaemonSet',
          metadata: dsMeta,
          spec: {
            selector,
            template: { metadata: { labels: { ...labels } }, spec: podSpec },
            updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
          },
          status: {
            currentNumberScheduled: replicas,
            desiredNumberScheduled: replicas,
            numberAvailable: replicas,
            numberReady: replicas,
            observedGeneration: 1,
            updatedNumberScheduled: replicas,
          },
        });
        for (const [i, node] of schedulable.entries()) {
          this.pod(
            spec,
            info,
            podSpec,
            `${spec.name}-${this.rng.suffix(5)}`,
            node,
            podStart,
            {
              ...labels,
              'controller-revision-hash': hash,
              'pod-template-generation': '1',
            },
            owner('apps/v1', 'DaemonSet', dsMeta),
            { index: i },
          );
        }
        break;
      }
      case 'CronJob': {
        const cMeta = meta(spec.name);
        const jobTemplate = {
          spec: {
            backoffLimit: 2,
            template: {
              metadata: { labels: { ...labels } },
              spec: { ...podSpec, restartPolicy: 'OnFailure' },
            },
          },
        };
        const scheduled = spec.jobScheduledAt ?? podStart;
        this.objects.push({
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: cMeta,
          spec: {
            schedule: spec.schedule ?? '0 * * * *',
            concurrencyPolicy: 'Forbid',
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 1,
            jobTemplate,
          },
          status: { lastScheduleTime: iso(scheduled) },
        });
        const jobName = `${spec.name}-${Math.floor(scheduled / 60_000)}`;
        const jobUid = this.rng.uuid();
        const jobLabels = {
          ...labels,
          'batch.kubernetes.io/controller-uid': jobUid,
          'batch.kubernetes.io/job-name': jobName,
          'controller-uid': jobUid,
          'job-name': jobName,
        };
        const jMeta = {
          name: jobName,
          namespace: spec.namespace,
          uid: jobUid,
          resourceVersion: this.rv(),
          generation: 1,
          creationTimestamp: iso(scheduled),
          labels: jobLabels,
          ownerReferences: [owner('batch/v1', 'CronJob', cMeta)],
        };
        this.objects.push({
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: jMeta,
          spec: {
            backoffLimit: 2,
            completions: 1,
            parallelism: 1,
            selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': jobUid } },
            template: { metadata: { labels: jobLabels }, spec: { ...podSpec, restartPolicy: 'OnFailure' } },
          },
          status:
            spec.jobCompletedAt !== undefined
              ? {
                  succeeded: 1,
                  startTime: iso(scheduled),
                  completionTime: iso(spec.jobCompletedAt),
                  conditions: [
                    {
                      type: 'Complete',
                      status: 'True',
                      lastProbeTime: iso(spec.jobCompletedAt),
                      lastTransitionTime: iso(spec.jobCompletedAt),
                    },
                  ],
                }
              : { active: 1, startTime: iso(scheduled), ready: 1 },
        });
        for (let i = 0; i < replicas; i++) {
          this.pod(
            spec,
            info,
            { ...podSpec, restartPolicy: 'OnFailure' },
            `${jobName}-${this.rng.suffix(5)}`,
            schedulable[i % schedulable.length]!,
            spec.podStartTime ?? scheduled + 2_000,
            jobLabels,
            owner('batch/v1', 'Job', jMeta),
            { index: i, ...(spec.jobCompletedAt !== undefined ? { endTime: spec.jobCompletedAt } : {}) },
          );
        }
        break;
      }
    }
    return info;
  }

  private replicaSet(
    spec: WorkloadSpec,
    info: WorkloadInfo,
    dMeta: { name: string; uid: string; creationTimestamp: string },
    podSpec: Record<string, unknown>,
    replicas: number,
    podStart: number,
    nodes: NodeInfo[],
    revision: string,
  ): void {
    const hash = spec.templateHash ?? this.rng.suffix(10);
    const rsName = `${spec.name}-${hash}`;
    const labels = { ...info.labels, 'pod-template-hash': hash };
    const rsMeta = {
      name: rsName,
      namespace: spec.namespace,
      uid: this.rng.uuid(),
      resourceVersion: this.rv(),
      generation: 1,
      creationTimestamp: dMeta.creationTimestamp,
      labels,
      annotations: {
        'deployment.kubernetes.io/desired-replicas': String(replicas),
        'deployment.kubernetes.io/max-replicas': String(replicas + Math.ceil(replicas / 4)),
        'deployment.kubernetes.io/revision': revision,
      },
      ownerReferences: [owner('apps/v1', 'Deployment', dMeta)],
    };
    this.objects.push({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: rsMeta,
      spec: {
        replicas,
        selector: { matchLabels: { ...info.labels, 'pod-template-hash': hash } },
        template: { metadata: { labels }, spec: podSpec },
      },
      status: {
        replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        fullyLabeledReplicas: replicas,
        observedGeneration: 1,
      },
    });
    for (let i = 0; i < replicas; i++) {
      const o = spec.podOverrides?.[i];
      this.pod(
        spec,
        info,
        podSpec,
        `${rsName}-${this.rng.suffix(5)}`,
        o?.node ?? nodes[i % nodes.length]!,
        o?.startTime ?? podStart + i * 7_000,
        labels,
        owner('apps/v1', 'ReplicaSet', rsMeta),
        { index: i },
      );
    }
  }

  /**
   * A ReplicaSet that a rollout scaled to zero, whose pods no longer exist: it stays in the snapshot
   * (revision history) and returns the name prefix its pods had.
   */
  oldReplicaSet(info: WorkloadInfo, deploymentUid: string): { name: string; labels: Record<string, string> } {
    const hash = this.rng.suffix(10);
    const name = `${info.name}-${hash}`;
    const labels = { ...info.labels, 'pod-template-hash': hash };
    this.objects.push({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name,
        namespace: info.namespace,
        uid: this.rng.uuid(),
        resourceVersion: this.rv(),
        generation: 2,
        creationTimestamp: iso(this.now - 9 * DAY),
        labels,
        annotations: {
          'deployment.kubernetes.io/desired-replicas': '0',
          'deployment.kubernetes.io/revision': '1',
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: info.name,
            uid: deploymentUid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { replicas: 0, selector: { matchLabels: labels }, template: { metadata: { labels } } },
      status: { replicas: 0, observedGeneration: 2 },
    });
    return { name, labels };
  }

  private podSpec(spec: WorkloadSpec, sa: string): Record<string, unknown> {
    const ports = (spec.ports ?? []).map((p) => ({
      name: p.name,
      containerPort: p.port,
      protocol: p.protocol ?? 'TCP',
      ...(spec.hostNetwork ? { hostPort: p.port } : {}),
    }));
    if (this.lean) {
      return {
        containers: [{ name: spec.name, image: spec.image, ...(ports.length > 0 ? { ports } : {}) }],
        ...(spec.hostNetwork ? { hostNetwork: true } : {}),
        serviceAccountName: sa,
      };
    }
    const container: Record<string, unknown> = {
      name: spec.name,
      image: spec.image,
      imagePullPolicy: 'IfNotPresent',
      ...(ports.length > 0 ? { ports } : {}),
      resources: { requests: { cpu: '100m', memory: '128Mi' } },
      terminationMessagePath: '/dev/termination-log',
      terminationMessagePolicy: 'File',
    };
    const http = spec.ports?.find((p) => p.name === 'http' || p.name === 'metrics');
    if (http && spec.kind !== 'CronJob') {
      container.readinessProbe = {
        httpGet: { path: '/healthz', port: http.name, scheme: 'HTTP' },
        periodSeconds: 10,
      };
    }
    return {
      containers: [container],
      dnsPolicy: spec.hostNetwork ? 'ClusterFirstWithHostNet' : 'ClusterFirst',
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      serviceAccountName: sa,
      serviceAccount: sa,
      terminationGracePeriodSeconds: 30,
    };
  }

  /** Builds one Pod object, allocates its IPs and registers it. */
  pod(
    spec: WorkloadSpec,
    info: WorkloadInfo,
    podSpec: Record<string, unknown>,
    podName: string,
    podNode: NodeInfo,
    podStart: number,
    labels: Record<string, string>,
    ownerRef: object,
    opts: { emit?: boolean; endTime?: number; index?: number } = {},
  ): PodInfo {
    const o = opts.index !== undefined ? spec.podOverrides?.[opts.index] : undefined;
    const name = o?.name ?? podName;
    const node = o?.node ?? podNode;
    const startTime = o?.startTime ?? podStart;
    const addr = spec.hostNetwork
      ? { ip: node.ip }
      : (o?.ip ?? this.allocatePodIP(node, spec.dualStack === true));
    const pod: PodInfo = {
      namespace: spec.namespace,
      name,
      ip: addr.ip,
      ...(addr.ipv6 ? { ipv6: addr.ipv6 } : {}),
      node,
      workload: info,
      endpointId: spec.hostNetwork ? 0 : (o?.endpointId ?? this.nextEndpointId + this.rng.int(1, 300)),
      startTime,
      ...(opts.endTime !== undefined ? { endTime: opts.endTime } : {}),
      mac: o?.mac ?? this.mac(),
      iface: o?.iface ?? {
        index: spec.hostNetwork ? 2 : this.nextIfIndex++,
        name: spec.hostNetwork ? 'eth0' : `lxc${this.rng.hex(12)}`,
      },
    };
    if (!spec.hostNetwork && !o?.endpointId) this.nextEndpointId = pod.endpointId;
    if (this.nextEndpointId > 60_000) this.nextEndpointId = 100;
    info.pods.push(pod);
    if (opts.emit === false) return pod;
    const completed = spec.kind === 'CronJob' && opts.endTime !== undefined;
    const ips = [addr.ip, ...(addr.ipv6 ? [addr.ipv6] : [])];
    this.objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        ...(spec.kind === 'Deployment' || spec.kind === 'DaemonSet' || spec.kind === 'CronJob'
          ? { generateName: name.slice(0, name.lastIndexOf('-') + 1) }
          : {}),
        namespace: spec.namespace,
        uid: this.rng.uuid(),
        resourceVersion: this.rv(),
        creationTimestamp: iso(startTime - 1_000),
        labels,
        ownerReferences: [ownerRef],
      },
      spec: { ...podSpec, nodeName: node.name },
      status: this.lean
        ? {
            phase: completed ? 'Succeeded' : 'Running',
            hostIP: node.ip,
            podIP: addr.ip,
            podIPs: ips.map((ip) => ({ ip })),
            startTime: iso(startTime),
          }
        : {
            phase: completed ? 'Succeeded' : 'Running',
            hostIP: node.ip,
            hostIPs: [{ ip: node.ip }],
            podIP: addr.ip,
            podIPs: ips.map((ip) => ({ ip })),
            startTime: iso(startTime),
            qosClass: 'Burstable',
            conditions: [
              {
                type: 'Initialized',
                status: 'True',
                lastProbeTime: null,
                lastTransitionTime: iso(startTime),
              },
              {
                type: 'Ready',
                status: completed ? 'False' : 'True',
                lastProbeTime: null,
                lastTransitionTime: iso(startTime + 4_000),
              },
              {
                type: 'ContainersReady',
                status: completed ? 'False' : 'True',
                lastProbeTime: null,
                lastTransitionTime: iso(startTime + 4_000),
              },
              {
                type: 'PodScheduled',
                status: 'True',
                lastProbeTime: null,
                lastTransitionTime: iso(startTime - 1_000),
              },
            ],
          },
    });
    return pod;
  }

  nextServiceIP(): string {
    const n = this.nextClusterIP++;
    return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  }

  /**
   * A Service selecting a workload's pods, and its EndpointSlice(s) (one per address family in use).
   * `ports[].targetPort` may name a container port.
   */
  service(spec: {
    workload: WorkloadInfo;
    name?: string;
    type?: 'ClusterIP' | 'LoadBalancer' | 'NodePort';
    clusterIP?: string;
    headless?: boolean;
    ports: {
      name: string;
      port: number;
      targetPort?: number | string;
      protocol?: string;
      nodePort?: number;
    }[];
    containerPorts: PortSpec[];
    selector?: Record<string, string>;
    loadBalancerIP?: string;
    dualStack?: boolean;
  }): ServiceInfo {
    const w = spec.workload;
    const name = spec.name ?? w.name;
    const clusterIP = spec.headless ? 'None' : (spec.clusterIP ?? this.nextServiceIP());
    const selector = spec.selector ?? { ...w.labels };
    const ports = spec.ports.map((p) => ({
      name: p.name,
      port: p.port,
      protocol: p.protocol ?? 'TCP',
      targetPort: p.targetPort ?? p.port,
      ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
    }));
    const meta = {
      name,
      namespace: w.namespace,
      uid: this.rng.uuid(),
      resourceVersion: this.rv(),
      creationTimestamp: iso(this.created(w.namespace, 2)),
      labels: { ...w.labels },
    };
    const ipFamilies = spec.dualStack ? ['IPv4', 'IPv6'] : ['IPv4'];
    this.objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta,
      spec: {
        type: spec.type ?? 'ClusterIP',
        clusterIP,
        clusterIPs: [clusterIP],
        ipFamilies,
        ipFamilyPolicy: spec.dualStack ? 'PreferDualStack' : 'SingleStack',
        internalTrafficPolicy: 'Cluster',
        ...(spec.type === 'LoadBalancer'
          ? { externalTrafficPolicy: 'Local', allocateLoadBalancerNodePorts: true }
          : {}),
        ports,
        selector,
        sessionAffinity: 'None',
      },
      status: {
        loadBalancer: spec.loadBalancerIP ? { ingress: [{ ip: spec.loadBalancerIP, ipMode: 'VIP' }] } : {},
      },
    });
    const resolved = ports.map((p) => {
      const target =
        typeof p.targetPort === 'number'
          ? p.targetPort
          : spec.containerPorts.find((c) => c.name === p.targetPort)?.port;
      if (target === undefined)
        throw new Error(`service ${name}: no container port named ${String(p.targetPort)}`);
      return { name: p.name, port: target, protocol: p.protocol };
    });
    const families: ('IPv4' | 'IPv6')[] = spec.dualStack ? ['IPv4', 'IPv6'] : ['IPv4'];
    for (const family of families) {
      const live = w.pods.filter((p) => p.endTime === undefined && (family === 'IPv4' || p.ipv6));
      this.objects.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: `${name}-${this.rng.suffix(5)}`,
          generateName: `${name}-`,
          namespace: w.namespace,
          uid: this.rng.uuid(),
          resourceVersion: this.rv(),
          generation: 1,
          creationTimestamp: meta.creationTimestamp,
          labels: {
            'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
            'kubernetes.io/service-name': name,
            ...(spec.headless ? { 'service.kubernetes.io/headless': '' } : {}),
          },
          ownerReferences: [owner('v1', 'Service', meta)],
        },
        addressType: family,
        endpoints: live.map((p) => ({
          addresses: [family === 'IPv4' ? p.ip : p.ipv6!],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: p.node.name,
          targetRef: { kind: 'Pod', name: p.name, namespace: p.namespace },
        })),
        ports: resolved,
      });
    }
    const info: ServiceInfo = { namespace: w.namespace, name, clusterIP, ports, workload: w };
    this.services.push(info);
    return info;
  }

  /** Emits an arbitrary object (API server Service, policies, ...). */
  raw(obj: object): void {
    this.objects.push(obj);
  }

  uid(): string {
    return this.rng.uuid();
  }

  resourceVersionString(): string {
    return this.rv();
  }
}

function owner(apiVersion: string, kind: string, meta: { name: string; uid: string }): object {
  return { apiVersion, kind, name: meta.name, uid: meta.uid, controller: true, blockOwnerDeletion: true };
}
