import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootCertificates } from 'node:tls';
import {
  RegistryArtifactInvalidError,
  RegistryNotFoundError,
  RegistryRefusedError,
  RegistryUnauthorizedError,
  RegistryUnreachableError,
} from '../../domain/errors/index.js';
import { MAX_OCI_MANIFEST_BYTES, OciMediaType } from '../../domain/oci-artifact.js';
import { parseChallenge } from './auth-challenge.js';
import type { RegistryCredentials } from './registry-credentials.js';

export interface OciRegistryClientOptions {
  /**
   * Plain HTTP instead of HTTPS: always (a registry named in CRYO_REGISTRY_INSECURE), or, as Docker does for one
   * on loopback, only when it does not speak TLS.
   */
  insecure: boolean | 'fallback';
  /** PEM of a CA trusted besides the system's. */
  ca?: string;
  credentials?: RegistryCredentials;
  /** How long a request may stay silent (no byte either way) before it fails. */
  timeoutMs: number;
  /** Pauses before the retries of a request that met a 5xx or a broken connection. */
  retryDelaysMs?: readonly number[];
}

/** What a request sends: a body in memory, or one made afresh for each try (a retry sends it again). */
interface RegistryRequest {
  method: string;
  path: string;
  /** The token scope this request needs, should the registry ask for a bearer token. */
  scope: string;
  headers?: Record<string, string>;
  body?: Buffer | { size: number; open: () => Promise<Readable> };
  /** Statuses that are answers, not failures. */
  ok: number[];
  what: string;
}

const RETRY_DELAYS_MS = [500, 1_000, 2_000];
const MAX_REDIRECTS = 3;

/** A request that failed in a way another try may not: it is not retried. */
class Final extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

/**
 * One registry, through the OCI distribution API (blobs, uploads, manifests) with its two auth flows: a basic
 * login, and the bearer-token challenge (Docker Hub, GHCR, Harbor, ECR). Every request has a deadline; a 5xx or
 * a broken connection is tried again with backoff.
 */
export class OciRegistryClient {
  private base: URL;
  private readonly tokens = new Map<string, string>();
  private basic = false;

  constructor(
    readonly registry: string,
    private readonly options: OciRegistryClientOptions,
  ) {
    this.base = new URL(`${options.insecure === true ? 'http' : 'https'}://${registry}`);
  }

  /** Whether the repository has the blob (HEAD): an upload is skipped when it has. */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      scope: `repository:${repository}:pull`,
      ok: [200, 404],
      what: `the blob ${digest}`,
    });
    res.resume();
    return res.statusCode === 200;
  }

  /** Uploads a blob whose digest and size are known: a POST for the session, then one PUT with the bytes. */
  async uploadBlob(
    repository: string,
    digest: string,
    size: number,
    open: () => Promise<Readable>,
  ): Promise<void> {
    const scope = `repository:${repository}:pull,push`;
    await this.retrying(`the upload of ${digest}`, async () => {
      const started = await this.send({
        method: 'POST',
        path: `/v2/${repository}/blobs/uploads/`,
        scope,
        headers: { 'content-length': '0' },
        ok: [202],
        what: 'an upload session',
      });
      started.resume();
      const location = started.headers.location;
      if (!location)
        throw new Final(new RegistryRefusedError(this.registry, 'an upload', 202, 'no Location'));
      const target = new URL(location, this.base);
      target.searchParams.set('digest', digest);
      const done = await this.send({
        method: 'PUT',
        path: `${target.pathname}${target.search}`,
        scope,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: { size, open },
        ok: [201],
        what: `the blob ${digest}`,
      });
      done.resume();
    });
  }

  /**
   * Mounts a blob that another repository of this registry holds (POST ...?mount=&from=): true when the registry
   * did (201); false when it started an upload session instead (202), which is cancelled.
   */
  async mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from });
    const res = await this.send({
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/?${query.toString()}`,
      scope: `repository:${repository}:pull,push`,
      headers: { 'content-length': '0' },
      ok: [201, 202],
      what: `a mount of ${digest} from ${from}`,
    });
    res.resume();
    if (res.statusCode === 201) return true;
    const location = res.headers.location;
    if (location) {
      const target = new URL(location, this.base);
      const cancelled = await this.send({
        method: 'DELETE',
        path: `${target.pathname}${target.search}`,
        scope: `repository:${repository}:pull,push`,
        ok: [204, 404],
        what: 'the upload session of a mount not made',
      });
      cancelled.resume();
    }
    return false;
  }

  /** Puts a manifest under a tag (or its digest); returns the digest the registry names it by. */
  async putManifest(repository: string, reference: string, manifest: Buffer): Promise<string> {
    const res = await this.send({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      scope: `repository:${repository}:pull,push`,
      headers: { 'content-type': OciMediaType.MANIFEST, 'content-length': String(manifest.length) },
      body: manifest,
      ok: [201],
      what: `the manifest ${reference}`,
    });
    res.resume();
    return String(res.headers['docker-content-digest'] ?? sha256(manifest));
  }

  /** Deletes a manifest by its digest (its tags go with it); one already gone is no error. */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    const res = await this.send({
      method: 'DELETE',
      path: `/v2/${repository}/manifests/${digest}`,
      scope: `repository:${repository}:pull,push,delete`,
      ok: [202, 200, 404],
      what: `the deletion of ${digest}`,
    });
    res.resume();
  }

  /** A manifest's bytes (at most MAX_OCI_MANIFEST_BYTES) and their digest, checked against a digest reference. */
  async getManifest(repository: string, reference: string): Promise<{ bytes: Buffer; digest: string }> {
    const res = await this.send({
      method: 'GET',
      path: `/v2/${repository}/manifests/${reference}`,
      scope: `repository:${repository}:pull`,
      headers: { accept: OciMediaType.MANIFEST },
      ok: [200, 404],
      what: `the manifest ${reference}`,
    });
    const name = `${this.registry}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    if (res.statusCode === 404) {
      res.resume();
      throw new RegistryNotFoundError(name);
    }
    const bytes = await readLimited(res, MAX_OCI_MANIFEST_BYTES, name);
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && digest !== reference)
      throw new RegistryArtifactInvalidError(name, `its manifest's digest is ${digest}, not ${reference}`);
    return { bytes, digest };
  }

  /** A blob's bytes as they come; the caller checks them against the digest while it reads. */
  async getBlob(repository: string, digest: string): Promise<Readable> {
    return this.send({
      method: 'GET',
      path: `/v2/${repository}/blobs/${digest}`,
      scope: `repository:${repository}:pull`,
      ok: [200],
      what: `the blob ${digest}`,
    });
  }

  /** A request with its auth, redirects, deadline and retries; resolves with a response whose status is in `ok`. */
  private send(request: RegistryRequest): Promise<IncomingMessage> {
    return this.retrying(request.what, () => this.authorized(request));
  }

  private async retrying<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    const delays = this.options.retryDelaysMs ?? RETRY_DELAYS_MS;
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (err instanceof Final) throw err.error;
        // A certificate that is not trusted stays so: no retry.
        const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(
          (err as NodeJS.ErrnoException).code ?? '',
        );
        if (i >= delays.length || certificate)
          throw new RegistryUnreachableError(this.registry, `${what}: ${(err as Error).message}`);
        await sleep(delays[i]);
      }
    }
  }

  /** Sends with what auth the registry asked for; a 401 is answered once with a login, or a token for its scope. */
  private async authorized(request: RegistryRequest): Promise<IncomingMessage> {
    let res = await this.exchange(request, this.authHeader(request.scope));
    if (res.statusCode !== 401) return this.checked(request, res);
    res.resume();
    const challenge = parseChallenge(res.headers['www-authenticate']);
    const { credentials } = this.options;
    if (challenge?.scheme === 'basic') {
      if (!credentials)
        throw new Final(
          new RegistryUnauthorizedError(this.registry, 'it wants a login, and cryo has none for it'),
        );
      this.basic = true;
    } else if (challenge?.scheme === 'bearer') {
      const scope = challenge.params.scope ?? request.scope;
      this.tokens.set(request.scope, await this.token(challenge.params, scope));
    } else
      throw new Final(
        new RegistryUnauthorizedError(this.registry, 'it answered 401 without a challenge cryo knows'),
      );
    res = await this.exchange(request, this.authHeader(request.scope));
    if (res.statusCode === 401 || res.statusCode === 403) {
      res.resume();
      throw new Final(new RegistryUnauthorizedError(this.registry, `${res.statusCode} for ${request.what}`));
    }
    return this.checked(request, res);
  }

  private checked(request: RegistryRequest, res: IncomingMessage): IncomingMessage {
    const status = res.statusCode ?? 0;
    if (request.ok.includes(status)) return res;
    res.resume();
    if (status >= 500 || status === 429) throw new Error(`${status} for ${request.what}`);
    if (status === 403)
      throw new Final(new RegistryUnauthorizedError(this.registry, `403 for ${request.what}`));
    throw new Final(new RegistryRefusedError(this.registry, request.what, status, res.statusMessage ?? ''));
  }

  private authHeader(scope: string): Record<string, string> {
    const token = this.tokens.get(scope);
    if (token) return { authorization: `Bearer ${token}` };
    return this.basic ? this.login() : {};
  }

  /** The login as a basic Authorization header; none without credentials. */
  private login(): Record<string, string> {
    const { credentials } = this.options;
    if (!credentials) return {};
    const pair = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    return { authorization: `Basic ${pair}` };
  }

  /** The bearer-token flow: the realm is asked, with the login if cryo has one, for a token of the scope. */
  private async token(params: Record<string, string>, scope: string): Promise<string> {
    const realm = params.realm;
    if (!realm)
      throw new Final(new RegistryUnauthorizedError(this.registry, 'its bearer challenge names no realm'));
    const url = new URL(realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', scope);
    const res = await this.raw('GET', url, this.login());
    const body = await readLimited(res, 1024 * 1024, 'its token endpoint');
    if (res.statusCode === 401 || res.statusCode === 403)
      throw new Final(
        new RegistryUnauthorizedError(this.registry, `its token endpoint answered ${res.statusCode}`),
      );
    if (res.statusCode !== 200) throw new Error(`its token endpoint answered ${res.statusCode}`);
    const json = JSON.parse(body.toString('utf8')) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (!token)
      throw new Final(new RegistryUnauthorizedError(this.registry, 'its token endpoint gave no token'));
    return token;
  }

  /** One request, following redirects (a blob served from elsewhere gets no Authorization of this registry's). */
  private async exchange(request: RegistryRequest, auth: Record<string, string>): Promise<IncomingMessage> {
    let url = new URL(request.path, this.base);
    let headers = { ...request.headers, ...auth };
    for (let hop = 0; ; hop++) {
      const res = await this.raw(request.method, url, headers, request.body).catch(
        (err: NodeJS.ErrnoException) => {
          if (!this.speaksPlainHttp(url, err)) throw err;
          // A loopback registry without TLS: from here on, plain HTTP.
          this.base = new URL(`http://${this.registry}`);
          url = new URL(`${url.pathname}${url.search}`, this.base);
          return this.raw(request.method, url, headers, request.body);
        },
      );
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(status) || !location || request.method === 'POST') return res;
      res.resume();
      if (hop >= MAX_REDIRECTS)
        throw new Final(new RegistryRefusedError(this.registry, request.what, status, 'too many redirects'));
      const next = new URL(location, url);
      if (next.host !== url.host) headers = { ...request.headers };
      url = next;
    }
  }

  private speaksPlainHttp(url: URL, err: NodeJS.ErrnoException): boolean {
    return (
      this.options.insecure === 'fallback' &&
      url.protocol === 'https:' &&
      url.host === this.base.host &&
      (err.code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message))
    );
  }

  private async raw(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body?: RegistryRequest['body'],
  ): Promise<IncomingMessage> {
    const stream = body === undefined || Buffer.isBuffer(body) ? undefined : await body.open();
    const ca = this.options.ca ? [...rootCertificates, this.options.ca] : undefined;
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, { method, headers, ...(ca ? { ca } : {}) });
      req.setTimeout(this.options.timeoutMs, () =>
        req.destroy(new Error(`no answer for ${this.options.timeoutMs / 1000} s`)),
      );
      req.on('response', (res) => {
        // The deadline goes on while the body is read: a registry that stops sending mid-blob fails it.
        res.on('timeout', () => res.destroy(new Error(`no data for ${this.options.timeoutMs / 1000} s`)));
        res.setTimeout(this.options.timeoutMs);
        resolve(res);
      });
      req.on('error', reject);
      if (stream) {
        stream.on('error', (err) => req.destroy(err));
        req.on('close', () => stream.destroy());
        stream.pipe(req);
      } else req.end(body);
    });
  }
}

/** The sha256 digest of bytes, as OCI names it. */
export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function readLimited(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? 0);
  if (declared > limit) {
    res.destroy();
    throw new Final(new RegistryArtifactInvalidError(what, `it is ${declared} bytes, over ${limit}`));
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      throw new Final(new RegistryArtifactInvalidError(what, `it is over ${limit} bytes`));
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
