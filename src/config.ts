import { z } from 'zod';
import {
  DEADLINES,
  DEFAULT_DATA_DIR,
  DEFAULT_LISTEN,
  DEFAULT_RUNTIME_STATE_DIR,
  DEFAULT_TOLERABLE_FAILURES,
} from './defaults.js';

const ListenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'CRYO_LISTEN must be host:port, e.g. 127.0.0.1:7070')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
  })
  .refine((l) => l.port >= 0 && l.port <= 65535, 'port out of range');

/** A comma-separated list (of files, of hosts). */
const commaList = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean),
  );

export const ConfigSchema = z.object({
  listen: ListenSchema.default(DEFAULT_LISTEN),
  dataDir: z.string().min(1).default(DEFAULT_DATA_DIR),
  token: z.string().min(16, 'CRYO_TOKEN must be at least 16 characters').optional(),
  engine: z
    .enum(['docker', 'podman'])
    .default('docker')
    .describe(
      "the engine whose containers cryo manages: dockerd, or Podman's service (podman system service)",
    ),
  dockerSocket: z.string().min(1).default('/var/run/docker.sock'),
  podmanSocket: z
    .string()
    .min(1)
    .default('/run/podman/podman.sock')
    .describe("Podman's API socket, with CRYO_ENGINE=podman"),
  containerdSocket: z.string().min(1).optional(),
  dockerExecRoot: z.string().min(1).default('/var/run/docker'),
  runc: z.string().min(1).default('runc').describe("the runc that dockerd's containers run under"),
  runtimeStateDir: z
    .string()
    .min(1)
    .default(DEFAULT_RUNTIME_STATE_DIR)
    .describe("where cryo's OCI runtime finds pending restores (its CRYO_RUNTIME_STATE)"),
  maxImportBytes: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 ** 3),
  minFreeBytes: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('bytes of the data directory that checkpoints and imports must leave free'),
  minFreePercent: z.coerce
    .number()
    .min(0)
    .max(100)
    .default(0)
    .describe("the same, as a percentage of the data directory's file system"),
  metricsPublic: z
    .enum(['0', '1', 'true', 'false'])
    .default('0')
    .transform((v) => v === '1' || v === 'true')
    .describe('GET /metrics without the token'),
  postCopy: z
    .enum(['on', 'off'])
    .default('on')
    .describe('off: this host takes part in no post-copy migration (strategy auto falls back)'),
  pageServerAddress: z
    .union([z.ipv4(), z.ipv6()])
    .optional()
    .describe(
      "where a post-copy migration's target reaches this host's page server (default: the address it sees cryo at)",
    ),
  lazyPagesTimeoutSeconds: z.coerce.number().int().positive().default(600),
  migrationRetentionMs: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(24 * 3_600_000),
  scheduleGraceMs: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(10 * 60 * 1000),
  sidecarTimeoutMs: z.coerce.number().int().positive().default(60_000),
  sidecarMinPauseMs: z.coerce.number().int().nonnegative().default(0),
  sidecarMaxConcurrent: z.coerce.number().int().positive().max(16).default(1),
  sidecarTolerableFailures: z.coerce.number().int().nonnegative().default(DEFAULT_TOLERABLE_FAILURES),
  dockerTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(DEADLINES.docker.ms)
    .describe('how long a Docker request may stay silent (docker start of a restore included)'),
  commandTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(DEADLINES.command.ms)
    .describe('how long a helper command (nsenter ss, ctr, sync -f, mknod, mkfifo) may run'),
  peerTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(DEADLINES.peerStream.ms)
    .describe("how long a migration's stream to its target may move no byte either way"),
  requestBodyTimeoutMs: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(DEADLINES.requestBody.ms)
    .describe('how long a request body may stand still before it is answered 408 (0: never)'),
  migrationSettleTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(DEADLINES.migrationSettle.ms)
    .describe('how long a migration target may stay silent before the source runs the workload again'),
  lazyDumpTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(DEADLINES.lazyDump.ms)
    .describe('how long a post-copy dump may take to serve its pages while the source is frozen'),
  registryAuthFile: z
    .string()
    .min(1)
    .optional()
    .describe("Docker's config.json whose auths hold the registry logins (default: docker's own)"),
  registryCaFile: z.string().min(1).optional().describe('a CA trusted for registries besides the system CAs'),
  registryInsecure: commaList.describe(
    'registries reached over plain HTTP, comma-separated (one on loopback always is)',
  ),
  registryEncryptionKey: commaList.describe(
    'RSA public keys (PEM files, comma-separated): every layer pushed is encrypted for them (ocicrypt, jwe)',
  ),
  registryDecryptionKey: commaList.describe(
    'RSA private keys (PEM files, comma-separated) that pulls open encrypted layers with',
  ),
  registryTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(DEADLINES.registry.ms)
    .describe('how long a registry request may stay silent'),
  criuBinary: z.string().min(1).default('criu'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Config = z.infer<typeof ConfigSchema>;

/** Reads the configuration from the environment (CRYO_*), with explicit overrides winning. */
export function loadConfig(
  env: NodeJS.ProcessEnv,
  overrides: Partial<Record<keyof Config, unknown>> = {},
): Config {
  const fromEnv = {
    listen: env.CRYO_LISTEN,
    dataDir: env.CRYO_DATA_DIR,
    token: env.CRYO_TOKEN,
    engine: env.CRYO_ENGINE,
    dockerSocket: env.CRYO_DOCKER_SOCKET ?? dockerSocketFromHost(env.DOCKER_HOST),
    podmanSocket: env.CRYO_PODMAN_SOCKET,
    containerdSocket: env.CRYO_CONTAINERD_SOCKET,
    dockerExecRoot: env.CRYO_DOCKER_EXEC_ROOT,
    runc: env.CRYO_RUNC,
    runtimeStateDir: env.CRYO_RUNTIME_STATE,
    maxImportBytes: env.CRYO_MAX_IMPORT_BYTES,
    minFreeBytes: env.CRYO_MIN_FREE_BYTES,
    minFreePercent: env.CRYO_MIN_FREE_PERCENT,
    metricsPublic: env.CRYO_METRICS_PUBLIC,
    scheduleGraceMs: env.CRYO_SCHEDULE_GRACE_MS,
    migrationRetentionMs: env.CRYO_MIGRATION_RETENTION_MS,
    postCopy: env.CRYO_POST_COPY,
    pageServerAddress: env.CRYO_PAGE_SERVER_ADDRESS,
    lazyPagesTimeoutSeconds: env.CRYO_LAZY_PAGES_TIMEOUT_S,
    sidecarTimeoutMs: env.CRYO_SIDECAR_TIMEOUT_MS,
    sidecarMinPauseMs: env.CRYO_SIDECAR_MIN_PAUSE_MS,
    sidecarMaxConcurrent: env.CRYO_SIDECAR_MAX_CONCURRENT,
    sidecarTolerableFailures: env.CRYO_SIDECAR_TOLERABLE_FAILURES,
    dockerTimeoutMs: env.CRYO_DOCKER_TIMEOUT_MS,
    commandTimeoutMs: env.CRYO_COMMAND_TIMEOUT_MS,
    peerTimeoutMs: env.CRYO_PEER_TIMEOUT_MS,
    requestBodyTimeoutMs: env.CRYO_REQUEST_BODY_TIMEOUT_MS,
    migrationSettleTimeoutMs: env.CRYO_MIGRATION_SETTLE_TIMEOUT_MS,
    lazyDumpTimeoutMs: env.CRYO_LAZY_DUMP_TIMEOUT_MS,
    registryAuthFile: env.CRYO_REGISTRY_AUTH_FILE,
    registryCaFile: env.CRYO_REGISTRY_CA_FILE,
    registryInsecure: env.CRYO_REGISTRY_INSECURE,
    registryTimeoutMs: env.CRYO_REGISTRY_TIMEOUT_MS,
    registryEncryptionKey: env.CRYO_REGISTRY_ENCRYPTION_KEY,
    registryDecryptionKey: env.CRYO_REGISTRY_DECRYPTION_KEY,
    criuBinary: env.CRYO_CRIU,
    logLevel: env.CRYO_LOG_LEVEL,
  };
  return ConfigSchema.parse({ ...defined(fromEnv), ...defined(overrides) });
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

function dockerSocketFromHost(host: string | undefined): string | undefined {
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
}
