import path from 'node:path';

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * The normalised form of a path inside an archive, or undefined when the path is absolute, climbs out with
 * "..", or holds characters no checkpoint entry uses.
 */
export function safeArchivePath(name: string): string | undefined {
  if (name.length === 0 || name.length > 4096 || name.includes('\\')) return undefined;
  // No checkpoint entry has a control character; a newline in a name forges lines in logs and listings.
  if (CONTROL_CHARACTER.test(name)) return undefined;
  if (name.startsWith('/')) return undefined;
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) return undefined;
  return parts.join('/');
}

/** Whether a symlink at `name` pointing at `target` stays inside the archive. */
export function symlinkStaysInside(name: string, target: string): boolean {
  if (target.length === 0 || target.startsWith('/') || target.includes('\0')) return false;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
  return resolved !== '..' && !resolved.startsWith('../') && !path.posix.isAbsolute(resolved);
}

/** A path inside a root filesystem (absolute, normalised, no ".."), or undefined. */
export function safeRootfsPath(p: string): string | undefined {
  if (!p.startsWith('/') || p.includes('\0')) return undefined;
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.some((s) => s === '..')) return undefined;
  return `/${parts.join('/')}`;
}
