import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

/** A pass-through that hashes (SHA-256) and measures what flows through it: bytes, and lines = COPY text rows. */
export class ChecksumStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  lines = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    // COPY's text format escapes newlines inside values, so each raw newline ends one row.
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) this.lines += 1;
    done(null, chunk);
  }

  /** The hex digest; call once the stream has finished. */
  digest(): string {
    return this.hash.digest('hex');
  }
}
