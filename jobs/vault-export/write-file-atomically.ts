import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** Writes the file's content through `write` (each call a chunk, in order; await it). */
export type FileContent = string | Buffer | ((write: (chunk: Buffer) => Promise<void>) => Promise<void>);

/**
 * Replaces `target` with `content` so that a reader sees either the old file or the new one, never a part:
 * write a temp file in the same folder (same filesystem, so the rename is atomic), fsync it, rename it over
 * the target, then fsync the folder so the rename itself survives a crash. Content given as a writer
 * function is streamed in, chunk by chunk; if it throws, the target is left as it was. The file gets `mode`
 * (default 0600: the vault holds key ciphertexts).
 */
export async function writeFileAtomically(target: string, content: FileContent, mode = 0o600): Promise<void> {
  const folder = path.dirname(target);
  await mkdir(folder, { recursive: true });
  const temp = path.join(folder, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temp, 'wx', mode);
  try {
    await file.chmod(mode); // open's mode is filtered by the umask; make it exact
    if (typeof content === 'function') {
      // writeFile, not write: it goes on until the whole chunk is written (a write may take only part of it), from
      // where the last chunk ended.
      await content((chunk) => file.writeFile(chunk));
    } else {
      await file.writeFile(content);
    }
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(temp, { force: true });
    throw error;
  }
  await file.close();
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const directory = await open(folder, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
