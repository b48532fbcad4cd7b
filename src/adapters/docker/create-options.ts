import type Docker from 'dockerode';

interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/**
 * Turns `docker inspect` output into the options that create an equivalent container named `name`.
 * The image is pinned by id, because CRIU restores into exactly the files it dumped from. With `ports: 'free'`
 * published ports keep their host address but take a free host port, so the new container can run beside the
 * original; with `'same'` (a migration to another host) they keep their host ports too.
 */
export function toCreateOptions(
  inspect: unknown,
  name: string,
  labels: Record<string, string>,
  ports: 'same' | 'free' = 'free',
  keepVolumes = false,
): Docker.ContainerCreateOptions {
  const raw = inspect as Docker.ContainerInspectInfo;
  const hostConfig: Docker.HostConfig = { ...(raw.HostConfig as Docker.HostConfig) };
  if (keepVolumes) {
    // Anonymous volumes are mounted by name, or the new container would get empty ones.
    const bound = new Set((hostConfig.Binds ?? []).map((b) => b.split(':')[1]));
    const volumes = (raw.Mounts ?? []).filter(
      (m) => m.Type === 'volume' && m.Name && !bound.has(m.Destination),
    );
    hostConfig.Binds = [
      ...(hostConfig.Binds ?? []),
      ...volumes.map((m) => `${m.Name!}:${m.Destination}${m.RW ? '' : ':ro'}`),
    ];
  }
  // Podman's inspect names ulimits as the kernel does (RLIMIT_NOFILE); its create, as Docker's, wants nofile.
  if (hostConfig.Ulimits)
    hostConfig.Ulimits = hostConfig.Ulimits.map((u) => ({
      ...u,
      Name: (u.Name ?? '').replace(/^RLIMIT_/, '').toLowerCase(),
    }));
  if (hostConfig.PortBindings) {
    // 'same': a port Docker chose (`-p 127.0.0.1::8080`) is the one it chose then, as the original ran.
    const bound = (raw.NetworkSettings?.Ports ?? {}) as Record<string, PortBinding[] | null>;
    const bindings: Record<string, PortBinding[]> = {};
    for (const [port, list] of Object.entries(
      hostConfig.PortBindings as Record<string, PortBinding[] | null>,
    )) {
      bindings[port] = (list ?? []).map((b) => ({
        HostIp: b.HostIp ?? '',
        HostPort:
          ports === 'free'
            ? ''
            : b.HostPort || (bound[port]?.find((p) => (p.HostIp ?? '') === (b.HostIp ?? ''))?.HostPort ?? ''),
      }));
    }
    hostConfig.PortBindings = bindings;
  }
  const networks = Object.entries(raw.NetworkSettings?.Networks ?? {});
  const first = networks.find(([networkName]) => networkName === hostConfig.NetworkMode) ?? networks[0];
  const networkingConfig =
    first && !['bridge', 'host', 'none', 'default'].includes(first[0])
      ? { EndpointsConfig: { [first[0]]: { Aliases: first[1].Aliases ?? [] } } }
      : undefined;
  return {
    ...raw.Config,
    name,
    Image: raw.Image,
    Labels: { ...(raw.Config.Labels ?? {}), ...labels },
    HostConfig: hostConfig,
    ...(networkingConfig ? { NetworkingConfig: networkingConfig } : {}),
  } as Docker.ContainerCreateOptions;
}
