import { pack } from 'tar-stream';

/** A tar holding one file at an absolute container path, with its parent directories, for Docker's putArchive. */
export function singleFileTar(file: string, content: Buffer): NodeJS.ReadableStream {
  const parts = file.split('/').filter(Boolean);
  if (parts.length === 0 || parts.some((p) => p === '..' || p === '.'))
    throw new Error(`unsafe path ${file}`);
  const p = pack();
  for (let i = 1; i < parts.length; i++)
    p.entry({ name: `${parts.slice(0, i).join('/')}/`, type: 'directory', mode: 0o755 });
  p.entry({ name: parts.join('/'), mode: 0o600 }, content);
  p.finalize();
  return p as unknown as NodeJS.ReadableStream;
}
