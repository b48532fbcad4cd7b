import { constants } from 'node:os';
import { CRIU_CONFIG_ANNOTATION, CROSS_ENGINE_CRIU_CONFIG } from '../../domain/cross-engine.js';
import { LABEL_SOURCE_ENGINE } from '../../domain/labels.js';
import type { Manifest } from '../../domain/manifest.js';

/**
 * The engine-neutral files of a checkpoint that other tools read: config.dump in the shape of Podman's
 * ContainerConfig (libpod/container_config.go, the same keys in 4.3 and 5.8) with CRI-O's keys beside it
 * (checkpointctl reads those), so that `podman container restore --import` creates the container from it, and
 * network.status in Podman's network status shape, made from Docker's `docker inspect` output.
 */
interface DockerInspect {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  Config: {
    Image: string;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    StopTimeout?: number | null;
  };
  Mounts?: { Type?: string; Destination?: string }[] | null;
  HostConfig?: {
    Runtime?: string;
    NetworkMode?: string;
    ShmSize?: number;
    PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
  };
  NetworkSettings?: {
    Ports?: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
    Networks?: Record<
      string,
      { IPAddress?: string; IPPrefixLen?: number; Gateway?: string; MacAddress?: string }
    >;
  };
}

/** Podman's network for a container on Docker's bridge or a network of its own: its default, `podman`. */
const PODMAN_DEFAULT_NETWORK = 'podman';
const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;
const DEFAULT_STOP_TIMEOUT_S = 10;

export function configDump(inspect: unknown, checkpointedAt: Date): Record<string, unknown> {
  const c = inspect as DockerInspect;
  const image = c.Image.replace(/^sha256:/, '');
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    rootfsImage: c.Image,
    rootfsImageRef: c.Image,
    rootfsImageName: c.Config.Image,
    rootfsImageID: image,
    RawImageName: c.Config.Image,
    runtime: c.HostConfig?.Runtime ?? 'runc',
    createdTime: c.Created,
    checkpointedTime: checkpointedAt.toISOString(),
    restoredTime: '0001-01-01T00:00:00Z',
    restored: false,
    idMappingsOptions: { HostUIDMapping: true, HostGIDMapping: true },
    ...podmanNetwork(c.HostConfig?.NetworkMode ?? 'default'),
    ...(portMappings(c).length > 0 ? { newPortMappings: portMappings(c) } : {}),
    ...(c.Config.Cmd ? { command: c.Config.Cmd } : {}),
    ...(c.Config.Entrypoint ? { entrypoint: c.Config.Entrypoint } : {}),
    ...(c.Config.Labels ? { labels: c.Config.Labels } : {}),
    stopSignal: signalNumber(c.Config.StopSignal),
    stopTimeout: c.Config.StopTimeout ?? DEFAULT_STOP_TIMEOUT_S,
    shmSize: c.HostConfig?.ShmSize || DEFAULT_SHM_BYTES,
    logDriver: 'k8s-file',
    cgroupsMode: 'enabled',
    umask: '0022',
  };
}

/** Docker's host network is Podman's; any other network becomes Podman's default bridge. */
function podmanNetwork(mode: string): Record<string, unknown> {
  if (mode === 'host') return { createNetNS: false, networkMode: 'host' };
  if (mode === 'none') return { createNetNS: true, networkMode: 'none' };
  return {
    createNetNS: true,
    networkMode: 'bridge',
    newNetworks: { [PODMAN_DEFAULT_NETWORK]: { interface_name: 'eth0' } },
  };
}

/** Docker's published ports; one Docker chose (`-p 8080`) keeps the host port it got, as Podman needs one. */
function portMappings(c: DockerInspect): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [port, bindings] of Object.entries(c.HostConfig?.PortBindings ?? {})) {
    const [number, protocol = 'tcp'] = port.split('/');
    const assigned = c.NetworkSettings?.Ports?.[port] ?? [];
    for (const b of bindings ?? []) {
      const hostPort = Number(b.HostPort || assigned.find((a) => Number(a.HostPort) > 0)?.HostPort || 0);
      if (hostPort === 0) continue;
      out.push({
        host_ip: b.HostIp ?? '',
        container_port: Number(number),
        host_port: hostPort,
        range: 1,
        protocol,
      });
    }
  }
  return out;
}

function signalNumber(name: string | undefined): number {
  if (!name) return constants.signals.SIGTERM;
  if (/^\d+$/.test(name)) return Number(name);
  const key = (name.startsWith('SIG') ? name : `SIG${name}`) as keyof typeof constants.signals;
  return constants.signals[key] ?? constants.signals.SIGTERM;
}

/**
 * The runtime spec as another engine can run it: without Docker's hooks (its libnetwork-setkey runs dockerd's own
 * binary, by pid), and naming cryo's CRIU configuration for runc (runc reads the `org.criu.config` annotation;
 * CRIU ignores a file that is not there).
 */
export function portableSpec(spec: unknown): unknown {
  if (typeof spec !== 'object' || spec === null) return spec;
  const rest = { ...(spec as Record<string, unknown> & { annotations?: Record<string, string> }) };
  delete rest.hooks;
  return {
    ...rest,
    annotations: { [CRIU_CONFIG_ANNOTATION]: CROSS_ENGINE_CRIU_CONFIG, ...(rest.annotations ?? {}) },
  };
}

export function networkStatus(inspect: unknown): Record<string, unknown> | undefined {
  const networks = (inspect as DockerInspect).NetworkSettings?.Networks ?? {};
  const out: Record<string, unknown> = {};
  for (const [name, n] of Object.entries(networks)) {
    if (!n.IPAddress) continue;
    out[name] = {
      interfaces: {
        eth0: {
          subnets: [
            { ipnet: `${n.IPAddress}/${n.IPPrefixLen ?? 32}`, ...(n.Gateway ? { gateway: n.Gateway } : {}) },
          ],
          mac_address: n.MacAddress ?? '',
        },
      },
    };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A minimal OCI spec for checkpoints whose runtime bundle could not be read. */
export function fallbackSpec(inspect: unknown): Record<string, unknown> {
  const c = inspect as DockerInspect;
  return {
    ociVersion: '1.0.2',
    annotations: { 'io.container.manager': 'docker', 'org.cryo.container-id': c.Id },
  };
}

/** The bind mounts Podman gives every container (libpod's makeBindMounts); Docker has its own or cryo adds them. */
export const PODMAN_OWN_MOUNTS = [
  '/etc/hosts',
  '/etc/hostname',
  '/etc/resolv.conf',
  '/run/.containerenv',
  '/dev/shm',
  '/run/secrets',
];

export interface PodmanSpec {
  hostname?: string | undefined;
  process: { args: string[]; env?: string[] | undefined; cwd: string; user: { uid: number; gid: number } };
}

interface PodmanConfig {
  id: string;
  name: string;
  rootfsImageID: string;
  rootfsImageName: string;
  newPortMappings?:
    | { container_port: number; protocol?: string | undefined; host_ip?: string | undefined }[]
    | null
    | undefined;
  labels?: Record<string, string> | null | undefined;
}

/**
 * Docker's container config (`docker inspect`'s shape, as docker-config.json holds it) for a Podman checkpoint:
 * the same process, user and directory; its published ports on free host ports of Docker's default network;
 * /dev/shm bind-mounted (`IpcMode: shareable`) and `binds` added, as the images name mounts there.
 */
export function dockerConfigFromPodman(
  config: PodmanConfig,
  spec: PodmanSpec,
  binds: Record<string, string>,
): Record<string, unknown> {
  const mappings = (config.newPortMappings ?? []).map((p) => ({
    port: `${p.container_port}/${p.protocol ?? 'tcp'}`,
    hostIp: p.host_ip ?? '',
  }));
  const ports = [...new Set(mappings.map((m) => m.port))];
  const [entrypoint, ...cmd] = spec.process.args;
  return {
    Id: config.id,
    Name: `/${config.name}`,
    Image: `sha256:${config.rootfsImageID}`,
    Config: {
      Image: config.rootfsImageName,
      Entrypoint: [entrypoint],
      Cmd: cmd,
      // Podman's own variables; Docker sets HOSTNAME itself.
      Env: (spec.process.env ?? []).filter((e) => !/^(container|HOSTNAME)=/.test(e)),
      WorkingDir: spec.process.cwd,
      User: `${spec.process.user.uid}:${spec.process.user.gid}`,
      ...(spec.hostname ? { Hostname: spec.hostname } : {}),
      ExposedPorts: Object.fromEntries(ports.map((p) => [p, {}])),
      Labels: { ...(config.labels ?? {}), [LABEL_SOURCE_ENGINE]: 'podman' },
    },
    HostConfig: {
      NetworkMode: 'default',
      IpcMode: 'shareable',
      // The same host address, a free host port: the Podman host's port may be taken here.
      PortBindings: Object.fromEntries(
        ports.map((p) => [
          p,
          mappings.filter((m) => m.port === p).map((m) => ({ HostIp: m.hostIp, HostPort: '' })),
        ]),
      ),
      Binds: Object.entries(binds).map(([dest, source]) => `${source}:${dest}:ro`),
    },
    NetworkSettings: {},
    Mounts: [],
  };
}

/**
 * Why Podman cannot restore this Docker checkpoint yet, or undefined: its volumes and bind mounts (the spec names
 * Docker's paths) and a `container:` network (a Podman container of that name is not there).
 */
export function notPortableToPodman(
  manifest: Manifest,
  inspect: unknown,
): { what: string; hint: string } | undefined {
  return notPortable(manifest.mounts, inspect);
}

/**
 * What keeps a running container from migrating between the engines yet, or undefined, from its inspect (before
 * anything is frozen): what notPortableToPodman refuses of its checkpoint, which Docker's adoption of Podman's
 * refuses too.
 */
export function notMigratableAcrossEngines(inspect: unknown): string | undefined {
  const mounts = ((inspect as DockerInspect).Mounts ?? []).map((m) => ({
    type: m.Type?.toLowerCase() ?? '',
    destination: m.Destination ?? '',
  }));
  return notPortable(mounts, inspect)?.what;
}

function notPortable(
  all: { type: string; destination: string }[],
  inspect: unknown,
): { what: string; hint: string } | undefined {
  const mounts = all.filter((m) => m.type === 'volume' || m.type === 'bind');
  if (mounts.length > 0)
    return {
      what: `a container with volumes or bind mounts (${mounts.map((m) => m.destination).join(', ')})`,
      hint: 'checkpoint a container without them for Podman, or restore it into Docker (format cryo)',
    };
  const mode = (inspect as DockerInspect).HostConfig?.NetworkMode ?? '';
  if (mode.startsWith('container:'))
    return {
      what: `a container on another container's network (${mode})`,
      hint: 'checkpoint a container with a network of its own, or on the host network',
    };
  return undefined;
}
