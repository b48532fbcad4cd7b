/**
 * The engine-neutral files of a checkpoint that other tools read (checkpointctl, Podman): config.dump in
 * Podman's ContainerConfig shape and network.status in Podman's network status shape, made from Docker's
 * `docker inspect` output.
 */
interface DockerInspect {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  Config: { Image: string };
  HostConfig?: { Runtime?: string };
  NetworkSettings?: {
    Networks?: Record<
      string,
      { IPAddress?: string; IPPrefixLen?: number; Gateway?: string; MacAddress?: string }
    >;
  };
}

export function configDump(inspect: unknown, checkpointedAt: Date): Record<string, unknown> {
  const c = inspect as DockerInspect;
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    rootfsImage: c.Image,
    rootfsImageRef: c.Image,
    rootfsImageName: c.Config.Image,
    runtime: c.HostConfig?.Runtime ?? 'runc',
    createdTime: c.Created,
    checkpointedTime: checkpointedAt.toISOString(),
    restoredTime: '0001-01-01T00:00:00Z',
    restored: false,
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
