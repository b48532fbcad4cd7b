import { randomBytes } from 'node:crypto';
import { chmod, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { TOKEN_FILE } from '../../defaults.js';

/** The API token kept in `<dataDir>/token` (mode 0600), generated on first use. */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, TOKEN_FILE);
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length >= 16) {
      await chmod(file, 0o600);
      return token;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('base64url');
  const handle = await open(file, 'w', 0o600);
  try {
    await handle.writeFile(`${token}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(file, 0o600);
  return token;
}
